"""The machinery that makes verification fast is correct: the compilation cache's key, the shared
hypothesis draws, the vectorised quadrature and parameters passed as jit arguments. No timings here
(speed is measured by the benchmarks); each test states what would be wrong if it failed."""

from __future__ import annotations

import hashlib
import math

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import pytest
from scipy import integrate

import surrogates
from verification.core import cache, numerics
from verification.core.candidate import Candidate, reference_candidates
from verification.core.evaluate import Evaluator

# ---------------------------------------------------------------------------------------------
# Persistent compilation cache
# ---------------------------------------------------------------------------------------------


def test_cache_directory_is_keyed_by_versions_and_sources(monkeypatch, tmp_path):
  monkeypatch.setenv(cache.ENV, str(tmp_path))
  path = cache.directory()
  assert path.parent == tmp_path
  assert path.name == f"jax-{jax.__version__}-jaxlib-{jaxlib.__version__}-{cache.source_hash()}"


def test_source_hash_changes_with_the_code(monkeypatch, tmp_path):
  (tmp_path / "surrogates").mkdir()
  (tmp_path / "verification").mkdir()
  (tmp_path / "surrogates" / "a.py").write_text("x = 1\n")
  monkeypatch.setattr(cache, "_ROOT", tmp_path)
  before = cache.source_hash()
  assert cache.source_hash() == before
  (tmp_path / "surrogates" / "a.py").write_text("x = 2\n")
  assert cache.source_hash() != before


def test_source_hash_reads_the_project_sources():
  # the key covers the code that compiles the programs: a hash of no files at all would reuse a program
  # compiled by other code
  assert (cache._ROOT / "surrogates" / "__init__.py").is_file() and (cache._ROOT / "verification" / "core").is_dir()
  assert cache.source_hash() != hashlib.sha256().hexdigest()[:12]


@pytest.mark.parametrize("value", ["off", "0", ""])
def test_cache_can_be_disabled(monkeypatch, value):
  monkeypatch.setenv(cache.ENV, value)
  assert cache.directory() is None


def test_compile_counter_counts_compilations():
  f = jax.jit(lambda v: jnp.sin(v) * 3.0 + 0.25)
  a, b = np.arange(7.0), np.arange(9.0)
  with cache.CompileCounter() as counter:
    f(a)
    f(a)  # same shape: no new program
    f(b)  # new shape: a new program
  assert counter.requests == 2
  assert counter.compiled + counter.hits == counter.requests


# ---------------------------------------------------------------------------------------------
# Hypothesis draws: a pure function of (dtype, count, seed), computed once
# ---------------------------------------------------------------------------------------------


def test_hypothesis_draws_are_shared_reproducible_and_read_only():
  draws = numerics.hypothesis_draws("float32", 3, 0)
  assert numerics.hypothesis_draws("float32", 3, 0) is draws  # cached: drawn once per process
  numerics.hypothesis_draws.cache_clear()
  again = numerics.hypothesis_draws("float32", 3, 0)
  assert len(draws) == len(again) == 3
  for (v1, w1), (v2, w2) in zip(draws, again, strict=True):
    assert v1.dtype == np.float32 and v1.shape == (512,) and np.array_equal(v1, v2) and w1 == w2
    assert 1e-3 <= w1 <= 1e3 and np.all(np.isfinite(v1))
    with pytest.raises(ValueError):
      v1[0] = 1.0
  values = np.concatenate([v for v, _ in draws])
  assert np.any(values != 0), "the draws explore more than the minimal example"


# ---------------------------------------------------------------------------------------------
# Quadrature
# ---------------------------------------------------------------------------------------------

_GAUSS = lambda x: np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


@pytest.mark.parametrize("g, a, b, breaks, exact", [
    (_GAUSS, -12.0, 12.0, [0.0], math.erf(12 / math.sqrt(2))),
    (lambda x: np.maximum(1 - np.abs(x), 0.0), -4.0, 0.5, [-1.0, 0.0, 1.0], 0.875),  # kinks as breakpoints
    (lambda x: np.where(np.abs(x) < 0.5, 1.0, 0.0), -1.0, 3.0, [-0.5, 0.5], 1.0),  # jumps as breakpoints
    (lambda x: 1 / (1 + x * x), 3.0, -40.0, [0.0], -(math.atan(3.0) - math.atan(-40.0))),  # reversed bounds
])
def test_integrate_between_known_integrals(g, a, b, breaks, exact):
  value, err = numerics.integrate_between(g, a, b, breaks)
  # the error estimate is honest (bounds the true error) and meets the 1e-10 relative target
  assert abs(value - exact) <= max(err, 1e-15)
  assert err <= 1e-10 * abs(exact) + 1e-13


@pytest.mark.parametrize("g, exact", [
    (_GAUSS, 1.0),
    (lambda x: 1 / (1 + x * x) / math.pi, 1.0),
    (lambda x: 0.25 / (1 + np.abs(x)) ** 1.5, 1.0),  # slow tail |x|^-1.5: an integrable singularity after the map
])
def test_integrate_real_line_known_masses(g, exact):
  value, err = numerics.integrate_real_line(g, 50.0, [0.0])
  assert abs(value - exact) <= err
  assert err <= 1e-8


@pytest.mark.parametrize("g, start, direction", [
    (_GAUSS, 3.0, 1.0), (lambda x: 1 / (1 + x * x) / math.pi, -50.0, -1.0),
    (lambda x: np.abs(x) ** -1.0001, 10.0, 1.0),  # quad's extrapolation at work: 35 rules
    (lambda x: np.where(np.abs(x) < 1e3, 1.0, 0.0), 50.0, 1.0),  # a jump: quad bisects towards it
])
def test_a_tail_evaluates_each_of_quads_rules_in_one_call_with_quads_own_values(g, start, direction):
  """quad asks for g one point at a time; each of its 15-point rules is evaluated in one call, and the integral
  and its error estimate are bit for bit those of quad calling g at each point."""
  import warnings

  calls = []

  def counted(x):
    calls.append(len(x))
    return g(x)

  got = numerics.integrate_tail(counted, start, direction)
  lo, hi = (start, np.inf) if direction > 0 else (-np.inf, start)
  asked = []

  def one_point(t):
    asked.append(t)
    return float(g(np.array([t]))[0])

  with warnings.catch_warnings():
    warnings.simplefilter("ignore", integrate.IntegrationWarning)
    value, err, _, *failed = integrate.quad(one_point, lo, hi, limit=200, epsabs=1e-13, epsrel=1e-10, full_output=1)
  assert got == (value, max(err, abs(value)) if failed else err)
  assert calls == [15] * (len(asked) // 15) and len(asked) >= 105, (calls, len(asked))  # each point once


def test_a_point_outside_the_tail_or_not_finite_is_evaluated_on_its_own():
  rules = numerics._Qk15iRules(3.0, 1.0)
  first = rules.rule_centred_at(4.0)  # t = 1/2, the first rule's centre: its nodes 1/2 ∓ xgk/2, mapped
  assert len(first) == 15 and first[0] == 4.0 and first[1] == 3.0 + (1 - (0.5 - 0.5 * numerics._XGK15[0])) / (
      0.5 - 0.5 * numerics._XGK15[0])
  assert rules.rule_centred_at(2.0) is None  # before the tail's start
  assert rules.rule_centred_at(math.inf) is None and rules.rule_centred_at(math.nan) is None


def test_error_estimate_stays_honest_when_the_target_is_out_of_reach():
  """A jump not declared as a breakpoint: five bisections cannot reach 1e-10, and the returned
  estimate must still bound the error (the quadrature check relies on it); with enough rounds the
  bisection closes in on the jump and meets the target."""
  g = lambda x: np.where(x < 1 / math.pi, 1.0, 0.0)
  value, err = numerics.adaptive_quad(g, [0.0, 1.0], max_rounds=5)
  assert abs(value - 1 / math.pi) <= err
  assert err > 1e-10
  value, err = numerics.adaptive_quad(g, [0.0, 1.0])
  assert abs(value - 1 / math.pi) <= err <= 1e-10


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # limit=1: one qk21 on purpose
def test_gauss_kronrod_matches_scipy_on_one_panel():
  lo, hi = np.array([-1.0, 0.3]), np.array([2.0, 0.9])
  value, err, floor = numerics.gauss_kronrod(np.cos, lo, hi)
  for i in range(2):
    ref, _ = integrate.quad(np.cos, lo[i], hi[i], limit=1)  # qk21 once: the same rule
    assert value[i] == pytest.approx(ref, rel=1e-15, abs=1e-16)
    assert 0 < floor[i] <= err[i]


# ---------------------------------------------------------------------------------------------
# Parameters as jit arguments
# ---------------------------------------------------------------------------------------------

_X = np.concatenate([np.linspace(-6.0, 6.0, 257), [0.0, -0.0, 1e-300, -np.inf, np.inf]])


def _per_parameter_set(c: Candidate, x: np.ndarray) -> dict[str, np.ndarray]:
  """The same quantities from a bundle compiled for this parameter set alone (constants folded in)."""
  ev = Evaluator(c)
  ev._shared = None
  return ev.evaluate(x)


@pytest.mark.parametrize("name", ["Sigmoid", "SquarewaveFourierSeries", "MultiGaussianGrad", "PiecewiseLeakyRelu"])
def test_shared_bundle_gives_the_values_of_a_bundle_per_parameter_set(name):
  """Within a few ulp of the peak: only the folding of the parameters into constants differs."""
  for c in reference_candidates([name]):
    for dtype in (np.float32, np.float64):
      x = _X.astype(dtype)
      got, want = Evaluator(c).evaluate(x), _per_parameter_set(c, x)
      assert set(got) == set(want)
      for q in got:
        a, b = np.asarray(got[q], np.float64), np.asarray(want[q], np.float64)
        assert np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(np.isinf(a), np.isinf(b)), (c.label, q)
        fin = np.isfinite(a)
        size = np.max(np.abs(b[fin])) if fin.any() else 0.0
        assert np.all(np.abs(a[fin] - b[fin]) <= 8 * np.finfo(dtype).eps * size), (c.label, q, dtype)


def test_parameter_sets_of_a_surrogate_share_one_compilation_per_dtype():
  cands = reference_candidates(["Sigmoid"])
  assert len(cands) == 3
  x = np.linspace(-2.0, 2.0, 9)
  Evaluator(cands[0]).evaluate(x)  # the first parameter set compiles the bundle (or reads it from the cache)
  with cache.CompileCounter() as counter:
    for c in cands[1:]:
      Evaluator(c).evaluate(x)
  assert counter.requests == 0, "another parameter set of the same surrogate compiled its own bundle"


class _BranchingSigmoid(surrogates.Sigmoid):
  """A Sigmoid whose g tests its parameter in Python (no registry surrogate does so now)."""

  def _grad(self, x):
    if self.alpha > 0:  # a tracer has no truth value
      return super()._grad(x)
    return jnp.zeros_like(x)


def test_a_surrogate_that_branches_on_a_parameter_falls_back_to_one_bundle_per_set(monkeypatch):
  """Tracing its parameter raises, so the evaluator marks the shared program unusable and compiles
  per parameter set instead, with the values of the surrogate it imitates."""
  from verification.core import evaluate

  monkeypatch.setattr(evaluate, "REGISTERED", evaluate.REGISTERED | {_BranchingSigmoid})
  s = _BranchingSigmoid(alpha=4.0)
  c = Candidate(name="Sigmoid", params=s.params, fn=s, surrogate_fun=s.surrogate_fun)
  ev = Evaluator(c)
  assert ev._shared is not None
  x = np.array([-1.0, 0.0, 0.001, 1.0])
  out = ev.evaluate(x)
  want = Evaluator(Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=surrogates.Sigmoid(alpha=4.0))).evaluate(x)
  np.testing.assert_allclose(out["g"], want["g"], rtol=1e-15)
  key, _ = ev._shared
  assert evaluate._SHARED[(key, evaluate.bundle(ev.available))] is None


def test_only_the_reference_itself_shares_bundles():
  """A candidate whose callables are not the surrogate's own is evaluated as given, never rebuilt."""
  s = surrogates.Sigmoid(alpha=4.0)
  wrong_p = Candidate(name="Sigmoid", params=s.params, fn=s, surrogate_fun=lambda x: 2 * s.surrogate_fun(x))
  out = Evaluator(wrong_p).evaluate(np.array([0.0, 1.0]))
  assert out["P"][0] == pytest.approx(1.0)  # 2·σ(0), the candidate's own P
  other = Candidate(name="Sigmoid", params=s.params, fn=jax.custom_jvp(lambda x: s(x)))
  assert Evaluator(other)._shared is None


# ---------------------------------------------------------------------------------------------
# Scheduling: a worker keeps to one surrogate, two workers do not compile the same programs
# ---------------------------------------------------------------------------------------------


def test_workers_take_the_parameter_sets_of_one_surrogate_and_avoid_each_others():
  """A worker that checked a parameter set of A gets A's next set (its programs are compiled there);
  a second worker starts on B rather than compiling A's programs at the same time."""
  from collections import deque
  from types import SimpleNamespace

  from verification.engine.scheduling import Options, _Pool

  cands = {f"{n}{k}": SimpleNamespace(name=n) for n in "AB" for k in range(3)}
  pool = _Pool(None, Options(), {}, cands, lambda *_: None, 2)
  todo = deque((label, None) for label in cands)
  order = []
  for slot in (0, 1, 0, 1, 0, 1):
    label, _ = pool.next_for(slot, todo)
    order.append((slot, label))
    pool.jobs[slot] = SimpleNamespace(label=label)  # busy with it
  assert order == [(0, "A0"), (1, "B0"), (0, "A1"), (1, "B1"), (0, "A2"), (1, "B2")]
  assert not todo


# ---------------------------------------------------------------------------------------------
# The evaluator's recent evaluations: by input bytes, read-only
# ---------------------------------------------------------------------------------------------


def test_recent_evaluations_are_keyed_by_bytes_and_read_only():
  """A sign-bit threshold gives H(+0) = 1 and H(-0) = 0: the two inputs compare equal as values, so a
  memo keyed by values would answer the second from the first. What it returns cannot be changed."""

  @jax.custom_jvp
  def sign_bit_spike(x):
    return jnp.where(jnp.signbit(x), 0.0, 1.0).astype(x.dtype)

  sign_bit_spike.defjvp(lambda p, t: (sign_bit_spike(p[0]), t[0]))
  ev = Evaluator(Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=sign_bit_spike))
  plus, minus = ev.evaluate(np.array([0.0]), ("H",))["H"], ev.evaluate(np.array([-0.0]), ("H",))["H"]
  assert plus[0] == 1.0 and minus[0] == 0.0
  again = ev.evaluate(np.array([0.0]), ("H", "g"))
  assert again["H"] is plus  # the same evaluation, not a second one
  with pytest.raises(ValueError):
    again["g"][0] = 5.0


@pytest.mark.parametrize("n", [1, 3, 4095, 4096, 4097, 10_000])
def test_inputs_are_padded_to_whole_blocks_with_their_own_values_repeated(n):
  """The padding of an evaluation's last block repeats the input as ``np.resize`` does: a candidate sees no value
  it was not asked about (a non-elementwise defect would otherwise see other neighbours)."""
  from verification.core.evaluate import BLOCK, _cyclic

  x = np.random.default_rng(n).normal(size=n)
  total = -(-n // BLOCK) * BLOCK
  assert _cyclic(x, total).tobytes() == np.resize(x, total).tobytes()


def test_the_structure_test_traces_a_jax_candidate_and_calls_it_only_where_the_trace_is_wrong():
  """A candidate whose traced outputs have the input's shape is not run op by op before the checks (each eager
  call of a surrogate is hundreds of dispatches), and is traced once, its VJP with it; one whose traced output
  is wrong is called, and its own output names what is wrong, as before."""
  from verification.engine.worker import sanity

  eager, traced = [], []

  @jax.custom_vjp
  def spike(x):
    (traced if isinstance(x, jax.core.Tracer) else eager).append(1)
    return (x >= 0).astype(x.dtype)

  spike.defvjp(lambda x: (spike(x), x), lambda x, ct: (ct / (1 + jnp.abs(4 * x)) ** 2,))

  def as_list(x):
    return [spike(x)]

  assert sanity(Candidate(name="FastSigmoid", params={"alpha": 4.0}, fn=spike)) is None
  assert eager == [] and len(traced) == 1
  assert "returned a list" in sanity(Candidate(name="FastSigmoid", params={"alpha": 4.0}, fn=as_list))
  assert eager


# ---------------------------------------------------------------------------------------------
# The profile's clock (--profile)
# ---------------------------------------------------------------------------------------------


def test_the_clock_gives_each_moment_to_one_part():
  import time

  from verification.engine.profile import Clock

  clock = Clock()
  with clock.span("checks"):
    time.sleep(0.05)
    with clock.span("candidate code"):
      time.sleep(0.05)
      clock.jax_event("tracing", 0.02)  # an inner function traced inside an outer one: counted once
      clock.jax_event("tracing", 0.03)
    report = clock.report()  # a span still running counts up to now
  assert report["candidate code"] == pytest.approx(0.05 - 0.03 + 0.0, abs=0.03)
  assert report["tracing"] == pytest.approx(0.03, abs=1e-3)
  spans = report["checks"] + report["candidate code"] + report["tracing"]
  assert spans == pytest.approx(0.10, abs=0.03)
  assert report["lifetime"] - sum(report[k] for k in ("start", "checks", "candidate code", "tracing")) < 0.01


def test_a_planted_gap_in_the_timers_shows_as_unaccounted():
  # the add-up test of the run's profile can fail: a part no timer measured is a gap of that size
  import time

  from verification.engine import profile

  clock = profile.Clock()
  with clock.span("judging"):
    time.sleep(0.02)
  time.sleep(0.2)  # no span
  report = clock.report()
  assert profile.unaccounted(report) == pytest.approx(0.2, abs=0.05)
  assert profile.usable({**report, "cpu": float("nan")}) is None and profile.usable(report) == report


# ---------------------------------------------------------------------------------------------
# The reference's values kept across runs
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def values_cache(monkeypatch, tmp_path):
  """A fresh keyed cache directory for this test (the process's own is put back after)."""
  monkeypatch.setattr(cache, "_enabled", tmp_path)
  monkeypatch.setattr(cache, "_SAVING", True)  # as in a judge process
  return tmp_path


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_the_reference_values_are_read_back_bit_exact_without_computing(values_cache, monkeypatch, dtype):
  import ml_dtypes

  ref = surrogates.Sigmoid(alpha=4.0)
  x = np.linspace(-3, 3, 101).astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
  x[7] = np.nan
  first = Evaluator(Candidate(name=ref.name, params=ref.params, fn=ref, surrogate_fun=ref.surrogate_fun,
                              surrogate_grad=ref.surrogate_grad), saved=True).evaluate(x, record=False)
  assert list((values_cache / cache.VALUES).rglob("*.values"))
  again = Evaluator(Candidate(name=ref.name, params=ref.params, fn=ref, surrogate_fun=ref.surrogate_fun,
                              surrogate_grad=ref.surrogate_grad), saved=True)
  monkeypatch.setattr(again, "_evaluate_jax", lambda *a, **k: pytest.fail("computed, not read back"))
  second = again.evaluate(x, record=False)
  assert set(first) == set(second)
  for q in first:
    assert second[q].dtype == first[q].dtype and second[q].tobytes() == first[q].tobytes(), q


def test_saved_values_are_keyed_by_parameters_inputs_and_machine(values_cache, monkeypatch):
  # a planted reuse: values saved for alpha=4 must not serve alpha=4.000000000000001, another input, or -0.0
  x = np.array([0.0, 0.5, 1.0], np.float32)
  keys = {cache.values_key(repr(surrogates.Sigmoid(alpha=a)), v)
          for a in (4.0, 4.000000000000001) for v in (x, x * 2, np.array([-0.0, 0.5, 1.0], np.float32))}
  assert len(keys) == 6
  key = cache.values_key("Sigmoid(alpha=4.0)", x)
  monkeypatch.setattr(cache, "_machine", lambda: "gpu|H200|x86_64|")
  assert cache.values_key("Sigmoid(alpha=4.0)", x) != key


def test_a_torn_entry_is_computed_again_and_candidates_are_not_saved(values_cache, monkeypatch):
  ref = surrogates.Sigmoid(alpha=4.0)
  cand = Candidate(name=ref.name, params=ref.params, fn=ref, surrogate_fun=ref.surrogate_fun,
                   surrogate_grad=ref.surrogate_grad)
  x = np.linspace(-1, 1, 9)
  good = Evaluator(cand, saved=True).evaluate(x, record=False)
  (entry,) = (values_cache / cache.VALUES).rglob("*.values")
  entry.write_bytes(b"torn")
  assert np.array_equal(Evaluator(cand, saved=True).evaluate(x, record=False)["g"], good["g"])
  # a candidate's own evaluator (saved=False), and any candidate that is not a registry surrogate as-is, saves nothing
  entry.unlink()
  Evaluator(cand).evaluate(x, record=False)
  Evaluator(Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=lambda v: ref(v)), saved=True).evaluate(x, record=False)
  assert not list((values_cache / cache.VALUES).rglob("*.values"))
  # a worker process (where candidate code runs) saves nothing: only a judge's values are kept
  monkeypatch.setattr(cache, "_SAVING", False)
  Evaluator(cand, saved=True).evaluate(x, record=False)
  assert not list((values_cache / cache.VALUES).rglob("*.values"))


# ---------------------------------------------------------------------------------------------
# The harness process
# ---------------------------------------------------------------------------------------------

_HARNESS_IMPORTS = """
import sys
from verification.engine.runner import Options, run
source = None if sys.argv[1] == "None" else sys.argv[1]
only = tuple(sys.argv[3:])
got = run(source, Options(checks=("forward",), dtypes=("float32",), jobs=1, labels=(sys.argv[2],), only=only))
assert [(r.label, r.status.value) for r in got.results] == [(sys.argv[2], "pass")], [r.message for r in got.results]
print(sorted(m for m in ("jax", "scipy", "surrogates", "torch") if m in sys.modules))
"""


@pytest.mark.parametrize(("source", "label", "only"), [
    ("None", "Sigmoid(alpha=4.0)", ()), ("reference", "Sigmoid(alpha=4.0)", ()),
    ("tests.hostile:SET_ORDERED", "set: correct a", ()),
    ("None", "InvSquareGrad(alpha=1.0)", ("fast_sigmoid",)),  # an alias, resolved by the worker that lists
    ("reference", "Sigmoid(alpha=4.0)", ("sigmoid", "Arctan(alpha=1.0)"))])
def test_the_harness_process_imports_neither_jax_nor_the_reference_for_a_run(source, label, only):
  """The check names and the listed candidates are plain data in the harness process (a worker lists the
  reference too, and says which registry class each ``--only`` spelling names), so a run's own process starts in
  a tenth of a second instead of importing JAX and SciPy (about a second of CPU per run, and the run's template
  imports them again)."""
  import subprocess
  import sys

  from tests._subprocess import environment

  proc = subprocess.run([sys.executable, "-c", _HARNESS_IMPORTS, source, label, *only], capture_output=True,
                        text=True, env=environment(), timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout
