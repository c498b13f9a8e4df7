# ruff: noqa
import jax.nn as jnn
import jax.numpy as jnp
from jax import custom_jvp


def superspike_surrogate(beta=10.0):
  @custom_jvp
  def heaviside_with_superspike_surrogate(x):
    return jnp.heaviside(x, 1.0)

  @heaviside_with_superspike_surrogate.defjvp
  def f_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return heaviside_with_superspike_surrogate(x), x_dot / (1.0 + beta * jnp.abs(x))

  return heaviside_with_superspike_surrogate


def sigmoid_surrogate(beta=1.0):
  @custom_jvp
  def heaviside_with_sigmoid_surrogate(x):
    return jnp.heaviside(x, 1.0)

  @heaviside_with_sigmoid_surrogate.defjvp
  def f_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    tangent_out = jnn.sigmoid(x, beta)
    tangent_out *= (1.0 - beta * jnn.sigmoid(x, beta)) * x_dot
    return heaviside_with_sigmoid_surrogate(x), tangent_out

  return heaviside_with_sigmoid_surrogate


def piecewise_surrogate(beta=0.5):
  @custom_jvp
  def heaviside_with_sigmoid_surrogate(x):
    return jnp.heaviside(x, 1.0)

  @heaviside_with_sigmoid_surrogate.defjvp
  def f_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return heaviside_with_sigmoid_surrogate(x), jnp.where((x > -beta) * (x < beta), x_dot, 0)

  return heaviside_with_sigmoid_surrogate
