# ruff: noqa
import jax
import jax.numpy as jnp


def heaviside(x):
  return 0.5 + 0.5 * jnp.sign(x)


@jax.custom_vjp
def superspike(x, alpha=80):
  return heaviside(x)


def superspike_fwd(x, alpha):
  return heaviside(x), (x, alpha)


def superspike_bwd(res, g):
  (x, alpha) = res
  return (g / (alpha * jnp.abs(x) + 1.0) ** 2, None)


superspike.defvjp(superspike_fwd, superspike_bwd)
