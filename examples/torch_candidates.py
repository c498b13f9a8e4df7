"""Candidates of a torch library: a torch candidate is its spike function.

``fn`` takes and returns tensors (here a ``torch.autograd.Function`` in the style of snntorch's
fast_sigmoid, g = 1/(slope·|x| + 1)², standing in for the library's own code); the backend is
inferred from it (or say ``"backend": "torch"``). The harness judges it with torch's own transforms
under the same check names as a JAX candidate: autodiff (``torch.autograd.grad``), forward_mode
(``torch.autograd.forward_ad``), second_order (double backward), transforms (``torch.func.vmap``,
``torch.compile``), and builds the NumPy bridges its numerical checks need, in every dtype,
bfloat16 included. ``surrogate_grad`` may be a torch function: it is held to the spike function's
gradient. This Function has no ``jvp`` and no ``setup_context``, so forward_mode and transforms
report those capabilities ``unsupported``, with the fix:

  pytest --surrogate-target examples.torch_candidates:CANDIDATES
  python -m verification --target examples.torch_candidates:CANDIDATES --dtypes float32,bfloat16,float64
"""

import functools

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


def spike(x: torch.Tensor, slope: float) -> torch.Tensor:
  return FastSigmoid.apply(x, slope)


def grad(x: torch.Tensor, slope: float) -> torch.Tensor:
  """g written out in torch: the surrogate_grad the library documents."""
  return 1 / (slope * x.abs() + 1) ** 2


def candidate(slope: float) -> dict:
  """The library's fast_sigmoid(slope) as a candidate named by snntorch's alias (= InvSquareGrad(alpha=slope))."""
  return {"name": "fast_sigmoid", "params": {"slope": slope}, "fn": functools.partial(spike, slope=slope),
          "surrogate_grad": functools.partial(grad, slope=slope)}


CANDIDATES = [candidate(25.0), candidate(5.0)]
