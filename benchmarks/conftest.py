"""Options and reports of the throughput benchmarks.

    pytest benchmarks [--device cpu|gpu|tpu] [--sizes 10,16,22|10-22|all] [--dtypes float32,bfloat16]
                      [--ops fwd,vjp,jvp,vmap_grad,lif] [--only Sigmoid,Tanh] [--peers]
                      [--compare reports/baseline-cpu.json] [--threshold 0.25] [--bench-out reports]

Writes ``<bench-out>/bench-<device>.json`` (pytest-benchmark JSON, extra_info per benchmark) and
``bench-<device>.md``. With ``--compare`` the run fails when a surrogate's ratio to its baseline
kernel grew by more than the threshold.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from benchmarks import _options, _report

DEFAULT_COLUMNS = ["min", "max", "mean", "stddev", "median", "iqr", "outliers", "ops", "rounds", "iterations"]


def pytest_addoption(parser: pytest.Parser) -> None:
  group = parser.getgroup("surrogate benchmarks")
  add = group.addoption
  add("--device", dest="bench_device", default="cpu", choices=_options.DEVICES,
      help="platform to benchmark on; gpu means CUDA and fails if there is none (default cpu)")
  add("--sizes", dest="bench_sizes", default=None,
      help="log2 element counts: '10,16,22', '10-22' or 'all' (default 10,16,22; on gpu/tpu also 26)")
  add("--lif-sizes", dest="bench_lif_sizes", default=None, help="log2 neuron counts of the LIF layer (default 10,14)")
  add("--lif-steps", dest="bench_lif_steps", default=100, type=int, help="time steps of the LIF layer (default 100)")
  add("--dtypes", dest="bench_dtypes", default=None, help="comma-separated: float32,bfloat16 (default both)")
  add("--ops", dest="bench_ops", default=None, help="comma-separated: fwd,vjp,jvp,vmap_grad,lif (default all)")
  add("--only", dest="bench_only", default=None, help="comma-separated surrogate names (default: the whole registry)")
  add("--peers", dest="bench_peers", action="store_true", help="also time braintools and spyx where installed")
  add("--rounds", dest="bench_rounds", default=0, type=int, help="rounds per benchmark (default: adaptive, 10 to 200)")
  add("--max-time", dest="bench_max_time", default=0.15, type=float,
      help="seconds of timing per benchmark when rounds are adaptive (default 0.15)")
  add("--compare", dest="bench_compare", default=None, metavar="JSON",
      help="fail if a ratio to the baseline kernel grew by more than --threshold against this report")
  add("--threshold", dest="bench_threshold", default="0.25", help="allowed growth of a ratio: 0.25 or 25%% (default)")
  add("--bench-out", dest="bench_out", default="reports", help="folder of bench-<device>.json/.md (default reports)")


def pytest_configure(config: pytest.Config) -> None:
  if not config.getoption("bench_device", None):
    return
  try:
    cfg = _options.build_config(config.getoption)
  except ValueError as exc:
    raise pytest.UsageError(str(exc)) from None
  select_platform(cfg.device)
  if config.getoption("benchmark_columns", None) == DEFAULT_COLUMNS:
    config.option.benchmark_columns = ["median", "iqr", "rounds"]
  from benchmarks._harness import CONFIG, SKIPPED

  config.stash[CONFIG] = cfg
  config.stash[SKIPPED] = []


def select_platform(device: str) -> None:
  """Sets JAX_PLATFORMS for ``device`` before JAX initialises, then checks the device exists."""
  platforms = _options.PLATFORMS[device]
  os.environ["JAX_PLATFORMS"] = platforms
  import jax
  from jax._src import xla_bridge

  if xla_bridge.backends_are_initialized():
    if jax.default_backend() != device and not (device == "gpu" and jax.default_backend() == "cuda"):
      backend = jax.default_backend()
      raise pytest.UsageError(f"--device {device}: JAX was already initialised on {backend} before the benchmarks")
  else:
    jax.config.update("jax_platforms", platforms)
  try:
    devices = jax.devices(device)
  except RuntimeError as exc:
    raise pytest.UsageError(
        f"--device {device}: no {device.upper()} device available to JAX (JAX_PLATFORMS={platforms}): {exc}"
    ) from None
  if not devices:
    raise pytest.UsageError(f"--device {device}: JAX found no {device} device (JAX_PLATFORMS={platforms})")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
  if report.skipped and "test_throughput" in report.nodeid and report.when in ("setup", "call"):
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    _SKIPS.append({"test": report.nodeid.split("::")[-1], "reason": reason.removeprefix("Skipped: ")})


_SKIPS: list[dict[str, str]] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
  config = session.config
  from benchmarks._harness import CONFIG

  if CONFIG not in config.stash or not hasattr(config, "_benchmarksession"):
    return
  cfg = config.stash[CONFIG]
  bs = config._benchmarksession
  if not any(b for b in bs.benchmarks if not b.has_error):
    return
  doc = config.hook.pytest_benchmark_generate_json(
      config=config,
      benchmarks=bs.benchmarks,
      include_data=False,
      machine_info=bs.get_machine_info(),
      commit_info=config.hook.pytest_benchmark_generate_commit_info(config=config),
  )
  doc["bench"] = run_info(cfg)
  doc["skipped"] = list(_SKIPS)
  if cfg.compare:
    doc["gate"] = {"against": cfg.compare, **run_gate(doc, cfg)}
    gate = doc["gate"]
    if not gate["passed"]:
      session.exitstatus = pytest.ExitCode.TESTS_FAILED
  paths = _report.write(doc, cfg.out_dir, cfg.device)
  config.stash[_WRITTEN] = (paths, doc.get("gate"))


_WRITTEN = pytest.StashKey[tuple]()
#: How often a flagged ratio is measured again before it counts as a regression.
ATTEMPTS = 2


def run_gate(doc: dict, cfg: _options.BenchConfig) -> dict:
  """The regression gate; each flagged ratio is measured again (longer) and kept only if it stays
  above the threshold every time, so a burst of load from another process does not fail the run."""
  from benchmarks._harness import remeasure

  saved = _report.entries(_report.load(cfg.compare))
  gate = _report.compare(_report.entries(doc), saved, cfg.threshold)
  confirmed = []
  for row in gate["regressions"]:
    for _ in range(ATTEMPTS):
      again = _report.compare([remeasure(row["key"], cfg)], saved, cfg.threshold)
      row.setdefault("remeasured", []).append(again["regressions"][0]["after"] if again["regressions"] else None)
      if not again["regressions"]:
        break
    else:
      confirmed.append(row)
  cleared = [r for r in gate["regressions"] if r not in confirmed]
  passed = bool(gate["compared"]) and not confirmed
  return {**gate, "regressions": confirmed, "cleared_on_remeasure": cleared, "passed": passed}



def run_info(cfg: _options.BenchConfig) -> dict[str, object]:
  """Run-level metadata: device, versions and the configuration."""
  from benchmarks._harness import device, device_info, versions

  return {
      **device_info(device(cfg)),
      "versions": versions(),
      "sizes": list(cfg.sizes),
      "lif_sizes": list(cfg.lif_sizes),
      "lif_steps": cfg.lif_steps,
      "dtypes": list(cfg.dtypes),
      "ops": list(cfg.ops),
      "peers": cfg.peers,
      "rounds": cfg.rounds or "adaptive",
      "written": datetime.now(UTC).isoformat(),
  }


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
  if _WRITTEN not in config.stash:
    return
  (json_path, md_path), gate = config.stash[_WRITTEN]
  tr = terminalreporter
  tr.section("surrogate benchmarks")
  tr.write_line(f"wrote {json_path} and {md_path}")
  if gate:
    verdict = "passed" if gate["passed"] else "FAILED"
    tr.write_line(f"regression gate against {gate['against']}: {verdict} "
                  f"({gate['compared']} ratios compared, threshold {gate['threshold']:.0%})")
    if gate.get("cleared_on_remeasure"):
      cleared = len(gate["cleared_on_remeasure"])
      tr.write_line(f"  {cleared} flagged ratios were within the threshold when measured again")
    for r in gate["regressions"]:
      name = " ".join(map(str, r["key"]))
      tr.write_line(f"  {name}: ratio {r['before']:.2f} -> {r['after']:.2f} ({r['growth']:+.0%})")
    if not gate["compared"]:
      tr.write_line("  no benchmark in common with the saved report: nothing was compared")
