"""Candidates that call a library at v = x + θ (a membrane potential and its threshold).

The sum is rounded in x's dtype, so every |x| below half an ulp of θ reaches the library as v = θ:
such a candidate declares ``input_offset = θ`` and the forward check judges H at the input the
library receives. Planted candidates: a correct threshold function (JAX custom_vjp, and NumPy), a
threshold off by 2^-7, and the ``v > θ`` convention.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from verification import checks
from verification.core.candidate import Candidate
from verification.results import Status

THETA = 1.0
DTYPES = ("float16", "bfloat16", "float32", "float64")


def _membrane_spike(threshold: float, strict: bool = False):
  """A library's spike function of the membrane v, written with custom_vjp (a box-car gradient)."""

  @jax.custom_vjp
  def spike(v):
    fired = v > threshold if strict else v >= threshold
    return fired.astype(v.dtype)

  def fwd(v):
    return spike(v), v

  def bwd(v, ct):
    return (ct * (jnp.abs(v - THETA) < 0.5).astype(ct.dtype),)

  spike.defvjp(fwd, bwd)
  return spike


def _candidate(spike, offset: float = THETA) -> Candidate:
  return Candidate(name="ShiftedStep", params={"window": 0.5}, fn=lambda x: spike(x + THETA), input_offset=offset,
                   label="membrane spike at v = x + 1")


def _forward(candidate: Candidate):
  opts = {"dtypes": DTYPES, "is_reference": False, "hypothesis_examples": 1}
  return checks.run_check(candidate, checks.context(candidate, opts), "forward")


def test_a_correct_threshold_is_judged_at_the_input_the_library_receives():
  result = _forward(_candidate(_membrane_spike(THETA)))
  assert result.status is Status.PASS, result.detail
  assert "fl(x + 1) - 1" in result.detail["message"]


def test_without_the_offset_the_rounding_of_x_plus_theta_is_a_failure():
  # What the harness said of rockpool's step_pwl before candidates could declare the offset.
  result = _forward(_candidate(_membrane_spike(THETA), offset=0.0))
  assert result.status is Status.FAIL
  assert result.detail["expected"] == 0.0 and result.detail["got"] == 1.0
  assert -1e-3 < result.detail["worst_input"] < 0


def test_a_threshold_off_by_a_little_still_fails_and_names_the_received_input():
  result = _forward(_candidate(_membrane_spike(THETA - 2.0**-7)))
  assert result.status is Status.FAIL
  d = result.detail
  assert d["expected"] == 0.0 and d["got"] == 1.0
  assert -2.0**-7 <= d["received_input"] < 0
  assert "the library receives x =" in d["message"]


def test_the_strict_threshold_is_a_convention_at_the_received_zero():
  result = _forward(_candidate(_membrane_spike(THETA, strict=True)))
  assert result.status is Status.CONVENTION, result.detail


def test_a_numpy_library_is_judged_the_same_way():
  cand = Candidate(name="ShiftedStep", params={"window": 0.5}, backend="numpy", input_offset=THETA,
                   forward=lambda x: (x + x.dtype.type(THETA) >= THETA).astype(x.dtype),
                   vjp=lambda x, ct: ct * (np.abs(x) < 0.5).astype(x.dtype))
  result = _forward(cand)
  assert result.status is Status.PASS, result.detail


def test_received_rounds_the_sum_in_the_dtype():
  cand = _candidate(_membrane_spike(THETA))
  x = np.array([-6e-8, -2.0**-12, -2.0**-11, 0.0, -0.0, 3.0, -np.inf], np.float16)
  got = cand.received(x)
  assert got.dtype == np.float64
  # float16 steps by 2^-11 just below 1: 1 - 2^-12 is a tie, rounded to the even 1, so the library
  # receives v = 1 for it and for anything smaller; 1 - 2^-11 arrives exactly
  np.testing.assert_array_equal(got, [0.0, 0.0, -2.0**-11, 0.0, 0.0, 3.0, -np.inf])
  assert not np.signbit(got[:2]).any()  # +0: v - θ has no sign bit to keep
  plain = Candidate(name="ShiftedStep", params={"window": 0.5}, fn=jnp.sign)
  np.testing.assert_array_equal(plain.received(x), x.astype(np.float64))
  assert np.signbit(plain.received(x)[4])


@pytest.mark.parametrize(("value", "error"), [("1", TypeError), (True, TypeError), (float("inf"), ValueError),
                                              (float("nan"), ValueError)])
def test_input_offset_must_be_a_real_finite_number(value, error):
  with pytest.raises(error, match="input_offset="):
    _candidate(_membrane_spike(THETA), offset=value)
