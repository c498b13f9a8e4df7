"""Judged as it is used: inputs of training's sizes, ranks and layouts, a training loop's calls, NaN inputs
apart from finite ones, repeatability, and records bounded by design.

Each planted defect (tests/planted.py, tests/planted_torch.py, written as outside authors write them) is
caught by the check meant for it and its correct twin passes; every verdict here is the judge's, from the
worker's record (:func:`verification.engine.judge.replayed`), and agrees with the verdict made next to the
candidate.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests import planted
from verification.checks import _training
from verification.core import tape as T
from verification.engine.judge import replayed
from verification.engine.platform import environment
from verification.results import Status

torch = pytest.importorskip("torch", reason="torch is not installed (the torch plants need it)")
P = pytest.importorskip("tests.planted_torch")

ALL_DTYPES = {"dtypes": ("float16", "bfloat16", "float32", "float64"), "is_reference": False,
              "hypothesis_examples": 3}


@pytest.fixture(scope="module")
def env():
  return environment()


@pytest.fixture(autouse=True)
def _no_compile(monkeypatch):
  monkeypatch.setenv("SURROGATE_TORCH_COMPILE", "0")


def _judged(candidate, checks, env, opts=ALL_DTYPES):
  """The judge's results by check, after asserting they are those made next to the candidate."""
  direct, judged = replayed(candidate, tuple(checks), opts, env)
  for d, j in zip(direct, judged, strict=True):
    assert (j.check, j.status, j.message) == (d.check, d.status, d.message), (d.check, d.message, j.message)
  return {r.check: r for r in judged}


def _label(group, text):
  (c,) = [c for c in group if c.label.startswith(text)]
  return c


# ---- sizes, ranks, layouts, the training loop --------------------------------------------------------------


@pytest.mark.parametrize("defect, twin, words", [
    ("lax.map over 65,536-element chunks drops the tail", "correct: lax.map over 65,536-element chunks",
     "first at index 1,048,576"),
    ("NHWC kernel reshaped back instead of transposed", "correct: NHWC kernel transposed back", "(2, 3, 4, 5) input"),
])
def test_jax_sizes_and_ranks_as_training_has_them(defect, twin, words, env):
  bad = _judged(_label(planted.DEFECTIVE, defect), ("forward", "autodiff"), env)
  assert bad["autodiff"].status is Status.FAIL and words in bad["autodiff"].message, bad["autodiff"].message
  good = _judged(_label(planted.CORRECT, twin), ("forward", "autodiff"), env)
  assert {r.status for r in good.values()} == {Status.PASS}, {k: r.message for k, r in good.items()}


@pytest.mark.parametrize("defect, twin, words", [
    ("a backward in 65,536-element chunks drops the tail", "a backward in 65,536-element chunks and the tail",
     "first at index 1,048,576"),
    ("a kernel walks the buffer", "a kernel on x.contiguous()", "channels_last"),
    ("backward reads the module's last input", "autograd.Function with forward(ctx, x)", "that step's own input"),
])
def test_torch_sizes_layouts_and_the_training_loop(defect, twin, words, env):
  bad = _judged(_label(P.DEFECTIVE, defect), ("autodiff",), env)["autodiff"]
  assert bad.status is Status.FAIL and words in bad.message, bad.message
  good = _judged(_label(P.CORRECT, twin), ("autodiff",), env)["autodiff"]
  assert good.status is Status.PASS, good.message


def test_the_large_input_is_recorded_in_few_bytes_where_it_agrees_and_whole_where_it_does_not(env):
  from verification.checks import context
  from verification.checks._context import Comparisons

  sizes = {}
  for c in (_label(planted.CORRECT, "correct: lax.map over"), _label(planted.DEFECTIVE, "lax.map over")):
    tape = T.Tape("record")
    ctx = context(c, ALL_DTYPES, tape)
    _training.large_input(ctx, Comparisons())
    entries = [e for e in tape.take() if e[0].startswith("_large_outputs")]
    sizes[c.label[:7]] = len(T.dumps(entries))
  assert sizes["correct"] < 200_000, sizes  # 1,060,921 float32 outputs twice, agreeing: kilobytes
  assert sizes["correct"] < sizes["lax.map"] < 64 << 20, sizes  # the differing tail's bytes are all there


def test_a_packed_array_is_restored_exactly_and_garbage_is_refused():
  rng = np.random.default_rng(0)
  expected = rng.normal(size=1000).astype(np.float32)
  values = expected.copy()
  values[[3, 999]] = [np.nan, -0.0]
  packed = T.packed_against(values, expected)
  assert packed.size == 2 * (4 + 4)  # two positions and their elements
  back = T.unpacked_against(packed, expected)
  assert back.tobytes() == values.tobytes()
  assert T.packed_against(expected, expected).size == 0
  halves = np.array([1000, 3], np.uint32).view(np.uint8), np.array([7, 0], np.uint32).view(np.uint8)
  for garbage in (np.arange(10, dtype=np.uint8),  # not whole positions and elements
                  np.concatenate([np.array([1000], np.uint32).view(np.uint8), np.zeros(4, np.uint8)]),  # outside
                  np.concatenate(halves),  # positions not increasing
                  packed.view(np.uint16)):  # not bytes
    with pytest.raises(T.TapeError):
      T.unpacked_against(garbage, expected)


def _sigmoid_g(x, narrow_at_zero=False):
  xf = np.asarray(x, np.float64)
  s = 1 / (1 + np.exp(-4 * xf))
  g = 4 * s * (1 - s)
  return g.astype(np.float32) if narrow_at_zero and np.any(xf == 0) else g.astype(np.asarray(x).dtype)


@pytest.mark.parametrize("narrow_at_zero", [False, True], ids=["packed", "another dtype: whole"])
def test_an_evaluation_at_nearby_inputs_is_recorded_as_what_differs_and_replayed_exactly(narrow_at_zero):
  """The low-precision check evaluates g at x and at x with a 16-bit dtype's subnormals flushed to zero: the
  second is on the record as the elements where it differs from the first (the judge has the first), restored
  exactly; an output of another dtype there is recorded whole. A forged packing is refused."""
  from verification.core.candidate import Candidate, judged_fields, stand_in
  from verification.core.evaluate import Evaluator

  c = Candidate(name="Sigmoid", params={"alpha": 4.0}, label="numpy sigmoid",
                forward=lambda x: (np.asarray(x) >= 0).astype(np.asarray(x).dtype),
                vjp=lambda x, ct: _sigmoid_g(x, narrow_at_zero) * ct)
  x = np.linspace(-4, 4, 20_000)  # no zero among them
  near = x.copy()
  near[[5, 17, 19_999]] = 0.0
  worker = Evaluator(c, T.Tape("record"))
  first = worker.evaluate(x, ("g",))["g"]
  there = worker.near(near, "g", first)
  entries = worker.tape.take()
  size = len(T.dumps([e for e in entries if e[0].startswith("Evaluator._near")]))
  judge = Evaluator(stand_in(judged_fields(c)), T.Tape("replay"))
  judge.tape.add(T.loads(T.dumps(entries)))
  assert judge.evaluate(x, ("g",))["g"].tobytes() == first.tobytes()
  replayed_there = judge.near(near, "g", first)
  assert replayed_there.dtype == there.dtype and replayed_there.tobytes() == there.tobytes()
  direct = Evaluator(c).evaluate(near, ("g",))["g"]  # what a plain evaluation there gives
  assert there.dtype == direct.dtype and there.tobytes() == direct.tobytes()
  assert size > 20_000 * 4 if narrow_at_zero else size < 1_000, size  # 3 positions and elements, or whole
  if not narrow_at_zero:
    garbage = ["ok", ["d", [["packed", ["a", "uint8", [10], bytes(range(10))]]]]]  # not whole positions and elements
    forged = [[k, garbage if k.startswith("Evaluator._near") else v] for k, v in entries]
    again = Evaluator(stand_in(judged_fields(c)), T.Tape("replay"))
    again.tape.add(T.loads(T.dumps(forged)))
    with pytest.raises(T.TapeError):
      again.near(near, "g", first)


def test_the_diagnosis_names_the_decisive_input_not_a_neighbouring_convention_case(env):
  r = _judged(_label(planted.DEFECTIVE, "threshold at 1e-30"), ("forward",), env)["forward"]
  assert r.status is Status.FAIL, r.message
  assert r.detail["worst_input"] > 0 and "H(0" not in r.message and "H(1.17549435" in r.message, r.message


# ---- NaN inputs apart ----------------------------------------------------------------------------------


def test_a_candidate_that_raises_on_nan_is_judged_on_its_finite_inputs(env):
  good = _judged(P.VALIDATING, ("edge",), env)["edge"]
  assert good.status is Status.PASS, good.message
  assert "NaN inputs" in good.message and "membrane potential holds NaN" in good.message
  assert any("raised" in n for n in good.detail["nan_inputs"])
  bad = _judged(P.VALIDATING_OVERFLOW, ("edge",), env)["edge"]  # the finite defect is still found
  assert bad.status is Status.FAIL and "g (the VJP) is nan at x = -" in bad.message, bad.message


# ---- repeatability -------------------------------------------------------------------------------------


def test_a_nondeterministic_candidate_is_named_so_with_its_spread_in_every_run(env):
  for _ in range(2):  # the same verdict each run
    got = _judged(P.NUMPY_NOISY, ("autodiff", "differential"), env)
    for check, r in got.items():
      assert r.status is Status.FAIL and r.message.startswith("nondeterministic"), (check, r.message)
      assert r.detail["spread"] > 0 and r.detail["expected"] != r.detail["got"]
      assert repr(r.detail["expected"]) in r.message and repr(r.detail["got"]) in r.message
  twin = _judged(P.NUMPY_DETERMINISTIC, ("autodiff", "differential"), env)
  assert {r.status for r in twin.values()} == {Status.PASS}, {k: r.message for k, r in twin.items()}


def _sigmoid_with_own_surrogate_grad(label, noisy):
  """Sigmoid(4) as a custom_jvp with its own surrogate_grad, computed on the host (``pure_callback``); a
  ``noisy`` one flips the last bit of one element per call (a race in a native kernel, say)."""
  import jax

  from verification.core.candidate import Candidate

  rng = np.random.default_rng()

  def on_host(x):
    out = np.array(_sigmoid_g(x))
    if noisy and out.size:
      bits = out.reshape(-1).view(f"u{out.itemsize}")
      bits[rng.integers(out.size)] ^= 1
    return out

  def surrogate_grad(x):
    return jax.pure_callback(on_host, jax.ShapeDtypeStruct(x.shape, x.dtype), x)

  @jax.custom_jvp
  def spike(x):
    return (x >= 0).astype(x.dtype)

  @spike.defjvp
  def _(primals, tangents):
    (x,), (t,) = primals, tangents
    s = jax.nn.sigmoid(4 * x)
    return spike(x), 4 * s * (1 - s) * t

  return Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=spike, surrogate_grad=surrogate_grad, label=label,
                   backend="jax")


def test_one_second_evaluation_serves_g_and_surrogate_grad_and_still_finds_either_nondeterministic(env, monkeypatch):
  """The low-precision check computes g and surrogate_grad a second time at each grid for determinism: one
  second evaluation of the bundle serves both (each 16-bit grid evaluated twice in all, not three times). A
  surrogate_grad that differs from one evaluation to the next is named nondeterministic all the same, and its
  deterministic twin passes."""
  from verification import checks
  from verification.core.evaluate import Evaluator

  quiet = _sigmoid_with_own_surrogate_grad("deterministic surrogate_grad", noisy=False)
  evaluated: dict[tuple[str, int], int] = {}
  original = Evaluator._evaluate_jax

  def counted(self, x, quantities, *args, **kwargs):
    if self.candidate is quiet:
      evaluated[(x.dtype.name, x.size)] = evaluated.get((x.dtype.name, x.size), 0) + 1
    return original(self, x, quantities, *args, **kwargs)

  monkeypatch.setattr(Evaluator, "_evaluate_jax", counted)
  r = checks.run_check(quiet, checks.context(quiet, ALL_DTYPES), "low_precision")
  assert r.status is Status.PASS, r.message
  grids = {k: n for k, n in evaluated.items() if k[0] in ("float16", "bfloat16") and k[1] > 30_000}
  assert len(grids) == 2 and set(grids.values()) == {2}, evaluated
  monkeypatch.undo()

  noisy = _judged(_sigmoid_with_own_surrogate_grad("noisy surrogate_grad", noisy=True), ("low_precision",),
                  env)["low_precision"]
  assert noisy.status is Status.FAIL and noisy.message.startswith("nondeterministic: sg"), noisy.message
  twin = _judged(quiet, ("low_precision",), env)["low_precision"]
  assert twin.status is Status.PASS, twin.message


def test_values_in_a_failing_message_are_printed_in_full(env):
  """Two values that differ in the 9th digit are told apart in the message (not both printed as "1")."""
  from verification.core.candidate import Candidate

  slightly = Candidate(name="Sigmoid", params={"alpha": 4.0}, backend="numpy", label="g × (1 + 1e-9)",
                       forward=lambda x: (np.asarray(x) >= 0).astype(x.dtype),
                       vjp=lambda x, ct: (ct * 4 * (1 + 1e-9) / (2 + np.exp(-4 * x.astype(np.float64))
                                                                   + np.exp(4 * x.astype(np.float64)))).astype(x.dtype))
  r = _judged(slightly, ("differential",), env, {**ALL_DTYPES, "dtypes": ("float64",)})["differential"]
  assert r.status is Status.FAIL
  assert repr(r.detail["expected"]) in r.message and repr(r.detail["got"]) in r.message
  assert r.detail["expected"] != r.detail["got"]


# ---- bounded records -----------------------------------------------------------------------------------


def test_a_staircase_g_fails_quadrature_saying_so_and_every_check_reports():
  from verification.engine.runner import Options, run

  got = run("tests.planted_torch:STAIRCASE", Options(jobs=1, timeout=300, hypothesis_examples=3))
  by_check = {r.check: r for r in got.results}
  from verification.checks import CHECKS

  assert set(by_check) == set(CHECKS)
  assert not [r.message for r in by_check.values() if "protocol" in r.message or r.status is Status.ERROR]
  quad = by_check["quadrature"]
  assert quad.status is Status.FAIL and "evaluations" in quad.message, quad.message


# ---- capabilities by mechanism ---------------------------------------------------------------------------


def test_torchscript_and_compiled_functions_and_their_partials_are_torch_candidates():
  import functools

  from verification.core.candidate import Candidate

  for fn in (P.scripted_spike, P.compiled_spike, functools.partial(P.scripted_spike),
             functools.partial(P.compiled_spike), torch.jit.script(P.Spike())):
    assert Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=fn).backend == "torch", fn


def test_a_compiled_functions_capability_does_not_depend_on_the_checks_before_it(env, monkeypatch):
  monkeypatch.setenv("SURROGATE_TORCH_COMPILE", "aot_eager")  # the transforms check compiles it again
  c = _label(P.CORRECT, "a torch.compile'd function")
  f64 = {**ALL_DTYPES, "dtypes": ("float64",)}
  alone = _judged(c, ("second_order",), env, f64)["second_order"]
  after = _judged(c, ("autodiff", "forward_mode", "transforms", "second_order"), env, f64)["second_order"]
  assert alone.status is after.status is Status.UNSUPPORTED, (alone.message, after.message)
  assert alone.message == after.message and alone.detail["capability"] == "second"


def test_the_fallback_phrases_classify_a_missing_capability_and_nothing_else():
  from verification.checks import _torch as TT
  from verification.checks._jax import GAP_MARKERS

  assert TT.classify(RuntimeError("torch.compile with aot_autograd does not currently support double backward"),
                     "second")[0] == "second"
  assert TT.classify(RuntimeError("expected a tensor of shape (3,)"), "second") is None
  assert TT.classify(RuntimeError("anything"), "second", "torch.compile")[0] == "second"  # the mechanism decides
  assert any(m in "pure callbacks do not support jvp." for m in GAP_MARKERS["second"])
  assert not any(m in "shapes (3,) and (4,) do not match" for m in GAP_MARKERS["second"])
