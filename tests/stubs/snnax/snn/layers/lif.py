# ruff: noqa
# snnax/snn/layers/lif.py of snnax 0.0.1, LIF only (L86-171), as plain Python objects (the release builds it on
# equinox's Module and a TrainableArray holding the decays in .data; the tests need neither).
import types

import jax
import jax.lax as lax
import jax.numpy as jnp

from ...functional.surrogate import superspike_surrogate


class LIF:
  def __init__(self, decay_constants, spike_fn=superspike_surrogate(10.), threshold=1., stop_reset_grad=True,
               reset_val=None, init_fn=None, shape=None, key=None):
    self.decay_constants = types.SimpleNamespace(data=decay_constants)
    self.threshold = threshold
    self.spike_fn = spike_fn
    self.reset_val = reset_val
    self.stop_reset_grad = stop_reset_grad

  def __call__(self, state, synaptic_input, *, key=None):
    mem_pot, syn_curr, spike_output = state[0], state[1], state[2]
    if self.reset_val is None:
      reset_pot = mem_pot * spike_output
    else:
      reset_pot = (mem_pot - self.reset_val) * spike_output
    refectory_potential = lax.stop_gradient(reset_pot) if self.stop_reset_grad else reset_pot
    mem_pot = mem_pot - refectory_potential
    alpha = jax.lax.clamp(0.5, self.decay_constants.data[0], 1.0)
    beta = jax.lax.clamp(0.5, self.decay_constants.data[1], 1.0)
    mem_pot = alpha * mem_pot + (1. - alpha) * syn_curr
    syn_curr = beta * syn_curr + (1 - beta) * synaptic_input
    spike_output = self.spike_fn(mem_pot - self.threshold)
    state = [mem_pot, syn_curr, spike_output]
    return [state, spike_output]
