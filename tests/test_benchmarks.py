"""The benchmark code (benchmarks/): a tiny run end to end, its reports, the regression gate and
device selection. Nothing here asserts a timing."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytest_benchmark")

from benchmarks import _options, _report

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--only", "Sigmoid", "--sizes", "10", "--lif-sizes", "4", "--lif-steps", "10", "--rounds", "1"]
INFO_KEYS = {
    "surrogate", "op", "dtype", "size", "bytes", "gbps", "median_s", "compile_s", "ratio", "baseline_median_s",
    "baseline_gbps", "baseline_compile_s", "device", "device_kind", "versions", "arithmetic", "library",
    "ratio_of_mins",
}
POSITIVE_KEYS = ("size", "bytes", "gbps", "median_s", "compile_s", "ratio", "baseline_median_s", "baseline_gbps")


def run_bench(out: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
  """``pytest benchmarks`` in a fresh interpreter, reports written to ``out``."""
  command = [sys.executable, "-m", "pytest", "benchmarks", "-p", "no:cacheprovider", "-q", "--bench-out", str(out)]
  environment = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))} | (env or {})
  return subprocess.run(
      [*command, *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300, check=False
  )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
  out = tmp_path_factory.mktemp("bench")
  return run_bench(out, *TINY), out


def test_tiny_run_writes_reports(tiny_run) -> None:
  proc, out = tiny_run
  assert proc.returncode == 0, proc.stdout + proc.stderr
  doc = json.loads((out / "bench-cpu.json").read_text())
  assert {"machine_info", "benchmarks", "version", "bench"} <= set(doc)
  infos = _report.entries(doc)
  assert {(e["op"], e["dtype"]) for e in infos} == {(op, d) for op in _options.OPS for d in _options.DTYPES}
  for e in infos:
    assert INFO_KEYS <= set(e), sorted(INFO_KEYS - set(e))
    for k in POSITIVE_KEYS:
      assert math.isfinite(e[k]) and e[k] > 0, (k, e)
    assert e["surrogate"] == "Sigmoid" and e["arithmetic"] == "transcendental"
    assert e["device"] == "cpu" and e["versions"]["jax"]
  summary = (out / "bench-cpu.md").read_text()
  assert "Sigmoid" in summary and "## vjp" in summary and "Targets" in summary


def planted(doc: dict, factor: float, op: str = "vjp") -> dict:
  """A copy of a report with the ratios of ``op`` multiplied by ``factor``."""
  doc = copy.deepcopy(doc)
  for b in doc["benchmarks"]:
    if b["extra_info"]["op"] == op:
      for k in ("ratio", "ratio_of_mins"):
        b["extra_info"][k] *= factor
  return doc


def test_gate_passes_on_identical_reports(tiny_run) -> None:
  doc = json.loads((tiny_run[1] / "bench-cpu.json").read_text())
  gate = _report.compare(_report.entries(doc), _report.entries(doc), 0.25)
  assert gate["passed"] and gate["compared"] == len(_report.entries(doc)) and not gate["regressions"]


def test_gate_fails_on_planted_regression(tiny_run) -> None:
  doc = json.loads((tiny_run[1] / "bench-cpu.json").read_text())
  for b in doc["benchmarks"]:  # saved ratios below 1 are compared as 1
    b["extra_info"].update(ratio=1.5, ratio_of_mins=1.5)
  gate = _report.compare(_report.entries(planted(doc, 1.3)), _report.entries(doc), 0.25)
  assert not gate["passed"]
  assert {r["key"][0] for r in gate["regressions"]} == {"vjp"}
  assert _report.compare(_report.entries(planted(doc, 1.2)), _report.entries(doc), 0.25)["passed"]


def test_gate_fails_when_nothing_is_compared(tiny_run) -> None:
  doc = json.loads((tiny_run[1] / "bench-cpu.json").read_text())
  assert not _report.compare(_report.entries(doc), [], 0.25)["passed"]


PLANTED = """
import dataclasses

import jax.numpy as jnp

from surrogates._core import Surrogate
from surrogates._registry import register


@register
@dataclasses.dataclass(frozen=True, repr=False)
class PlantedSlow(Surrogate):
  examples = ({},)

  def _grad(self, x):
    return sum(jnp.cos(k * x) for k in range(1, 17)) ** 2

  def _fun(self, x):
    return x
"""


def test_compare_option_sets_the_exit_status(tiny_run, tmp_path: Path) -> None:
  """A planted slow surrogate against a saved report where its ratio was 1: the run fails, and passes
  against one where the ratio was far higher."""
  (tmp_path / "planted.py").write_text(PLANTED)
  doc = json.loads((tiny_run[1] / "bench-cpu.json").read_text())
  doc["benchmarks"] = [b for b in doc["benchmarks"] if b["extra_info"]["op"] == "vjp"][:1]
  info = doc["benchmarks"][0]["extra_info"]
  info.update(surrogate="PlantedSlow", dtype="float32", log2_size=16, ratio=1.0, ratio_of_mins=1.0)
  saved, slower = tmp_path / "saved.json", tmp_path / "slower.json"
  saved.write_text(json.dumps(doc))
  slower.write_text(json.dumps(planted(doc, 1e4)))
  args = ["-p", "planted", "--only", "PlantedSlow", "--sizes", "16", "--ops", "vjp", "--dtypes", "float32"]
  env = {"PYTHONPATH": str(tmp_path)}
  failed = run_bench(tmp_path / "a", *args, "--rounds", "3", "--compare", str(saved), env=env)
  assert failed.returncode == 1, failed.stdout + failed.stderr
  assert "regression gate" in failed.stdout and "FAILED" in failed.stdout
  gate = json.loads((tmp_path / "a" / "bench-cpu.json").read_text())["gate"]
  assert [r["key"][2] for r in gate["regressions"]] == ["PlantedSlow"] and not gate["passed"]
  passed = run_bench(tmp_path / "b", *args, "--rounds", "1", "--compare", str(slower), "--threshold", "25%", env=env)
  assert passed.returncode == 0, passed.stdout + passed.stderr


def test_gpu_without_gpu_fails_loudly(tmp_path: Path) -> None:
  proc = run_bench(tmp_path, "--device", "gpu", *TINY)
  assert proc.returncode not in (0, 5), proc.stdout + proc.stderr
  assert "--device gpu" in proc.stdout + proc.stderr and "JAX_PLATFORMS=cuda" in proc.stdout + proc.stderr
  assert not list(tmp_path.iterdir())


def test_unavailable_peer_is_recorded_as_skipped(tmp_path: Path) -> None:
  fake = tmp_path / "fake"
  for name in ("braintools", "spyx"):
    (fake / name).mkdir(parents=True)
    (fake / name / "__init__.py").write_text(f"raise ImportError('{name} hidden by the test')\n")
  args = ["--peers", "--only", "Tanh", "--sizes", "10", "--ops", "fwd", "--dtypes", "float32", "--rounds", "1"]
  proc = run_bench(tmp_path / "out", *args, env={"PYTHONPATH": str(fake)})
  assert proc.returncode == 0, proc.stdout + proc.stderr
  skipped = json.loads((tmp_path / "out" / "bench-cpu.json").read_text())["skipped"]
  assert {s["test"] for s in skipped} == {"test_throughput[peer-braintools]", "test_throughput[peer-spyx]"}
  assert all("hidden by the test" in s["reason"] for s in skipped)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, (10, 16, 22)),
        ("12", (12,)),
        ("10-12,20", (10, 11, 12, 20)),
        ("2^14,4096", (12, 14)),
        ("all", tuple(range(10, 23))),
    ],
)
def test_parse_sizes(text: str | None, expected: tuple[int, ...]) -> None:
  assert _options.parse_exponents(text, _options.DEFAULT_SIZES["cpu"], _options.ALL_SIZES["cpu"]) == expected


def test_parse_threshold_and_lists() -> None:
  assert _options.parse_threshold("25%") == _options.parse_threshold("0.25") == 0.25
  assert _options.parse_list("vjp,lif", _options.OPS, "ops") == ("vjp", "lif")
  with pytest.raises(ValueError, match="unknown ops"):
    _options.parse_list("backward", _options.OPS, "ops")
  with pytest.raises(ValueError, match="power of two"):
    _options.parse_exponents("1000", (), ())


def test_gate_treats_saved_ratios_below_one_as_one(tiny_run) -> None:
  doc = json.loads((tiny_run[1] / "bench-cpu.json").read_text())
  saved, now = copy.deepcopy(doc), copy.deepcopy(doc)
  for b in saved["benchmarks"]:
    b["extra_info"].update(ratio=0.3, ratio_of_mins=0.3)
  for b in now["benchmarks"]:
    b["extra_info"].update(ratio=1.2, ratio_of_mins=1.2)
  assert _report.compare(_report.entries(now), _report.entries(saved), 0.25)["passed"]
