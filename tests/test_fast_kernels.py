"""The vectorisable building blocks of the fast kernels (surrogates/_core.py): accuracy against float64
references and agreement with the exact helpers they replace."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogates._core import exp_neg_square, is_negative, is_negative_bits, odd_cos_sum_turns


@pytest.mark.parametrize("n", [1, 2, 8])
def test_odd_cos_sum_turns_accuracy(n: int) -> None:
  """Σ cos((2i-1)2πu) in float32 within 4e-7·n of the float64 sum (one ulp of the peak n at most a few
  times over), also near θ = 0 and π where the plain Chebyshev recurrence loses ~k² ulps."""
  near = np.linspace(-1e-3, 1e-3, 2001)
  u = np.concatenate([np.linspace(-7.0, 7.0, 100_001), near, 0.5 + near])
  u32 = u.astype(np.float32)
  got = np.asarray(odd_cos_sum_turns(jnp.asarray(u32), n), np.float64)
  want = sum(np.cos((2 * i - 1) * 2 * np.pi * u32.astype(np.float64)) for i in range(1, n + 1))
  assert np.abs(got - want).max() <= 4e-7 * n


def test_odd_cos_sum_turns_is_finite_for_bounded_arguments() -> None:
  u = jnp.asarray([2.0**24, -(2.0**24), 2.0**23 + 0.5, 0.0], jnp.float32)
  assert np.isfinite(np.asarray(odd_cos_sum_turns(u, 3))).all()


def test_odd_cos_sum_turns_uses_no_transcendental() -> None:
  jaxpr = str(jax.make_jaxpr(lambda u: odd_cos_sum_turns(u, 4))(jnp.ones(4, jnp.float32)))
  assert not any(f in jaxpr for f in (" cos", " sin", " exp", "rem"))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_is_negative_bits_equals_is_negative(dtype: str) -> None:
  """64-bit JAX is on for the tests (tests/conftest.py)."""
  info = jnp.finfo(dtype)
  specials = [0.0, 1.0, float(info.tiny), float(info.smallest_subnormal), float(info.max), np.inf, np.nan]
  values = np.asarray(specials + [-v for v in specials] + list(np.random.default_rng(0).normal(size=200)))
  x = jnp.asarray(values, dtype)
  np.testing.assert_array_equal(np.asarray(is_negative_bits(x)), np.asarray(is_negative(x)))


def test_exp_neg_square_and_its_derivatives_are_finite() -> None:
  """exp(-a x²) with the exponent bounded: value, first and second derivative finite at huge x."""
  f = lambda x: exp_neg_square(x, 2.0)
  x = jnp.asarray([0.0, 0.5, 30.0, 1e20, 3e38, -3e38], jnp.float32)
  np.testing.assert_allclose(np.asarray(f(x))[:2], np.exp(-2.0 * np.asarray([0.0, 0.25])), rtol=1e-6)
  for fn in (f, jax.vmap(jax.grad(f)), jax.vmap(jax.grad(jax.grad(f)))):
    assert np.isfinite(np.asarray(fn(x))).all()
