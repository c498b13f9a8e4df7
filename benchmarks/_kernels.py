"""The benchmarked functions: each operation on a spike function, its baseline, inputs and bytes.

A *spike function* is any callable ``x -> H(x)`` with a custom gradient (a reference surrogate
instance or a peer library's activation). Every operation has a baseline kernel that moves the
same bytes with the least possible arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Spike = Callable[[jax.Array], jax.Array]
LIF_BETA = 0.9
LIF_THRESHOLD = 1.0

#: Arrays read and written per element, by operation (the LIF step counts its input current once).
TRAFFIC = {"fwd": (1, 1), "vjp": (2, 1), "jvp": (2, 2), "vmap_grad": (1, 1), "lif": (1, 0)}


def surrogate_kernel(op: str, spike: Spike, lif_steps: int = 100) -> Callable[..., Any]:
  """The function timed for ``op`` on ``spike`` (arguments as :func:`make_inputs` returns them)."""
  if op == "fwd":
    return lambda x: spike(x)
  if op == "vjp":
    return lambda x, ct: jax.vjp(spike, x)[1](ct)[0]
  if op == "jvp":
    return lambda x, t: jax.jvp(spike, (x,), (t,))
  if op == "vmap_grad":
    return lambda x: jax.vmap(jax.grad(spike))(x)
  if op == "lif":
    return lif_step(spike)
  raise ValueError(f"unknown op {op!r}")


def baseline_kernel(op: str, lif_steps: int = 100) -> Callable[..., Any]:
  """A kernel that moves the same bytes as ``op`` (for the VJP: ``ct * x``)."""
  if op in ("fwd", "vmap_grad"):
    return lambda x: x * jnp.asarray(0.5, x.dtype)
  if op == "vjp":
    return lambda x, ct: ct * x
  if op == "jvp":
    return lambda x, t: (x * jnp.asarray(0.5, x.dtype), x * t)
  if op == "lif":
    return lif_step(straight_through)
  raise ValueError(f"unknown op {op!r}")


@jax.custom_jvp
def straight_through(x: jax.Array) -> jax.Array:
  """The cheapest spike function: ``x >= 0`` forward, derivative 1 (the LIF baseline)."""
  return (x >= 0).astype(x.dtype)


@straight_through.defjvp
def _straight_through_jvp(primals, tangents):
  (x,), (t,) = primals, tangents
  return straight_through(x), t


def lif_step(spike: Spike) -> Callable[..., Any]:
  """A training-like step: loss and weight gradient of a LIF layer unrolled with ``lax.scan``.

  ``w`` (n,) input gains, ``current`` (T, n) input currents, ``target`` (n,) target rates;
  v <- βv + w·I_t, s = spike(v - θ), v <- v - θs (soft reset); loss = mean((mean_t s - target)²).
  """

  def loss(w: jax.Array, current: jax.Array, target: jax.Array) -> jax.Array:
    beta, threshold = jnp.asarray(LIF_BETA, w.dtype), jnp.asarray(LIF_THRESHOLD, w.dtype)

    def step(v: jax.Array, i_t: jax.Array) -> tuple[jax.Array, jax.Array]:
      v = beta * v + w * i_t
      s = spike(v - threshold)
      return v - threshold * s, s

    _, spikes = lax.scan(step, jnp.zeros_like(w), current)
    rate = spikes.astype(jnp.float32).mean(axis=0)
    return jnp.mean(jnp.square(rate - target.astype(jnp.float32)))

  return jax.value_and_grad(loss)


def make_inputs(op: str, n: int, dtype: str, scale: float = 1.0, lif_steps: int = 100, seed: int = 0) -> tuple:
  """Random host inputs (never zero) for ``op`` at ``n`` elements (``n`` neurons for the LIF step).

  x is uniform on ±4·scale (scale: the surrogate's length scale), cotangents and tangents are
  standard normal.
  """
  rng = np.random.default_rng(seed)
  if op == "lif":
    w = rng.uniform(0.5, 1.5, n)
    current = rng.uniform(0.05, 0.35, (lif_steps, n))
    target = rng.uniform(0.05, 0.3, n)
    return tuple(_cast(a, dtype) for a in (w, current, target))
  x = _cast(rng.uniform(-4.0, 4.0, n) * scale, dtype)
  if op in ("fwd", "vmap_grad"):
    return (x,)
  return (x, _cast(rng.standard_normal(n), dtype))


def _cast(a: np.ndarray, dtype: str) -> np.ndarray:
  """Host array in ``dtype`` with exact zeros replaced by a small non-zero value."""
  out = np.asarray(a, np.float32).astype(jnp.dtype(dtype))
  out[out == 0] = 2.0**-10
  return out


def bytes_moved(op: str, n: int, dtype: str, lif_steps: int = 100) -> int:
  """Nominal bytes an operation must move: arrays read plus arrays written, times their size."""
  reads, writes = TRAFFIC[op]
  elements = n * lif_steps if op == "lif" else n
  return (reads + writes) * elements * jnp.dtype(dtype).itemsize


TRANSCENDENTAL = frozenset(
    "exp exp2 log log1p expm1 logistic tanh sin cos tan asin acos atan atan2 sinh cosh asinh acosh atanh"
    " erf erfc erf_inv lgamma digamma pow cbrt".split()
)


def primitives(fn: Callable[..., Any], *args: Any) -> frozenset[str]:
  """Names of every primitive in the jaxpr of ``fn(*args)``, sub-jaxprs included."""
  return frozenset(_walk(jax.make_jaxpr(fn)(*args).jaxpr))


def _walk(jaxpr: Any) -> set[str]:
  names: set[str] = set()
  for eqn in jaxpr.eqns:
    names.add(eqn.primitive.name)
    for value in eqn.params.values():
      for sub in value if isinstance(value, tuple | list) else (value,):
        inner = getattr(sub, "jaxpr", sub)
        if hasattr(inner, "eqns"):
          names |= _walk(inner)
  return names


def arithmetic_class(spike: Spike) -> tuple[str, tuple[str, ...]]:
  """'transcendental' if the VJP calls exp, log, a trigonometric or similar function, else
  'polynomial' (polynomial, rational and piecewise forms); and the transcendental primitives."""
  x = jnp.ones(8, jnp.float32)
  found = primitives(surrogate_kernel("vjp", spike), x, x) & TRANSCENDENTAL
  return ("transcendental" if found else "polynomial"), tuple(sorted(found))
