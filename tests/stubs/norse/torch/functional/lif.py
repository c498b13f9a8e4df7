# ruff: noqa
# norse/torch/functional/lif.py (1.1.0): the parameters, the states and the two steps the cells call
from typing import NamedTuple

import torch

from norse.torch.functional.threshold import threshold


class LIFParameters(NamedTuple):
  tau_syn_inv: torch.Tensor = torch.as_tensor(1.0 / 5e-3)
  tau_mem_inv: torch.Tensor = torch.as_tensor(1.0 / 1e-2)
  v_leak: torch.Tensor = torch.as_tensor(0.0)
  v_th: torch.Tensor = torch.as_tensor(1.0)
  v_reset: torch.Tensor = torch.as_tensor(0.0)
  method: str = "super"
  alpha: float = torch.as_tensor(100.0)


class LIFState(NamedTuple):
  z: torch.Tensor
  v: torch.Tensor
  i: torch.Tensor


class LIFFeedForwardState(NamedTuple):
  v: torch.Tensor
  i: torch.Tensor


def lif_step(input_spikes, state, input_weights, recurrent_weights, p=LIFParameters(), dt=0.001):
  # L220-240
  i_jump = (state.i + torch.nn.functional.linear(input_spikes, input_weights)
            + torch.nn.functional.linear(state.z, recurrent_weights))
  dv = dt * p.tau_mem_inv * ((p.v_leak - state.v) + i_jump)
  v_decayed = state.v + dv
  di = -dt * p.tau_syn_inv * i_jump
  i_decayed = i_jump + di
  z_new = threshold(v_decayed - p.v_th, p.method, p.alpha)
  v_new = (1 - z_new.detach()) * v_decayed + z_new.detach() * p.v_reset
  return z_new, LIFState(z_new, v_new, i_decayed)


def lif_feed_forward_step(input_spikes, state, p=LIFParameters(), dt=0.001):
  # L335-347
  i_new = state.i + input_spikes
  dv = dt * p.tau_mem_inv * ((p.v_leak - state.v) + i_new)
  v_decayed = state.v + dv
  di = -dt * p.tau_syn_inv * i_new
  i_decayed = i_new + di
  z_new = threshold(v_decayed - p.v_th, p.method, p.alpha)
  v_new = (1 - z_new) * v_decayed + z_new * p.v_reset
  return z_new, LIFFeedForwardState(v=v_new, i=i_decayed)
