"""Evaluating a torch spike function on NumPy arrays: forward, and the VJP through autograd on the CPU.

The input keeps its dtype: float16, float32 and float64 map to the torch dtypes of the same name,
and NumPy's bfloat16 (``ml_dtypes.bfloat16``) goes through float32 to ``torch.bfloat16`` (exact,
since every bfloat16 is a float32) and back. Results keep the dtype the library returns, so a
library that changes the dtype is seen doing so. torch is imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np

TorchFn = Callable[[Any], Any]


def _torch() -> Any:
  import torch  # imported on first use: the package stays importable without torch

  return torch


def to_torch(x: np.ndarray) -> Any:
  """A CPU tensor with the array's values and dtype (bfloat16 included)."""
  torch = _torch()
  x = np.asarray(x)
  if x.dtype == ml_dtypes.bfloat16:
    return torch.from_numpy(np.ascontiguousarray(x.astype(np.float32))).to(torch.bfloat16)
  return torch.from_numpy(np.array(x, copy=True))


def to_numpy(t: Any) -> np.ndarray:
  """The tensor's values as an array of the matching dtype (torch.bfloat16 -> ml_dtypes.bfloat16)."""
  torch = _torch()
  t = t.detach().cpu()
  if t.dtype == torch.bfloat16:
    return t.to(torch.float32).numpy().astype(ml_dtypes.bfloat16)
  return t.numpy()


def forward(spike: TorchFn, x: np.ndarray) -> np.ndarray:
  """H(x) as the library computes it."""
  torch = _torch()
  with torch.no_grad():
    return to_numpy(spike(to_torch(x)))


def vjp(spike: TorchFn, x: np.ndarray, ct: np.ndarray) -> np.ndarray:
  """ct·g(x): the gradient of <ct, spike(x)> with respect to x, by torch autograd."""
  torch = _torch()
  xt = to_torch(x).requires_grad_(True)
  with torch.enable_grad():
    y = spike(xt)
    (grad,) = torch.autograd.grad(y, xt, grad_outputs=to_torch(np.broadcast_to(ct, np.shape(x))), allow_unused=True)
  if grad is None:  # the output does not depend on x at all
    grad = torch.zeros_like(xt)
  return to_numpy(grad)


def elementwise(fn: TorchFn, x: np.ndarray) -> np.ndarray:
  """A plain torch function of x (a primitive P, say) evaluated without autograd."""
  torch = _torch()
  with torch.no_grad():
    return to_numpy(fn(to_torch(x)))


def candidate_fns(spike: TorchFn) -> dict[str, Any]:
  """The candidate fields of a torch spike function: ``backend="torch"``, ``fn`` (judged with torch's
  transforms by the autodiff check) and the NumPy ``forward``/``vjp`` for the numerical checks."""
  fwd, grad = bind(spike)
  return {"backend": "torch", "fn": spike, "forward": fwd, "vjp": grad}


def bind(spike: TorchFn) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]]:
  """``forward(x)`` and ``vjp(x, ct)`` for one spike function."""
  return (lambda x: forward(spike, x)), (lambda x, ct: vjp(spike, x, ct))
