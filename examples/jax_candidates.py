"""Candidates of a JAX library: a JAX candidate is its spike function.

``fn`` takes and returns JAX arrays (here a ``jax.custom_jvp`` sigmoid surrogate, g = α·s(αx)(1 − s(αx)),
standing in for the library's own code); ``surrogate_grad`` is the g the library documents, held to the spike
function's gradient. ``jax.custom_jvp`` gives reverse and forward mode, so every check applies:

  python -m verification --target examples.jax_candidates:CANDIDATES --checks forward,autodiff
  pytest -m surrogate --surrogate-target examples.jax_candidates:CANDIDATES
"""

import functools

import jax
import jax.numpy as jnp


def grad(x: jax.Array, alpha: float) -> jax.Array:
  """g written out: the surrogate_grad the library documents."""
  s = jax.nn.sigmoid(alpha * x)
  return alpha * s * (1 - s)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def spike(x: jax.Array, alpha: float) -> jax.Array:
  """H(x) forward (H(0) = 1), g(x) backward."""
  return jnp.where(x >= 0, 1, 0).astype(x.dtype)


@spike.defjvp
def _spike_jvp(alpha, primals, tangents):
  (x,), (t,) = primals, tangents
  return spike(x, alpha), grad(x, alpha) * t


def candidate(alpha: float) -> dict:
  """The library's sigmoid(alpha) as a candidate named by the reference's class (= Sigmoid(alpha=alpha))."""
  return {"name": "Sigmoid", "params": {"alpha": alpha}, "fn": functools.partial(spike, alpha=alpha),
          "surrogate_grad": functools.partial(grad, alpha=alpha)}


CANDIDATES = [candidate(4.0), candidate(1.0)]
