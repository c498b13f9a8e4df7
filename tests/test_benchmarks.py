"""The benchmark code (benchmarks/): a tiny run end to end, its reports, the A/A control, the regression
gate, the layer benchmark's equations and device selection. Nothing here asserts a timing."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests._subprocess import environment as subprocess_environment

pytest.importorskip("pytest_benchmark")

import numpy as np

from benchmarks import _gate, _layer, _ops, _options, _report

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--full", "--only", "Sigmoid", "--sizes", "10", "--rounds", "2"]
INFO_KEYS = {
    "surrogate", "op", "dtype", "size", "log2_size", "bytes", "gbps", "median_s", "compile_s", "ratio", "ratio_q1",
    "ratio_q3", "ratio_iqr", "comparator_median_s", "comparator_gbps", "device", "device_kind", "library",
}
POSITIVE_KEYS = ("size", "bytes", "gbps", "median_s", "compile_s", "ratio", "comparator_median_s", "comparator_gbps")


def run_bench(out: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
  """``pytest benchmarks`` in a fresh interpreter, reports written to ``out``."""
  command = [sys.executable, "-m", "pytest", "benchmarks", "-p", "no:cacheprovider", "-q", "--bench-out", str(out)]
  environment = subprocess_environment("JAX_", "XLA_") | (env or {})  # not JAX's settings either
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
  assert {"machine_info", "benchmarks", "version", "bench", "surrogate_bench"} <= set(doc)
  infos = _gate.entries(doc)
  measured = {(e["op"], e["dtype"]) for e in infos if e["library"] == "surrogates"}
  # vjp_alpha runs once parameters may be traced arrays; until then it is recorded as skipped.
  skipped_ops = {s["test"].split("[")[1].split("-")[0] for s in doc["skipped"]}
  assert measured | {(op, d) for op in skipped_ops for d in _options.DTYPES} == {
      (op, d) for op in _options.OPS for d in _options.DTYPES}
  for e in infos:
    assert INFO_KEYS <= set(e), sorted(INFO_KEYS - set(e))
    for k in POSITIVE_KEYS:
      assert math.isfinite(e[k]) and e[k] > 0, (k, e)
    assert e["ratio_q1"] <= e["ratio"] <= e["ratio_q3"]
    assert e["device"] == "cpu" and e["surrogate"] in ("Sigmoid", "A/A")
    assert e["timing"] == "batch" and math.isfinite(e["host_overhead_s"]) and e["single_call_s"] > 0
    assert e["copy_share"] == pytest.approx(e["gbps"] / e["copy_gbps"])  # every kernel's share of the copy
    assert e["copy_bytes"] == 2 * e["size"] * np.dtype(e["dtype"] if e["dtype"] == "float32" else "float16").itemsize
  assert doc["bench"]["versions"]["jax"]
  assert doc["bench"]["grid"] == "full" and "--only Sigmoid" in doc["bench"]["grid_text"]
  sb = doc["surrogate_bench"]
  assert [o["name"] for o in sb["ops"]] == list(_options.OPS)
  assert all({"name", "baseline", "bytes_per_element"} <= set(o) for o in sb["ops"])
  assert sb["ops"][1]["bytes_per_element"] == {"float32": 12, "bfloat16": 6}  # vjp: x, ct read, one written
  groups = {g["group"] for g in sb["aa_control"]["groups"]}
  assert groups == {f"{e['op']}-{e['dtype']}-2^10" for e in infos}  # one A/A control per group
  assert all(g["copy_gbps"] > 0 and isinstance(g["resolves"], bool) for g in sb["aa_control"]["groups"])
  summary = (out / "bench-cpu.md").read_text()
  assert "Sigmoid" in summary and "## vjp" in summary and "Targets" in summary and "A/A control" in summary
  assert "Grid: full grid" in summary and "copy GB/s" in summary and "share of copy" in summary
  # the estimate before the run and a progress line per group reach the terminal under pytest's capture
  assert "estimated" in proc.stdout and f"[group {len(groups)}/{len(groups)}]" in proc.stdout


class FakeDevice:
  """An asynchronous device on a fake clock: a call costs the host ``dispatch`` seconds and queues ``kernel``
  seconds of device work; a wait returns ``wait`` seconds after the device has finished."""

  def __init__(self, dispatch: float, kernel: float, wait: float) -> None:
    self.now, self.free = 0.0, 0.0
    self.dispatch, self.kernel, self.wait_s = dispatch, kernel, wait

  def clock(self) -> float:
    return self.now

  def call(self) -> None:
    self.now += self.dispatch
    self.free = max(self.free, self.now) + self.kernel

  def wait(self) -> None:
    self.now = max(self.now, self.free) + self.wait_s


@pytest.mark.parametrize("n", [1, 10, 1000])
def test_batch_timing_measures_the_device(n: int) -> None:
  """Per call = total / N tends to the device's time as N grows; the host overhead (a single call's time
  minus that) is the dispatch and the wait; the enqueue time shows a host that keeps ahead of the device."""
  from benchmarks._harness import host_overhead, per_call, time_batch

  dispatch, kernel, wait = 20e-6, 100e-6, 15e-6
  dev = FakeDevice(dispatch, kernel, wait)
  total, enqueued = time_batch(dev.call, dev.wait, n, dev.clock)
  assert total == pytest.approx(dispatch + n * kernel + wait)
  assert enqueued == pytest.approx(n * dispatch)
  t = per_call(total, n)
  assert t == pytest.approx(kernel + (dispatch + wait) / n)
  single, _ = time_batch(dev.call, dev.wait, 1, dev.clock)
  assert host_overhead(single, t) == pytest.approx((dispatch + wait) * (1 - 1 / n))
  # a host slower than the device: a long batch times the dispatch (what dispatch_bound flags), a fast one not
  slow = FakeDevice(kernel, dispatch, wait)
  total, enqueued = time_batch(slow.call, slow.wait, n, slow.clock)
  fast_total, fast_enqueued = time_batch(dev.call, dev.wait, n, dev.clock)
  if n >= 10:
    assert per_call(enqueued, n) >= 0.9 * per_call(total, n)
    assert per_call(fast_enqueued, n) < 0.9 * per_call(fast_total, n)


def test_calibrate_fills_the_batch() -> None:
  """The calls per batch make the fastest kernel's batch last the target, though a single call is slowed by
  its host overhead; capped at max_repeat."""
  from benchmarks._harness import calibrate

  class Kernel:
    def __init__(self, cost: float, overhead: float) -> None:
      self.cost, self.overhead, self.repeat = cost, overhead, 1

    def timed(self) -> float:
      return self.overhead + self.repeat * self.cost

  fast, slow = Kernel(10e-6, 100e-6), Kernel(30e-6, 100e-6)
  n = calibrate((fast, slow), 2e-3)
  assert fast.repeat == slow.repeat == n
  assert 2e-3 <= fast.timed() <= 2.2e-3  # the single-call estimate alone would have made it ~18 calls
  assert calibrate((Kernel(1e-9, 0.0),), 2e-3, max_repeat=50) == 50
  assert calibrate((Kernel(5e-3, 0.0),), 2e-3) == 1


def test_copy_bandwidth_share() -> None:
  """The copy bandwidth is measured once per device, dtype and size, and a kernel's share is its bytes over
  its time over that bandwidth."""
  import jax

  from benchmarks._harness import copy_bandwidth, share

  dev = jax.devices("cpu")[0]
  copy = copy_bandwidth(dev, "float32", 12, rounds=3)
  assert copy["copy_bytes"] == 2 * 4 * 2**12 and copy["copy_gbps"] > 0
  assert copy["copy_gbps"] == pytest.approx(copy["copy_bytes"] / copy["copy_median_s"] / 1e9)
  assert copy_bandwidth(dev, "float32", 12) is copy  # measured once in a run
  assert share(12_000, 1e-6, 24.0) == pytest.approx(0.5)  # 12 GB/s of a 24 GB/s copy
  assert share(3 * 2**20, 1e-3, 3 * 2**20 / 1e-3 / 1e9) == pytest.approx(1.0)


def test_resolution_and_separation() -> None:
  """A group separates kernels 5% apart when its A/A IQR is at most 0.05 wide; two kernels differ beyond the
  noise when their IQRs do not overlap."""
  def ratio(median: float, half: float) -> dict:
    return {"ratio": median, "ratio_q1": median - half, "ratio_q3": median + half}

  assert _report.resolves(ratio(1.0, 0.02)) and not _report.resolves(ratio(1.0, 0.04))
  assert _report.separated(ratio(1.0, 0.02), ratio(1.05, 0.02))
  assert not _report.separated(ratio(1.0, 0.04), ratio(1.05, 0.04))


def test_aa_control_verdict() -> None:
  """The run is trustworthy only if every group's A/A median lies in the band."""
  def control(ratio: float) -> dict:
    return {"library": "control", "op": "vjp", "dtype": "float32", "log2_size": 10, "ratio": ratio,
            "ratio_q1": ratio, "ratio_q3": ratio}

  assert _report.aa_control([control(1.0), control(0.975)])["trustworthy"]
  assert not _report.aa_control([control(1.0), control(0.95)])["trustworthy"]
  assert not _report.aa_control([control(1.04)])["trustworthy"]
  assert not _report.aa_control([])["trustworthy"]
  assert "not trustworthy" in "\n".join(_report.aa_section(_report.aa_control([control(1.2)])))


def test_kernels_write_into_donated_buffers() -> None:
  """The timed call allocates nothing: the previous outputs are donated and reused."""
  import jax.numpy as jnp

  from benchmarks._harness import Chained

  args = tuple(jnp.asarray(a) for a in _ops.BY_NAME["jvp"].make_inputs(64, "float32"))
  step = Chained(_ops.BY_NAME["jvp"].baseline, args)
  before = step.out
  step()
  assert all(b.is_deleted() for b in before) and not any(o.is_deleted() for o in step.out)


def test_every_baseline_moves_the_declared_arrays() -> None:
  """Each op's baseline reads the op's inputs and writes as many arrays as the kernel does."""
  import jax

  import surrogates

  for op in _ops.OPS:
    args = op.make_inputs(32, "float32")
    assert len(args) == op.reads
    outs = jax.tree.leaves(jax.eval_shape(op.baseline, *args))
    assert len(outs) == op.writes
    try:
      kernel = op.kernel(surrogates.Sigmoid())
    except _ops.Unsupported:
      continue
    assert len(jax.tree.leaves(jax.eval_shape(kernel, *args))) == op.writes


def planted(doc: dict, factor: float, op: str = "vjp") -> dict:
  """A copy of a report with the ratios (and quartiles) of ``op`` multiplied by ``factor``."""
  doc = copy.deepcopy(doc)
  for b in doc["benchmarks"]:
    if b["extra_info"]["op"] == op:
      for k in ("ratio", "ratio_q1", "ratio_q3"):
        b["extra_info"][k] *= factor
  return doc


def with_ratios(doc: dict, ratio: float, q1: float, q3: float) -> dict:
  doc = copy.deepcopy(doc)
  for b in doc["benchmarks"]:
    b["extra_info"].update(ratio=ratio, ratio_q1=q1, ratio_q3=q3)
  return doc


def test_gate_passes_on_identical_reports(tiny_run) -> None:
  doc = json.loads((tiny_run[1] / "bench-cpu.json").read_text())
  gate = _gate.compare(_gate.entries(doc), _gate.entries(doc), 0.05)
  reference = [e for e in _gate.entries(doc) if e["library"] == "surrogates"]
  assert gate["passed"] and gate["compared"] == len(reference) and not gate["regressions"]


def test_gate_fails_on_planted_regression(tiny_run) -> None:
  doc = with_ratios(json.loads((tiny_run[1] / "bench-cpu.json").read_text()), 1.5, 1.45, 1.55)
  gate = _gate.compare(_gate.entries(planted(doc, 1.3)), _gate.entries(doc), 0.05)
  assert not gate["passed"]
  assert {r["key"][0] for r in gate["regressions"]} == {"vjp"}


def test_gate_uses_the_iqrs(tiny_run) -> None:
  """A growth inside the spread of either run is noise; the same growth with tight IQRs is not; a growth
  beyond the IQRs but below the threshold is not material."""
  doc = json.loads((tiny_run[1] / "bench-cpu.json").read_text())
  wide = with_ratios(doc, 1.5, 1.2, 1.8)
  assert _gate.compare(_gate.entries(planted(wide, 1.2)), _gate.entries(wide), 0.05)["passed"]
  tight = with_ratios(doc, 1.5, 1.49, 1.51)
  assert not _gate.compare(_gate.entries(planted(tight, 1.2)), _gate.entries(tight), 0.05)["passed"]
  assert _gate.compare(_gate.entries(planted(tight, 1.03)), _gate.entries(tight), 0.05)["passed"]


def test_gate_remeasures_before_failing(tiny_run) -> None:
  """A flagged ratio that is back to normal when measured again clears; one that stays high fails."""
  doc = with_ratios(json.loads((tiny_run[1] / "bench-cpu.json").read_text()), 1.5, 1.49, 1.51)
  now, saved = _gate.entries(planted(doc, 1.3)), _gate.entries(doc)
  calm = {"ratio": 1.5, "ratio_q1": 1.49, "ratio_q3": 1.51}
  fields = ("op", "library", "surrogate", "dtype", "log2_size")
  cleared = _gate.run_gate(now, saved, 0.05, lambda key: {**dict(zip(fields, key, strict=True)), **calm})
  assert cleared["passed"] and cleared["cleared_on_remeasure"]
  still = _gate.run_gate(now, saved, 0.05, lambda key: next(e for e in now if list(_gate.key(e)) == key))
  assert not still["passed"] and len(still["regressions"][0]["remeasured"]) == _gate.ATTEMPTS


def test_gate_fails_when_nothing_is_compared(tiny_run) -> None:
  doc = json.loads((tiny_run[1] / "bench-cpu.json").read_text())
  assert not _gate.compare(_gate.entries(doc), [], 0.05)["passed"]


PLANTED = """
import dataclasses
import math

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

  def mass(self):
    return math.inf

  def limits(self):
    return None

  def length_scale(self):
    return 1.0
"""


def test_compare_option_sets_the_exit_status(tiny_run, tmp_path: Path) -> None:
  """A planted slow surrogate against a saved report where its ratio was 1: the run fails, and passes
  against one where the ratio was far higher."""
  (tmp_path / "planted.py").write_text(PLANTED)
  doc = json.loads((tiny_run[1] / "bench-cpu.json").read_text())
  doc["benchmarks"] = [b for b in doc["benchmarks"]
                       if b["extra_info"]["op"] == "vjp" and b["extra_info"]["library"] == "surrogates"][:1]
  info = doc["benchmarks"][0]["extra_info"]
  info.update(surrogate="PlantedSlow", dtype="float32", log2_size=16, ratio=1.0, ratio_q1=0.99, ratio_q3=1.01)
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
  passed = run_bench(tmp_path / "b", *args, "--rounds", "3", "--compare", str(slower), "--threshold", "5%", env=env)
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


def test_layer_run_writes_its_table(tmp_path: Path) -> None:
  proc = run_bench(tmp_path, "--layer", "--layer-neurons", "8", "--layer-steps", "5", "--layer-batch", "2",
                   "--rounds", "1")
  assert proc.returncode == 0, proc.stdout + proc.stderr
  doc = json.loads((tmp_path / "layer-cpu.json").read_text())
  rows = [b["extra_info"] for b in doc["benchmarks"]]
  assert {(r["library"], r["pass"]) for r in rows} == {("surrogates", p) for p in _layer.PASSES}
  assert all(r["device"] == "cpu" and r["timing"] == "batch" and r["calls_per_round"] >= 1 for r in rows)
  table = (tmp_path / "layer-cpu.md").read_text()
  assert "| surrogates | InvSquareGrad |" in table and "Equations:" in table and "| cpu |" in table


@pytest.mark.parametrize("library", list(_layer.BUILDERS))
def test_layer_rows_name_their_device(library: str) -> None:
  """Each library's pass says where it runs: the run's device (here the CPU), for JAX and torch alike."""
  if library != "surrogates":
    module = pytest.importorskip(library)
    if "stubs" in Path(module.__file__).parts:
      pytest.skip(f"{library} is not installed (only the adapter tests' stand-in is on the path)")
  case = _layer.LayerCase(library, "InvSquareGrad", 8, 3, 2, "fwd", "cpu")
  fn = _layer.BUILDERS[library](case, _layer.problem(8, 3, 2))
  assert fn.device == "cpu" and fn.device_kind
  fn()


def test_torch_peer_without_the_device_is_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
  """With --device gpu and no CUDA, a torch peer is skipped as not run on the GPU, never timed on the CPU."""
  torch = pytest.importorskip("torch")
  monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
  case = _layer.LayerCase("snntorch", "InvSquareGrad", 8, 3, 2, "fwd", "gpu")
  with pytest.raises(_layer.NotRun, match="no CUDA device"):
    _layer.torch_device(case)
  with pytest.raises(_layer.NotRun, match="no tpu backend"):
    _layer.torch_device(dataclasses.replace(case, device="tpu"))
  built = []
  monkeypatch.setitem(_layer.BUILDERS, "snntorch", lambda c, d: built.append(_layer.torch_device(c)))
  with pytest.raises(pytest.skip.Exception, match=r"not run on gpu: torch .* finds no CUDA device"):
    _layer.build(case, _layer.problem(8, 3, 2))
  assert not built
  dev, _, name = _layer.torch_device(dataclasses.replace(case, device="cpu"))
  assert dev.type == "cpu" and name == "cpu"


def test_a_failing_peer_is_not_run_and_the_reference_raises(monkeypatch: pytest.MonkeyPatch) -> None:
  """A peer that fails on the device is reported as not run there; the reference failing is an error."""
  def broken(case, data):
    raise RuntimeError("CUDA error: no kernel image is available")

  monkeypatch.setitem(_layer.BUILDERS, "norse", broken)
  monkeypatch.setitem(_layer.BUILDERS, "surrogates", broken)
  case = _layer.LayerCase("norse", "InvSquareGrad", 8, 3, 2, "fwd", "gpu")
  with pytest.raises(pytest.skip.Exception, match="not run on gpu: RuntimeError: CUDA error"):
    _layer.build(case, {})
  with pytest.raises(RuntimeError):
    _layer.build(dataclasses.replace(case, library="surrogates"), {})


def options(**given) -> _options.BenchConfig:
  """The configuration pytest would build from these options (the rest at their defaults)."""
  defaults = {"bench_device": "cpu", "bench_rounds": 0, "bench_max_time": 0.3, "bench_threshold": "0.05",
              "bench_out": "results", "bench_layer_batch": 16}
  values = {**defaults, **{f"bench_{k}": v for k, v in given.items()}}
  return _options.build_config(lambda name: values.get(name))


def test_default_grid_and_full() -> None:
  """The default grid is the VJP in float32 at the memory-bound sizes of each device; --full every op and dtype
  at the full sizes; --smoke one surrogate at one size; an explicit option replaces its axis and is named in the
  grid's text."""
  cfg = options()
  assert (cfg.grid, cfg.ops, cfg.dtypes, cfg.sizes, cfg.only) == ("default", ("vjp",), ("float32",), (24,), ())
  assert options(device="gpu").sizes == (24, 26)
  full = options(full=True)
  assert (full.grid, full.ops, full.dtypes, full.sizes) == ("full", _options.OPS, _options.DTYPES, (10, 16, 24))
  assert options(full=True, device="gpu").sizes == (10, 16, 22, 26)
  smoke = options(smoke=True, device="gpu")
  assert (smoke.grid, smoke.only, smoke.sizes, smoke.ops) == ("smoke", ("Sigmoid",), (26,), ("vjp",))
  assert options(smoke=True, layer=True).layer_steps == (100,) and options(layer=True).layer_steps == (100, 500)
  mixed = options(full=True, sizes="12", ops="fwd")
  assert (mixed.ops, mixed.dtypes, mixed.sizes) == (("fwd",), _options.DTYPES, (12,))
  assert "full grid" in mixed.grid_text() and "--sizes 12 --ops fwd" in mixed.grid_text()
  assert "changed by" not in cfg.grid_text() and "every surrogate" in cfg.grid_text()
  with pytest.raises(ValueError, match="exclude each other"):
    options(smoke=True, full=True)


def test_progress_lines() -> None:
  """A line when each group has finished: the group, the cases done and the time left."""
  from benchmarks.conftest import Progress

  p = Progress({"a": "g1", "b": "g1", "c": "g2"}, 10.0, __import__("collections").Counter(["g1", "g1", "g2"]))
  assert p.finished("a") is None and p.finished("unknown") is None
  line = p.finished("b")
  assert line.startswith("[group 1/2] g1: 2 cases done; 2/3 cases") and "left" in line
  assert p.finished("c").startswith("[group 2/2] g2")
  assert "3 cases in 2 groups, estimated 10 s" in p.start_line(options())


@pytest.mark.parametrize("library", list(_layer.BUILDERS))
def test_layer_equations_agree(library: str) -> None:
  """Each library's layer, as configured, emits exactly the spikes of the NumPy reference dynamics
  (spyx one step later); the gradient pass runs and gives a finite weight gradient."""
  if library != "surrogates":
    module = pytest.importorskip(library)
    if "stubs" in Path(module.__file__).parts:  # tests/test_targets.py's stand-in, not the library
      pytest.skip(f"{library} is not installed (only the adapter tests' stand-in is on the path)")
  data = _layer.problem(16, 30, 3)
  expected = _layer.simulate(data)
  assert 0.02 < expected.mean() < 0.5  # the layer spikes, but not everywhere
  case = _layer.LayerCase(library, "InvSquareGrad", 16, 30, 3, "fwd")
  out = _layer.BUILDERS[library](case, data)()
  out = np.asarray(out.detach() if hasattr(out, "detach") else out)
  if library == "spyx":
    out, expected = out[1:], expected[:-1]
  np.testing.assert_array_equal(out, expected)
  grads = _layer.BUILDERS[library](dataclasses.replace(case, pass_="fwd+bwd"), data)()
  leaves = [np.asarray(g.detach() if hasattr(g, "detach") else g) for g in _leaves(grads)]
  assert leaves and all(np.isfinite(g).all() for g in leaves) and any(np.abs(g).sum() > 0 for g in leaves)


def _leaves(tree) -> list:
  import jax

  return jax.tree.leaves(tree) if not hasattr(tree, "detach") else [tree]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, (24,)),
        ("12", (12,)),
        ("10-12,20", (10, 11, 12, 20)),
        ("2^14,4096", (12, 14)),
        ("all", tuple(range(10, 25))),
    ],
)
def test_parse_sizes(text: str | None, expected: tuple[int, ...]) -> None:
  assert _options.parse_exponents(text, _options.DEFAULT_SIZES["cpu"], _options.ALL_SIZES["cpu"]) == expected


def test_parse_threshold_and_lists() -> None:
  assert _options.parse_threshold("5%") == _options.parse_threshold("0.05") == 0.05
  assert _options.parse_list("vjp,fwd", _options.OPS, "ops") == ("vjp", "fwd")
  assert _options.parse_ints("100,500", (1,)) == (100, 500) and _options.parse_ints("", (1,)) == (1,)
  with pytest.raises(ValueError, match="unknown ops"):
    _options.parse_list("backward", _options.OPS, "ops")
  with pytest.raises(ValueError, match="power of two"):
    _options.parse_exponents("1000", (), ())


def test_the_scaling_estimate_pays_a_surrogates_first_candidate_in_each_worker_that_meets_it():
  # a surrogate's first candidate costs its premium (tracing, compiling) in every worker that takes one of its
  # candidates; the estimate is never below the costliest first candidate
  from benchmarks import scaling

  seconds = {"a1": 10.0, "a2": 1.0, "a3": 1.0, "b1": 4.0, "b2": 1.0, "c1": 2.0}
  surrogate = {k: k[0] for k in seconds}
  kw = {"start": 0.0, "serial": 0.0, "judge": 0.0, "cores": 64}
  # 16 workers start together: a1, b1, c1, and a2, a3, b2 in fresh workers, each paying its surrogate's premium
  assert scaling.estimate(seconds, surrogate, 16, **kw) == pytest.approx(10.0)
  # 2 workers: a1 | b1, b2 (same surrogate: 2.5), c1, then a2 (a is new to this worker: 1 + 9) ; a3 after a1
  assert scaling.estimate(seconds, surrogate, 2, **kw) == pytest.approx(4.0 + 2.5 + 2.0 + 10.0)
  # 11, not 10: a planted free reuse (a4 at its median in the worker that had not met a) would read 10
  crowded = {"a1": 10.0, "a2": 1.0, "a3": 1.0, "a4": 1.0}
  assert scaling.estimate(crowded, {k: "a" for k in crowded}, 2, **kw) == pytest.approx(11.0)
  # more slots than cores run slower
  assert scaling.estimate(seconds, surrogate, 16, **{**kw, "cores": 8}) == pytest.approx(20.0)


def test_the_start_up_benchmark_names_the_versions_each_row_imported(tmp_path, capsys):
  """A row per path: a folder first on the path whose ml_dtypes is a stand-in is seen in that row's versions and
  only there (so a comparison of two installed versions compares what it says)."""
  from benchmarks import startup

  real = Path(__import__("ml_dtypes").__file__)
  (tmp_path / "ml_dtypes").mkdir()  # the installed package under another version number
  (tmp_path / "ml_dtypes" / "__init__.py").write_text(
    "import importlib.util, sys\n"
    f"spec = importlib.util.spec_from_file_location('ml_dtypes', {str(real)!r}, "
    f"submodule_search_locations=[{str(real.parent)!r}])\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "sys.modules['ml_dtypes'] = module\n"
    "spec.loader.exec_module(module)\n"
    "module.__version__ = '0.0.stand-in'\n")
  assert startup.main(["--rounds", "1", "--with", str(tmp_path)]) == 0
  rows = capsys.readouterr().out.splitlines()[2:]
  assert len(rows) == 2
  assert "0.0.stand-in" not in rows[0] and rows[1].startswith(str(tmp_path)) and "0.0.stand-in" in rows[1]
  for row in rows:
    wall, cpu = _wall_and_cpu(row)
    assert wall > 0 and cpu > 0


def _wall_and_cpu(row: str) -> tuple[float, float]:
  """The wall and CPU seconds of a row of ``benchmarks.startup``'s table (after the path and the versions)."""
  words = row.split()
  i = next(k for k, w in enumerate(words) if w.endswith(",")) + 2  # 'jax,' 'ml_dtypes' then the two figures
  return float(words[i]), float(words[i + 1])
