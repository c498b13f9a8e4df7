"""The vectorisable building blocks of the fast kernels (surrogates/_core.py): accuracy against float64
references and agreement with the exact helpers they replace."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import surrogates
from surrogates._core import exp2_nonpositive, gaussian_sum, is_negative, is_negative_bits, odd_cos_sum_turns


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


def test_exp2_nonpositive_accuracy() -> None:
  """k·2^y in float32 within 2e-7 relative of float64 (the polynomial's 2e-9 plus Horner's rounding, about
  one ulp) wherever 2^y is a normal float32; 0 below (XLA:CPU flushes subnormal results); NaN passes."""
  y = np.concatenate([np.linspace(-126.0, 0.0, 1_000_001), -np.linspace(0.0, 1e-3, 1001)]).astype(np.float32)
  for k in (1.0, 0.37):
    got = np.asarray(jax.jit(lambda v, k=k: exp2_nonpositive(v, k))(jnp.asarray(y)), np.float64)
    want = k * 2.0 ** y.astype(np.float64)
    normal = want >= np.finfo(np.float32).tiny
    assert np.abs(got / want - 1)[normal].max() <= 2e-7
    assert (got[~normal] < np.finfo(np.float32).tiny).all()
  edge = np.asarray(exp2_nonpositive(jnp.asarray([-127.0, -200.0, -np.inf, np.nan, 0.0], jnp.float32)))
  np.testing.assert_array_equal(edge[[0, 1, 2, 4]], [0.0, 0.0, 0.0, 1.0])
  assert np.isnan(edge[3])


def test_exp2_nonpositive_uses_no_transcendental() -> None:
  jaxpr = str(jax.make_jaxpr(exp2_nonpositive)(jnp.ones(4, jnp.float32)))
  assert not any(f in jaxpr for f in (" exp", " exp2", " pow", "convert_element_type"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gaussian_sum_matches_exp(dtype: str) -> None:
  """Σ k·exp(-a(x - m)²) against float64 numpy: 2e-7 of the peak in float32 (1 ulp), 1e-15 in float64."""
  terms = ((0.7, 2.0, 0.0), (-0.05, 0.02, 0.5), (-0.05, 0.02, -0.5))
  x = np.linspace(-40.0, 40.0, 100_001).astype(dtype)
  got = np.asarray(jax.jit(lambda v: gaussian_sum(v, *terms))(jnp.asarray(x)), np.float64)
  xd = x.astype(np.float64)
  want = sum(k * np.exp(-a * (xd - m) ** 2) for k, a, m in terms)
  assert np.abs(got - want).max() <= (2e-7 if dtype == "float32" else 1e-15) * 0.7


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gaussian_sum_and_its_derivatives_are_finite(dtype: str) -> None:
  """Value, first and second derivative finite at huge and infinite x (x is clipped before x²), 0 there."""
  f = lambda x: gaussian_sum(x, (1.0, 2.0, 0.0), (0.5, 0.1, 1.0))
  big = float(jnp.finfo(dtype).max)
  x = jnp.asarray([0.0, 0.5, 100.0, 1e20, big, -big, np.inf, -np.inf], dtype)
  np.testing.assert_allclose(np.asarray(f(x))[:2], [1.0 + 0.5 * np.exp(-0.1), np.exp(-0.5) + 0.5 * np.exp(-0.025)],
                             rtol=1e-6)
  assert (np.asarray(f(x))[2:] == 0).all()
  for fn in (f, jax.vmap(jax.grad(f)), jax.vmap(jax.grad(jax.grad(f)))):
    assert np.isfinite(np.asarray(fn(x))).all()


#: Surrogates whose g in float32 takes the polynomial exponential (exp_product) and Circ's square root path.
FAST_EXP = ("ERF", "GaussianGrad", "MultiGaussianGrad", "S2NN", "Sigmoid", "Tanh", "PeriodicExponential", "Circ")


@pytest.mark.parametrize("name", FAST_EXP)
def test_float32_gradient_calls_no_transcendental_and_float64_keeps_exp(name: str) -> None:
  """The VJP in float32 has no exp/pow/log primitive (those are what made these kernels slow); g in float64
  still calls ``exp`` where the formula has one (Circ has none in either)."""
  from benchmarks._ops import TRANSCENDENTAL, primitives

  s = surrogates.REGISTRY[name]()
  x32 = jnp.ones(8, jnp.float32)
  assert not primitives(lambda x, ct: jax.vjp(s, x)[1](ct)[0], x32, x32) & TRANSCENDENTAL
  found64 = primitives(s.surrogate_grad, jnp.ones(8, jnp.float64)) & TRANSCENDENTAL
  assert found64 == (set() if name == "Circ" else {"exp"})


def _vjp_ops(spike, n: int = 1 << 16) -> tuple[list[str], int]:
  """The operations of the compiled float32 VJP ``ct · g(x)`` of ``spike`` on the CPU (sorted; parameters,
  constants, broadcasts, fusion calls and layout copies left out) and its number of fused loops."""
  import re

  x = jnp.zeros(n, jnp.float32)
  text = jax.jit(lambda v, ct: jax.vjp(spike, v)[1](ct)[0]).lower(x, x).compile().as_text()
  plumbing = {"parameter", "constant", "broadcast", "fusion", "bitcast", "copy", "tuple", "get-tuple-element"}
  ops = [m.group(1) for m in re.finditer(r"=\s*\S+\s+([a-z\-]+)\(", text) if m.group(1) not in plumbing]
  return sorted(ops), len(re.findall(r"\bfusion\(", text))


def test_relugrad_vjp_compiles_to_the_loop_of_spyx_triangular() -> None:
  """spyx 1.0.0's triangular(k) (spyx/axn.py: ``jnp.maximum(0, 1 - jnp.abs(k * x))`` as the JVP of a custom_jvp;
  the formula is recorded in verification/targets/spyx.py) is ReluGrad(alpha=k, width=1/k): both VJPs compile
  to one fused loop of the same five operations (abs, two multiplies, a subtract, a maximum), reading two
  arrays and writing one. Their times can only differ by the measurement's noise, so a peer ratio other than
  1.00 for this pair is the noise of that run (its A/A control says how much); a planted kernel with a select
  in place of the maximum compiles to more operations and fails this."""
  k = 2.0

  @jax.custom_jvp
  def triangular(x):
    return (x >= 0).astype(x.dtype)

  @triangular.defjvp
  def _(primals, tangents):
    (x,), (t,) = primals, tangents
    return triangular(x), jnp.maximum(0, 1 - jnp.abs(k * x)) * t

  reference = _vjp_ops(surrogates.REGISTRY["ReluGrad"](alpha=k, width=1 / k))
  assert reference == (["abs", "maximum", "multiply", "multiply", "subtract"], 1)
  assert _vjp_ops(triangular) == reference

  @jax.custom_jvp
  def selected(x):  # the same g, written with a select: a planted costlier kernel
    return (x >= 0).astype(x.dtype)

  @selected.defjvp
  def _(primals, tangents):
    (x,), (t,) = primals, tangents
    return selected(x), jnp.where(jnp.abs(x) < 1 / k, 1 - jnp.abs(k * x), 0.0) * t

  assert _vjp_ops(selected) != reference
