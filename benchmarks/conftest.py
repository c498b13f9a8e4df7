"""Options and hooks of the benchmarks (the method is in ``_harness``, the gate in ``_gate``).

    pytest benchmarks [--device cpu|gpu|tpu] [--smoke|--full] [--sizes 10,16,24|10-24|all]
                      [--dtypes float32,bfloat16] [--ops fwd,vjp,jvp,vmap_grad,vjp_alpha] [--only Sigmoid,Tanh]
                      [--peers] [--compare results/baseline-cpu.json] [--threshold 5%] [--bench-out results]
    pytest benchmarks --layer [--smoke] [--layer-neurons 1024] [--layer-steps 100,500] [--layer-batch 16] [--peers]

The default grid is the VJP in float32 at 2^24 (2^24 and 2^26 on gpu/tpu; ``_options.DEFAULT_SIZES``);
``--full`` is every op and dtype at the full sizes, ``--smoke`` one surrogate at one size with the A/A
control (seconds). An estimate is printed before the run and a progress line after each group.

Writes ``<bench-out>/bench-<device>.json`` (pytest-benchmark JSON, extra_info per benchmark, and a
top-level ``surrogate_bench`` with the op declarations and the A/A control) and ``bench-<device>.md``
(``layer-<device>.json``/``.md`` with ``--layer``). With ``--compare`` the run fails when a ratio to
its baseline regressed (see ``benchmarks/_gate.py``).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import sys
import time
from datetime import UTC, datetime

import pytest

from benchmarks import _gate, _options, _report

DEFAULT_COLUMNS = ["min", "max", "mean", "stddev", "median", "iqr", "outliers", "ops", "rounds", "iterations"]


def pytest_addoption(parser: pytest.Parser) -> None:
  group = parser.getgroup("surrogate benchmarks")
  add = group.addoption
  add("--device", dest="bench_device", default="cpu", choices=_options.DEVICES,
      help="platform to benchmark on; gpu means CUDA and fails if there is none (default cpu)")
  add("--smoke", dest="bench_smoke", action="store_true",
      help="a smoke run in seconds: Sigmoid (or --only), vjp, float32, one size (2^24; 2^26 on gpu/tpu), the A/A "
           "control; with --layer, T = 100 only")
  add("--full", dest="bench_full", action="store_true",
      help="the whole sweep: every op, both dtypes, sizes 10,16,24 (on gpu/tpu 10,16,22,26)")
  add("--sizes", dest="bench_sizes", default=None,
      help="log2 element counts: '10,16,24', '10-24' or 'all' (default 24; on gpu/tpu 24,26)")
  add("--dtypes", dest="bench_dtypes", default=None,
      help="comma-separated: float32,bfloat16 (default float32; both with --full)")
  add("--ops", dest="bench_ops", default=None,
      help=f"comma-separated: {','.join(_options.OPS)} (default vjp; all with --full)")
  add("--only", dest="bench_only", default=None, help="comma-separated surrogate names (default: the whole registry)")
  add("--peers", dest="bench_peers", action="store_true",
      help="also time the JAX peers (braintools, spyx); with --layer also snntorch and norse")
  add("--rounds", dest="bench_rounds", default=0, type=int, help="rounds per benchmark (default: adaptive, 150 to 300)")
  add("--max-time", dest="bench_max_time", default=0.3, type=float,
      help="seconds of timing per benchmark when rounds are adaptive (default 0.3)")
  add("--compare", dest="bench_compare", default=None, metavar="JSON",
      help="fail if a ratio to the baseline kernel regressed against this report (see benchmarks/_gate.py)")
  add("--threshold", dest="bench_threshold", default="0.05",
      help="least growth of a median ratio that counts, beyond both IQRs: 0.05 or 5%% (default)")
  add("--bench-out", dest="bench_out", default="results", help="folder of the reports (default results)")
  add("--layer", dest="bench_layer", action="store_true", help="the Linear + LIF layer benchmark instead")
  add("--layer-neurons", dest="bench_layer_neurons", default=None, help="neurons of the layer (default 1024)")
  add("--layer-steps", dest="bench_layer_steps", default=None, help="time steps (default 100,500)")
  add("--layer-batch", dest="bench_layer_batch", default=16, type=int, help="batch size (default 16)")


def pytest_configure(config: pytest.Config) -> None:
  if not config.getoption("bench_device", None):
    return
  try:
    cfg = _options.build_config(config.getoption)
  except ValueError as exc:
    raise pytest.UsageError(str(exc)) from None
  if cfg.device != "cpu" and cfg.layer:  # the torch peers share the accelerator: JAX takes half, not 75%
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.5")
  select_platform(cfg.device)
  if config.getoption("benchmark_columns", None) == DEFAULT_COLUMNS:
    config.option.benchmark_columns = ["median", "iqr", "rounds"]
  from benchmarks._harness import CONFIG

  config.stash[CONFIG] = cfg
  config.stash[_LOAD] = _load_average()
  _CONFIG[:] = [config]


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
  """Keeps the layer benchmark's tests with ``--layer`` and the kernels' tests without it."""
  if not config.getoption("bench_device", None):
    return
  layer = bool(config.getoption("bench_layer"))
  keep = [i for i in items if i.originalname != ("test_throughput" if layer else "test_layer")]
  if len(keep) < len(items):
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep
  from benchmarks._harness import CONFIG

  if CONFIG in config.stash:
    progress = Progress.of(items, config.stash[CONFIG])
    config.stash[_PROGRESS] = progress
    say(config, progress.start_line(config.stash[CONFIG]))


def say(config: pytest.Config, line: str) -> None:
  """Writes a line to the terminal, past pytest's capture (the terminal reporter, else the real stderr)."""
  tr = config.pluginmanager.get_plugin("terminalreporter")
  if tr is not None:
    tr.ensure_newline()
    tr.write_line(line)
  else:
    print(line, file=sys.__stderr__, flush=True)


def _duration(seconds: float) -> str:
  seconds = max(0.0, seconds)
  return f"{int(seconds // 60)} min {int(seconds % 60)} s" if seconds >= 60 else f"{seconds:.0f} s"


@dataclasses.dataclass
class Progress:
  """Cases per group (test id -> group, in run order), the estimate, and what has finished."""

  group_of: dict[str, str]
  estimate_s: float
  total: collections.Counter
  done: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  start: float = dataclasses.field(default_factory=time.perf_counter)

  @classmethod
  def of(cls, items: list[pytest.Item], cfg: _options.BenchConfig) -> Progress:
    from benchmarks._harness import Case, estimate_s

    group_of, estimate = {}, 0.0
    for item in items:
      params = getattr(getattr(item, "callspec", None), "params", {})
      case = params.get("case") or params.get("layer_case")
      if isinstance(case, Case):
        group_of[item.nodeid] = f"{case.op}-{case.dtype}-2^{case.log2_size}"
        estimate += estimate_s(case, cfg)
      elif case is not None:
        group_of[item.nodeid] = f"layer-N{case.neurons}-T{case.steps}-{case.pass_}"
        estimate += 10 * cfg.max_time + 2.0  # its rounds fill ten times --max-time; two builds
    return cls(group_of, estimate, collections.Counter(group_of.values()))

  def start_line(self, cfg: _options.BenchConfig) -> str:
    more = "" if cfg.grid == "full" else "; --full for the whole sweep"
    return (f"surrogate benchmarks on {cfg.device}: {cfg.grid_text()}; {len(self.group_of)} cases in"
            f" {len(self.total)} groups, estimated {_duration(self.estimate_s)}{more}")

  def finished(self, nodeid: str) -> str | None:
    """Counts a finished test; a progress line when it completes its group."""
    group = self.group_of.get(nodeid)
    if group is None:
      return None
    self.done[group] += 1
    if self.done[group] < self.total[group]:
      return None
    groups_done = sum(1 for g in self.total if self.done[g] >= self.total[g])
    cases_done = sum(self.done.values())
    elapsed = time.perf_counter() - self.start
    left = elapsed / cases_done * (len(self.group_of) - cases_done)
    return (f"[group {groups_done}/{len(self.total)}] {group}: {self.total[group]} cases done;"
            f" {cases_done}/{len(self.group_of)} cases, {_duration(elapsed)} elapsed, about {_duration(left)} left")


def pytest_runtest_logfinish(nodeid: str, location: tuple) -> None:
  config = _CONFIG[0] if _CONFIG else None
  if config is None or _PROGRESS not in config.stash:
    return
  line = config.stash[_PROGRESS].finished(nodeid)
  if line:
    say(config, line)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
  if report.skipped and "benchmarks/test_" in report.nodeid and report.when in ("setup", "call"):
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    _SKIPS.append({"test": report.nodeid.split("::")[-1], "reason": reason.removeprefix("Skipped: ")})


_SKIPS: list[dict[str, str]] = []
_WRITTEN = pytest.StashKey[tuple]()
_AA = pytest.StashKey[dict]()
_LOAD = pytest.StashKey[object]()
_PROGRESS = pytest.StashKey[Progress]()
#: The session's config, for the hooks that are not given it (``pytest_runtest_logfinish``).
_CONFIG: list[pytest.Config] = []


def _load_average() -> list[float] | None:
  """The 1, 5 and 15 minute load averages (None where the platform has none)."""
  return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


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
  doc["bench"] = {**run_info(cfg), "load_average_start": config.stash.get(_LOAD, None)}
  doc["skipped"] = list(_SKIPS)
  if cfg.layer:
    paths = _report.write_layer(doc, cfg.out_dir, cfg.device)
    config.stash[_WRITTEN] = (paths, None)
    return
  doc["surrogate_bench"] = _report.surrogate_bench(doc, cfg.ops, cfg.dtypes)
  if cfg.compare:
    from benchmarks._harness import remeasure

    saved = _gate.entries(_report.load(cfg.compare))
    gate = _gate.run_gate(_gate.entries(doc), saved, cfg.threshold, lambda k: remeasure(k, cfg))
    doc["gate"] = {"against": cfg.compare, **gate}
    if not gate["passed"]:
      session.exitstatus = pytest.ExitCode.TESTS_FAILED
  paths = _report.write(doc, cfg.out_dir, cfg.device)
  config.stash[_WRITTEN] = (paths, doc.get("gate"))
  config.stash[_AA] = doc["surrogate_bench"]["aa_control"]


def run_info(cfg: _options.BenchConfig) -> dict[str, object]:
  """Run-level metadata: device, versions, the configuration and the load average when it started."""
  from benchmarks._harness import device, device_info, versions

  return {
      **device_info(device(cfg)),
      "versions": versions(),
      "sizes": list(cfg.sizes),
      "dtypes": list(cfg.dtypes),
      "ops": list(cfg.ops),
      "peers": cfg.peers,
      "layer": {"neurons": list(cfg.layer_neurons), "steps": list(cfg.layer_steps), "batch": cfg.layer_batch}
      if cfg.layer else None,
      "rounds": cfg.rounds or "adaptive",
      "grid": cfg.grid,
      "grid_text": cfg.grid_text(),
      "explicit_options": list(cfg.explicit),
      "cpus": os.cpu_count(),
      "load_average_end": _load_average(),
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
  aa = config.stash[_AA] if _AA in config.stash else None
  if aa:
    verdict = "passed" if aa["trustworthy"] else "FAILED: the run is not trustworthy"
    tr.write_line(f"A/A control (median ratio within {aa['band'][0]}-{aa['band'][1]} in every group): {verdict}")
  if gate:
    verdict = "passed" if gate["passed"] else "FAILED"
    tr.write_line(f"regression gate against {gate['against']}: {verdict} "
                  f"({gate['compared']} ratios compared, threshold {gate['threshold']:.0%} beyond the IQRs)")
    if gate.get("cleared_on_remeasure"):
      cleared = len(gate["cleared_on_remeasure"])
      tr.write_line(f"  {cleared} flagged ratios were within the threshold when measured again")
    for r in gate["regressions"]:
      name = " ".join(map(str, r["key"]))
      tr.write_line(f"  {name}: ratio {r['before']:.2f} -> {r['after']:.2f} ({r['growth']:+.0%})")
    if not gate["compared"]:
      tr.write_line("  no benchmark in common with the saved report: nothing was compared")
