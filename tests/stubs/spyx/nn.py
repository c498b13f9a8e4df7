# ruff: noqa
# spyx/nn.py of spyx 1.0.0, LIF only (L175-220), with a minimal stand-in for the flax.nnx names it uses
# (Module, Param, Rngs) so that the tests need no flax: the layer adapter reaches them as spyx.nn.nnx.
import types

import jax
import jax.numpy as jnp

from .axn import superspike


class _Param:
  def __init__(self, value):
    self.value = value

  def __getitem__(self, key):
    return self.value[key]


class _Rngs:
  def __init__(self, seed):
    self.key = jax.random.PRNGKey(seed)

  def params(self):
    return self.key


nnx = types.SimpleNamespace(Module=object, Param=_Param, Rngs=_Rngs)
_DEFAULT_ACTIVATION = superspike()


class LIF(nnx.Module):
  def __init__(self, hidden_shape, beta=None, threshold=1.0, activation=None, *, rngs):
    self.hidden_shape = hidden_shape
    self.threshold = threshold
    self.spike = activation if activation is not None else _DEFAULT_ACTIVATION
    if beta is None:
      self.beta = nnx.Param(0.25 * jax.random.truncated_normal(rngs.params(), -2.0, 2.0, self.hidden_shape) + 0.5)
    else:
      self.beta = nnx.Param(jnp.full((), beta))

  def __call__(self, x, V):
    beta = jnp.clip(self.beta[...], 0, 1)
    spikes = self.spike(V - self.threshold)
    V = beta * V + x - spikes * self.threshold
    return spikes, V

  def initial_state(self, batch_size):
    return jnp.zeros((batch_size,) + self.hidden_shape)
