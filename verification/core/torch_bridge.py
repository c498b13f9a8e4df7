"""Torch spike functions on NumPy arrays: the bridges the harness builds for a torch candidate.

A torch candidate is its spike function (``fn`` takes and returns tensors). :func:`torch_fields`
gives the candidate fields the numerical checks use besides it: ``forward(x)`` = H(x) and
``vjp(x, ct)`` = ct·g(x) by torch autograd, on NumPy arrays on the CPU. :func:`numpy_callable` turns a
``surrogate_grad`` or ``surrogate_fun`` written with torch (or NumPy) into a function of NumPy arrays.

The input keeps its dtype: float16, float32 and float64 map to the torch dtypes of the same name,
and NumPy's bfloat16 (``ml_dtypes.bfloat16``) goes through float32 to ``torch.bfloat16`` (exact,
since every bfloat16 is a float32) and back. Results keep the dtype the function returns, so a
function that changes the dtype is seen doing so. torch is imported on first use, and
:func:`is_torch_callable` never imports it (a function cannot be torch code unless torch is loaded).
"""

from __future__ import annotations

import functools
import sys
import types
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
  """H(x) as the spike function computes it."""
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


def as_torch_fn(fn: Any) -> Any:
  """The callable of a torch spike function: an ``autograd.Function`` subclass becomes its ``apply``;
  anything else (a function, an ``nn.Module``, a ``torch.library`` custom op) is returned as is."""
  torch = sys.modules.get("torch")
  if torch is not None and isinstance(fn, type) and issubclass(fn, torch.autograd.Function):
    return fn.apply
  return fn


def torch_fields(spike: TorchFn) -> dict[str, Any]:
  """The candidate fields of a torch spike function: ``backend="torch"``, ``fn`` (judged with torch's
  own transforms) and the NumPy ``forward``/``vjp`` for the numerical checks. The built-in torch
  adapters use it; a candidate with ``backend="torch"`` (or a torch ``fn``) gets these fields built
  from its ``fn`` where it gives none."""
  spike = as_torch_fn(spike)
  return {"backend": "torch", "fn": spike, "forward": functools.partial(forward, spike),
          "vjp": functools.partial(vjp, spike)}


def _mentions(fn: Any, prefix: str, depth: int = 2) -> bool:
  """Whether a Python function's code names a module, or a class or function defined under ``prefix``
  (or a subclass or instance of one): through its globals and closure, nested functions' code
  included, and the Python functions it names, ``depth`` levels down."""
  code = getattr(fn, "__code__", None)
  if code is None:
    return False
  names: set[str] = set()
  todo = [code]
  while todo:
    c = todo.pop()
    names.update(c.co_names)
    todo.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
  scope = getattr(fn, "__globals__", {})
  values = [scope[n] for n in names if n in scope]
  values += [cell.cell_contents for cell in (getattr(fn, "__closure__", None) or ()) if _filled(cell)]
  for v in values:
    if isinstance(v, functools.partial):
      v = v.func
    if isinstance(v, types.ModuleType):
      module = v.__name__
    elif isinstance(v, type):
      module = " ".join(getattr(k, "__module__", "") or "" for k in v.__mro__)
    else:
      module = " ".join(getattr(k, "__module__", "") or "" for k in type(v).__mro__) if not callable(v) else \
          getattr(v, "__module__", "") or ""
    if any(m == prefix or m.startswith(prefix + ".") for m in str(module).split()):
      return True
    if depth and isinstance(v, types.FunctionType) and _mentions(v, prefix, depth - 1):
      return True
  return False


def _filled(cell: Any) -> bool:
  try:
    _ = cell.cell_contents
  except ValueError:
    return False
  return True


def is_torch_callable(fn: Any) -> bool:
  """Whether ``fn`` is torch code, without calling it: an ``nn.Module`` (TorchScript and ``torch.compile``'d
  modules too), a TorchScript function, a ``torch.compile``'d function, an ``autograd.Function`` (the
  class or its ``apply``), a ``torch.library`` op, a partial of one, or a Python function whose code
  names torch and not JAX. False whenever torch is not imported."""
  torch = sys.modules.get("torch")
  if torch is None or fn is None:
    return False
  if isinstance(fn, functools.partial):
    return is_torch_callable(fn.func)
  if isinstance(fn, torch.nn.Module | torch.jit.ScriptFunction):  # modules: scripted and compiled ones too
    return True
  compiled = getattr(fn, "_torchdynamo_orig_callable", None)  # a torch.compile'd function
  if compiled is not None:
    return True
  owner = getattr(fn, "__self__", None)
  if isinstance(fn, type) and issubclass(fn, torch.autograd.Function):
    return True
  if isinstance(owner, type) and issubclass(owner, torch.autograd.Function):
    return True
  if type(fn).__module__.startswith(("torch._library", "torch._ops")):
    return True
  return _mentions(fn, "torch") and not _mentions(fn, "jax")


def numpy_callable(fn: Callable[..., Any]) -> Callable[[np.ndarray], np.ndarray]:
  """``fn`` (a ``surrogate_grad`` or ``surrogate_fun``) as a function of NumPy arrays. A torch object (an
  ``nn.Module``, an ``autograd.Function``, a ``torch.library`` op) is called on a tensor of the array's
  dtype and its result brought back (:func:`elementwise`). A Python function is called on the array
  first (NumPy code, or a bridge that converts itself); where that raises and torch is loaded, on a
  tensor, and from then on on tensors (torch code), the first exception kept if both fail. A tensor
  returned is brought back to NumPy."""
  if is_torch_callable(fn) and not isinstance(fn, types.FunctionType | functools.partial):
    return functools.partial(elementwise, fn)
  on_tensors = False

  def call(x: np.ndarray) -> np.ndarray:
    nonlocal on_tensors
    torch = sys.modules.get("torch")
    if on_tensors:
      return elementwise(fn, x)
    try:
      out = fn(x)
    except Exception:
      if torch is None:
        raise
      try:
        out = elementwise(fn, x)
      except Exception:
        pass
      else:
        on_tensors = True
        return out
      raise
    return to_numpy(out) if torch is not None and isinstance(out, torch.Tensor) else out

  call.__wrapped__ = fn  # type: ignore[attr-defined]
  return call
