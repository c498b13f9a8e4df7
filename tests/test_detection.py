"""The harness's detection power: every planted defect is caught by the check meant for it; correct
implementations (also at extreme parameters, in their own dtype, with a shifted primitive, built
with custom_vjp or as a primitive without some rules) pass, reporting a missing capability as
``unsupported``; a documented convention is a ``convention`` result."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from tests.planted import CHECK_GROUPS, CONVENTIONS, CORRECT, DEFECTIVE, HANGING, UNCOMPUTABLE
from verification import CHECKS, verify_candidate
from verification.engine.runner import Options, run
from verification.results import Status, require

CUSTOM_VJP_REASON = "built with jax.custom_vjp, which has no forward mode; jax.custom_jvp gives both"


# As targets, so each worker imports tests.planted and registers its custom primitives' rules itself.
OPTIONS = Options(jobs=2, timeout=120, hypothesis_examples=20)


@pytest.fixture(scope="module")
def defective_results():
  """Each planted defect checked by the group of checks that holds the check meant to catch it: one
  run per group (tests.planted.BY_GROUP); the candidate with an uncomputable reference by every check."""
  assert sorted(c for checks in CHECK_GROUPS.values() for c in checks) == sorted(CHECKS)
  results = []
  for group, checks in CHECK_GROUPS.items():
    results += run(f"tests.planted:BY_GROUP.{group}", dataclasses.replace(OPTIONS, checks=checks)).results
  return _by_label(results)


@pytest.fixture(scope="module")
def correct_results():
  return _by_label([*run("tests.planted:CORRECT", OPTIONS).results, *run("tests.planted:CONVENTIONS", OPTIONS).results])


def _by_label(results):
  out = {}
  for r in results:
    out.setdefault(r.label, {})[r.check] = r
  return out


@pytest.mark.parametrize("planted", DEFECTIVE, ids=lambda c: c.label)
def test_defect_is_caught_by_its_check(planted, defective_results):
  check = planted.notes["caught_by"]
  result = defective_results[planted.label][check]
  expected = planted.notes.get("status")
  if expected:
    assert result.status == expected, f"{planted.label}: {check} gave {result.status}: {result.detail}"
  else:
    assert result.status in ("fail", "error"), f"{planted.label}: {check} gave {result.status}: {result.detail}"
  assert result.detail.get("message"), "a failing result carries a diagnosis"


def test_an_uncomputable_reference_is_an_error_saying_so(defective_results):
  results = defective_results[UNCOMPUTABLE.label]
  assert set(results) == set(CHECKS)
  for check, r in results.items():
    if check == "forward":  # H does not depend on the parameters
      continue
    if check == "parameters":  # not applicable: the planted candidate has no factory
      assert r.status == "skip" and "no factory" in r.detail["message"]
      continue
    assert r.status == "error", f"{check}: {r.status} {r.detail}"
    assert "cannot" in r.detail["message"] and "1e-300" in r.detail["message"]


def test_a_divergent_mass_is_never_a_number(defective_results):
  (planted,) = [c for c in DEFECTIVE if c.notes["caught_by"] == "quadrature" and "decay" in c.label]
  detail = defective_results[planted.label]["quadrature"].detail
  assert "does not decay" in detail["message"]
  assert detail["mass"]["got"] is None, "quad's value over a non-decaying g must not be reported"


def test_the_sign_bit_is_a_defect_not_a_convention(defective_results):
  (planted,) = [c for c in DEFECTIVE if "sign-bit" in c.label]
  result = defective_results[planted.label]["forward"]
  assert result.status == "fail" and "sign bit" in result.detail["message"]


@pytest.mark.parametrize("good", CORRECT, ids=lambda c: c.label)
def test_correct_candidates_pass_every_check(good, correct_results):
  results = correct_results[good.label]
  assert set(results) == set(CHECKS)
  missing = good.notes.get("unsupported", {})
  bad = {c: r.detail for c, r in results.items() if r.status not in ("pass", "skip") and c not in missing}
  assert not bad, f"false alarm on {good.label}: {bad}"
  for check, capability in missing.items():
    r = results[check]
    assert r.status == "unsupported", f"{good.label}: {check} gave {r.status}: {r.detail}"
    assert r.detail["capability"] == capability and r.detail["fix"]


@pytest.mark.parametrize("good", CONVENTIONS, ids=lambda c: c.label)
def test_a_convention_is_reported_as_one(good, correct_results):
  results = correct_results[good.label]
  check = good.notes["convention"]
  assert results[check].status == "convention", results[check].detail
  bad = {c: r.detail for c, r in results.items() if c != check and r.status not in ("pass", "skip")}
  assert not bad, f"false alarm on {good.label}: {bad}"


def test_custom_vjp_reports_the_reason_and_the_fix(correct_results):
  (good,) = [c for c in CORRECT if c.label == "correct: custom_vjp (no forward mode)"]
  detail = correct_results[good.label]["forward_mode"].detail
  assert CUSTOM_VJP_REASON in detail["message"]
  assert "custom_jvp" in detail["fix"]
  assert "verification/" not in detail["message"], "the message names the candidate's mechanism, not a harness line"


def test_a_custom_vjp_second_order_that_is_not_g_prime_is_the_missing_capability(correct_results):
  # Its custom_jvp twin (stop_gradient inside the derivative) is a defect: DEFECTIVE, caught by second_order.
  (good,) = [c for c in CORRECT if "stop_gradient in bwd" in c.label]
  detail = correct_results[good.label]["second_order"].detail
  assert "jax.custom_vjp" in detail["message"] and "not g'(x)" in detail["message"]
  assert detail["mechanism"] == "custom_vjp" and "custom_jvp" in detail["fix"]
  assert detail["expected"] != detail["got"] == 0.0  # what grad of grad gave, kept for the reader
  (required,) = require([correct_results[good.label]["second_order"]], ["second"])
  assert required.status is Status.FAIL and "second" in required.message


def test_a_required_capability_turns_unsupported_into_a_failure():
  from verification.checks import Context
  from verification.core.evaluate import Evaluator

  jax.config.update("jax_enable_x64", True)
  (good,) = [c for c in CORRECT if c.label == "correct: custom_vjp (no forward mode)"]
  ctx = Context(good, good.reference(), Evaluator(good), (np.dtype("float32"), np.dtype("float64")))
  result = CHECKS["forward_mode"](ctx).result(good.label, good.name, good.params, "forward_mode")
  assert result.status is Status.UNSUPPORTED and not result.failing
  (required,) = require([result], ["forward"])
  assert required.status is Status.FAIL and "forward" in required.message
  assert require([result], ["vmap"])[0].status is Status.UNSUPPORTED


def test_comparisons_fail_closed():
  from verification.checks._context import worst as _worst

  x = np.array([0.5, 1.0, np.nan])
  ok = np.array([1.0, 2.0, np.nan])
  assert _worst(x, ok, ok, 1e-9)["failing_points"] == 0, "NaN at a NaN input is the quantity's value"
  assert _worst(x, ok, np.array([1.0, np.nan, np.nan]), 1e-9)["failing_points"] == 1, "NaN got"
  assert _worst(x, np.array([np.nan, 2.0, np.nan]), ok, 1e-9)["failing_points"] == 1, "NaN expected"
  nan_both = np.array([np.nan, 2.0, np.nan])
  assert _worst(x, nan_both, nan_both, 1e-9)["failing_points"] == 1, "NaN in both at a finite input"
  assert _worst(x, ok, ok, np.array([np.nan, 1.0, 1.0]))["failing_points"] == 1, "NaN tolerance"
  assert _worst(x, ok, ok, 0.0)["failing_points"] == 0, "exact agreement with a zero tolerance"


def test_a_hanging_candidate_is_an_error_result_not_a_hang():
  results = verify_candidate(HANGING, ["forward"], ["float32"], time_limit=2.0)
  assert [r.status for r in results] == ["error"]
  assert "time limit" in results[0].detail["message"]


def test_a_candidate_of_an_unknown_surrogate_is_an_error_result():
  from verification.core.candidate import Candidate

  results = verify_candidate(Candidate(name="NoSuch", params={}, fn=lambda x: x), list(CHECKS), ["float32"])
  assert {r.status for r in results} == {"error"}
  assert "NoSuch" in results[0].detail["message"]


def _narrower_than_declared():
  """A spike function whose g is 1/(1 + |x|)² while it claims InvSquareGrad(alpha=0.1), g = 1/(1 + 0.1|x|)²
  (norse 1.1.0's super_fn ignores its alpha this way): wrong against the reference, but its own second
  derivative is right, written with jax.custom_jvp in differentiable operations."""
  import jax.numpy as jnp

  @jax.custom_jvp
  def spike(x):
    return jnp.where(jnp.signbit(x) & (x != 0), 0.0, 1.0).astype(x.dtype)

  @spike.defjvp
  def _(primals, tangents):
    (x,), (t,) = primals, tangents
    r = 1 / (1 + jnp.abs(x))
    return spike(x), r * r * t

  return spike


def test_second_order_judges_the_candidates_own_g_where_it_is_narrower_than_the_reference():
  # The finite-difference step comes from the reference's width (10 here); plain central differences
  # of the candidate's g (width 1) at that step erred by 3.5e-4 at x = -0.62, past the bound, a false
  # alarm on a correct second derivative. The Richardson-extrapolated slope does not.
  from verification.core.candidate import Candidate

  cand = Candidate(name="InvSquareGrad", params={"alpha": 0.1}, fn=_narrower_than_declared(),
                   label="g narrower than declared")
  results = {r.check: r for r in verify_candidate(cand, ["second_order", "differential"], ["float64"])}
  assert results["second_order"].status is Status.PASS, results["second_order"].message
  assert results["differential"].status is Status.FAIL  # the defect is reported where it belongs
