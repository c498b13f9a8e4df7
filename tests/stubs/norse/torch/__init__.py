# ruff: noqa
# The cells of norse/torch/module/{lif,lif_box}.py (1.1.0) as the layer adapter calls them: cell(x, state)
# -> (z, state), the parameters re-wrapped with torch.as_tensor as LIFCell.__init__ does.
import torch

from norse.torch.functional.lif import LIFParameters, lif_feed_forward_step, lif_step
from norse.torch.functional.lif_box import LIFBoxParameters, lif_box_feed_forward_step


def _as_tensors(p):
  return type(p)(*(torch.as_tensor(v) if k not in ("method", "reset_method") else v
                   for k, v in zip(p._fields, p)))


class LIFCell(torch.nn.Module):
  def __init__(self, p=LIFParameters(), dt=0.001):
    super().__init__()
    self.p, self.dt = _as_tensors(p), dt

  def forward(self, x, state):
    return lif_feed_forward_step(x, state, self.p, self.dt)


class LIFRecurrentCell(torch.nn.Module):
  def __init__(self, input_size, hidden_size, p=LIFParameters(), input_weights=None, recurrent_weights=None,
               autapses=False, dt=0.001):
    super().__init__()
    self.p, self.dt = _as_tensors(p), dt
    self.input_weights = torch.nn.Parameter(input_weights)
    rec = recurrent_weights * (1 - torch.eye(hidden_size)) if not autapses else recurrent_weights
    self.recurrent_weights = torch.nn.Parameter(rec)

  def forward(self, x, state):
    return lif_step(x, state, self.input_weights, self.recurrent_weights, self.p, self.dt)


class LIFBoxCell(torch.nn.Module):
  def __init__(self, p=LIFBoxParameters(), dt=0.001):
    super().__init__()
    self.p, self.dt = p, dt

  def forward(self, x, state):
    return lif_box_feed_forward_step(x, state, self.p, self.dt)
