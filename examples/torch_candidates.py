"""Candidates of a torch library: a spike function written as a ``torch.autograd.Function``.

The harness judges a torch implementation through NumPy: ``backend="numpy"`` with ``forward(x) ->
H(x)`` and ``vjp(x, ct) -> ct·g(x)`` on arrays of any float dtype, each a few lines of torch
(here, a stand-in for the library's own code: snntorch's fast_sigmoid, g = 1/(slope·|x| + 1)²).
JAX transforms (jit, vmap, forward mode) are not checked for such candidates: the autodiff check
says so. NumPy has no bfloat16 that torch reads, so check float16, float32 and float64:

  pytest --surrogate-target examples.torch_candidates:CANDIDATES --surrogate-dtypes float16,float32,float64
"""

import numpy as np
import torch


class FastSigmoid(torch.autograd.Function):
  """H(x) forward (H(0) = 1); backward ct/(slope·|x| + 1)²."""

  @staticmethod
  def forward(ctx, x, slope):
    ctx.save_for_backward(x)
    ctx.slope = slope
    return (x >= 0).to(x.dtype)

  @staticmethod
  def backward(ctx, ct):
    (x,) = ctx.saved_tensors
    return ct / (ctx.slope * x.abs() + 1) ** 2, None


def candidate(slope: float) -> dict:
  """The library's fast_sigmoid(slope) as a candidate named by snntorch's alias (= InvSquareGrad(alpha=slope))."""

  def forward(x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
      return FastSigmoid.apply(torch.from_numpy(np.array(x)), slope).numpy()

  def vjp(x: np.ndarray, ct: np.ndarray) -> np.ndarray:
    xt = torch.from_numpy(np.array(x)).requires_grad_(True)
    (grad,) = torch.autograd.grad(FastSigmoid.apply(xt, slope), xt, grad_outputs=torch.from_numpy(np.array(ct)))
    return grad.numpy()

  return {"name": "fast_sigmoid", "params": {"slope": slope}, "backend": "numpy", "forward": forward, "vjp": vjp}


CANDIDATES = [candidate(25.0), candidate(5.0)]
