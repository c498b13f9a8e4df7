# ruff: noqa
import torch

__all__ = ["LIFTorch"]


class StepPWL(torch.autograd.Function):
  @staticmethod
  def forward(ctx, x, threshold=torch.tensor(1.0), window=torch.tensor(0.5), max_spikes_per_dt=torch.tensor(2.0**16)):
    ctx.save_for_backward(x, threshold)
    ctx.window = window
    nr_spikes = ((x >= threshold) * torch.floor(x / threshold)).float()
    clamp_bool = (nr_spikes > max_spikes_per_dt).float()
    nr_spikes -= (nr_spikes - max_spikes_per_dt.float()) * clamp_bool
    return nr_spikes

  @staticmethod
  def backward(ctx, grad_output):
    x, threshold = ctx.saved_tensors
    mask = x >= (threshold - ctx.window)
    return grad_output / threshold * mask, -x * grad_output / (threshold**2) * mask, None, None


class PeriodicExponential(torch.autograd.Function):
  @staticmethod
  def forward(ctx, data, threshold=1.0, window=0.5, max_spikes_per_dt=torch.tensor(2.0**16)):
    ctx.save_for_backward(data.clone())
    ctx.threshold, ctx.window, ctx.max_spikes_per_dt = threshold, window, max_spikes_per_dt
    nr_spikes = ((data >= threshold) * torch.floor(data / threshold)).float()
    clamp_bool = (nr_spikes > max_spikes_per_dt).float()
    nr_spikes -= (nr_spikes - max_spikes_per_dt.float()) * clamp_bool
    return nr_spikes

  @staticmethod
  def backward(ctx, grad_output):
    (v,) = ctx.saved_tensors
    shifted = v - ctx.threshold / 2
    k = torch.clamp(torch.div(shifted, ctx.threshold, rounding_mode="floor"), max=ctx.max_spikes_per_dt - 1)
    new = (shifted - k * ctx.threshold) * (v >= ctx.threshold) + shifted * (v < ctx.threshold)
    pdf = torch.exp(-torch.abs(new - ctx.threshold / 2) / ctx.window) / ctx.threshold
    return grad_output * pdf, grad_output * -pdf * v / ctx.threshold, None, None


def sigmoid(x, threshold):
  return torch.tanh(x + 1 - threshold) / 2 + 0.5


class LIFTorch:
  pass
