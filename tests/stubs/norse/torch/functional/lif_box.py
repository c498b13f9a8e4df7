# ruff: noqa
# norse/torch/functional/lif_box.py (1.1.0)
from typing import NamedTuple

import torch

from norse.torch.functional.reset import reset_value
from norse.torch.functional.threshold import threshold


class LIFBoxParameters(NamedTuple):
  tau_mem_inv: torch.Tensor = torch.as_tensor(1.0 / 1e-2)
  v_leak: torch.Tensor = torch.as_tensor(0.0)
  v_th: torch.Tensor = torch.as_tensor(1.0)
  v_reset: torch.Tensor = torch.as_tensor(0.0)
  method: str = "super"
  alpha: float = torch.as_tensor(100.0)
  reset_method: object = reset_value


class LIFBoxFeedForwardState(NamedTuple):
  v: torch.Tensor


def lif_box_feed_forward_step(input_tensor, state, p=LIFBoxParameters(), dt=0.001):
  # L95-103
  dv = dt * p.tau_mem_inv * (input_tensor + p.v_leak - state.v)
  v_decayed = state.v + dv
  z_new = threshold(v_decayed - p.v_th, p.method, p.alpha)
  v_new = p.reset_method(z_new, v_decayed, p.v_reset, p.v_th)
  return z_new, LIFBoxFeedForwardState(v=v_new)
