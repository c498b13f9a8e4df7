# ruff: noqa
import torch


class BackwardClass:
  @staticmethod
  def backward(ctx, grad_output):
    (v_mem,) = ctx.saved_tensors
    return grad_output * ctx.surrogate_grad_fn(v_mem, ctx.spike_threshold), None, None, None


class MultiSpike(BackwardClass, torch.autograd.Function):
  @staticmethod
  def forward(ctx, v_mem, spike_threshold, surrogate_grad_fn):
    ctx.save_for_backward(v_mem.clone())
    ctx.spike_threshold = spike_threshold
    ctx.surrogate_grad_fn = surrogate_grad_fn
    return (v_mem > 0) * torch.div(v_mem, spike_threshold, rounding_mode="trunc").float()


class SingleSpike(BackwardClass, torch.autograd.Function):
  @staticmethod
  def forward(ctx, v_mem, spike_threshold, surrogate_grad_fn):
    ctx.save_for_backward(v_mem.clone())
    ctx.spike_threshold = spike_threshold
    ctx.surrogate_grad_fn = surrogate_grad_fn
    return (v_mem - spike_threshold >= 0).float()
