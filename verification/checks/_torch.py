"""Torch's own transforms for the torch forms of the checks (``backend="torch"`` candidates).

A torch candidate's ``fn`` takes and returns tensors; its NumPy ``forward``/``vjp`` (built by the
harness) serve the numerical checks. The pieces here judge, on float64 points kept off the kinks
(:func:`prepare`), with g = the gradient for a cotangent of ones (``torch.autograd.grad``), each for the
check of the same name as the JAX form:

- autodiff: ``autograd.grad(fn(x), x, grad_outputs=ct)`` = ct·g for a random cotangent ct; dtypes
  (forward and gradient keep float16, bfloat16, float32 and float64); layouts (a non-contiguous view,
  a transposed matrix and an expanded scalar give the contiguous values; and as training has them,
  :data:`TRAINING_LAYOUTS`: (N, C, H, W) contiguous and channels_last, an (N, H, W, C) tensor permuted,
  (T, B, C, H, W) contiguous and transposed, a 4-d slice with steps, forward exact and gradient
  elementwise); no in-place modification of the input or of the cotangent (values and version counter);
  the training loop and the large input of :mod:`verification.checks._training`;
- forward_mode: the ``torch.autograd.forward_ad`` primal is H (at ±0 and ±tiny too) and its tangent g·t;
- second_order: double backward (``create_graph=True``, as ``gradgradcheck`` does) = g', judged
  against central differences of g at h = 4e-3 widths (a gradient with no graph is g' = 0, right
  where g is piecewise constant);
- transforms: ``torch.func.vmap(fn)`` = fn (at ±0 and ±tiny too) and ``torch.func.vmap(torch.func.grad(fn))`` = g;
  ``torch.compile(fn, fullgraph=True)`` = eager, forward and gradient (float32, 8 points, compiled
  once per candidate; ``SURROGATE_TORCH_COMPILE=0`` turns it off, ``=inductor`` uses inductor
  instead of the default ``aot_eager`` backend, which traces forward and backward without code
  generation).

Wrong numbers, wrong dtypes and exceptions are ``fail``. A transform the candidate's mechanism does
not support (an ``autograd.Function`` with no ``jvp``, no ``setup_context`` or ``vmap`` rule for
``torch.func``, a ``torch.library`` custom op without ``register_vmap`` or forward-mode formula, a
backward that is not differentiable, a graph break under ``fullgraph=True``) is ``unsupported`` with
its capability, the reason and the fix for that mechanism; a ``torch.compile``'d or TorchScript spike
function lacks some by construction (:data:`_MECHANISMS`: no double backward, no forward mode or vmap), and
that decides whatever the error's wording (the phrases of :data:`_MISSING` are the fallback); Dynamo's
caches are emptied before every torch form, so no verdict depends on the checks before it; where several
are missing the first is the result's capability and all are listed under ``missing``. This module
imports torch only when called (:func:`import_torch`).

The candidate runs only in the ``torch_*`` functions, marked :func:`~verification.core.tape.recorded`:
each takes the inputs the harness chose (NumPy arrays, numbers, strings) and returns the candidate's raw
outputs as data (float64 arrays, dtype names, flags such as "the version counter moved", and the
exception a transform raised, as a value); they run in the worker and are replayed in the judge process.
Everything that decides (the points, the cotangents and their rounding, the tolerances,
:meth:`Judge.compare`, :func:`classify`) runs outside them, in both processes, and the judge's copy
decides.
"""

from __future__ import annotations

import functools
import os
import types
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np

from verification.checks._context import G_SLOPE_REASON, g_slope
from verification.core import numerics, tolerances
from verification.core.tape import recorded
from verification.results import Outcome, failed, passed, unsupported

F64 = np.dtype(np.float64)
DTYPES = ("float16", "bfloat16", "float32", "float64")

#: Error text of torch -> (capability, reason, fix), first match wins.
_MISSING: tuple[tuple[str, str, str, str], ...] = (
    ("custom jvp", "jit", "torch.compile (Dynamo, torch 2.13) does not trace an autograd.Function that defines jvp: "
     "forward mode and fullgraph compilation exclude each other for such a Function",
     "none within one autograd.Function in this torch version; compile the model without fullgraph=True"),
    ("setup_context", "vmap", "the autograd.Function has no setup_context, so torch.func cannot transform it",
     "split forward(ctx, ...) into forward(...) and setup_context(ctx, inputs, output)"),
    ("generate_vmap_rule", "vmap", "the autograd.Function has no vmap rule",
     "set generate_vmap_rule = True on the autograd.Function (or write its vmap staticmethod)"),
    ("jvp function", "forward", "the autograd.Function has no jvp, so forward-mode AD is not defined",
     "write the autograd.Function's jvp staticmethod (tangent times g)"),
    ("forward ad", "forward", "forward-mode AD is not implemented for an operation of the spike function",
     "write the autograd.Function's jvp staticmethod (tangent times g)"),
    ("forward-mode", "forward", "forward-mode AD is not implemented for an operation of the spike function",
     "write the autograd.Function's jvp staticmethod (tangent times g)"),
    ("once_differentiable", "second", "the backward is marked once_differentiable",
     "compute the backward with differentiable torch operations and drop @once_differentiable"),
    ("double backward", "second", "the mechanism does not support double backward",
     "take second derivatives of the uncompiled spike function (torch.compile's AOTAutograd has no double backward)"),
)
#: What a mechanism lacks by construction, whatever its error says: mechanism -> capability -> (reason, fix).
_MECHANISMS: dict[str, dict[str, tuple[str, str]]] = {
    "torch.compile": {
        "second": ("a torch.compile'd function has no double backward (AOTAutograd compiles one backward)",
                   "take second derivatives of the uncompiled spike function"),
        "forward": ("a torch.compile'd function does not carry forward-mode tangents",
                    "use forward mode on the uncompiled spike function"),
        "vmap": ("torch.func.vmap does not transform a torch.compile'd function",
                 "vmap the uncompiled spike function (compile the vmapped one)"),
    },
    "TorchScript": {
        "forward": ("TorchScript has no forward-mode AD", "use forward mode on the Python spike function"),
        "vmap": ("torch.func does not transform TorchScript", "vmap the Python spike function"),
        "second": ("the TorchScript function's backward is not differentiable here",
                   "use double backward on the Python spike function"),
        "jit": ("torch.compile does not trace TorchScript", "compile the Python spike function"),
    },
}
#: Namespaces of torch's own operators; any other operator a spike function dispatches is a custom op.
_TORCH_NAMESPACES = frozenset({"aten", "prims", "prim", "_c10d_functional", "c10d", "profiler"})
_CUSTOM_FORWARD_FIX = "torch.library has no forward-mode registration for a custom op: call the op inside an " \
    "autograd.Function whose jvp staticmethod returns the tangent times g (the op stays its forward)"
_CUSTOM_VMAP_FIX = "register a batching rule for the custom op with torch.library.register_vmap"
_COMPILE_FIX = "make the spike function traceable by torch.compile without graph breaks (no .item(), numpy or Python" \
    " control flow on tensor values in forward or backward)"


def import_torch() -> Any:
  import torch

  return torch


def compile_mode() -> str:
  """The torch.compile backend used ("aot_eager" by default), or "" when turned off."""
  mode = os.environ.get("SURROGATE_TORCH_COMPILE", "aot_eager").strip().lower()
  return "" if mode in ("0", "off", "false", "no", "") else mode


def describe(exc: BaseException) -> str:
  text = str(exc).strip().splitlines()
  return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def classify(exc: BaseException, default: str | None, mechanism: str = "") -> tuple[str, str, str] | None:
  """(capability, reason, fix) for an error that says a transform is not supported, else None. Where the
  candidate's mechanism lacks the capability by construction (``mechanism``: :func:`torch_mechanism`), that
  decides, whatever the error's wording; the phrases of :data:`_MISSING` are the fallback."""
  known = _MECHANISMS.get(mechanism, {}).get(default or "")
  if known is not None:
    return (default, *known)
  msg = str(exc).lower()
  for needle, capability, reason, fix in _MISSING:
    if needle in msg:
      return capability, reason, fix
  if default == "jit":
    return "jit", "torch.compile(fullgraph=True) cannot capture the spike function", _COMPILE_FIX
  return None


class Judge:
  """Collects failures and missing capabilities for one candidate (in both processes: the judge's copy
  decides). It never calls the candidate: the ``torch_*`` functions do, recorded."""

  def __init__(self, ctx: Any) -> None:
    self.ctx = ctx
    self.failures: list[dict[str, Any]] = []
    self.missing: list[dict[str, Any]] = []
    #: Parts the candidate's mechanism cannot run by construction (noted in the result, not failed).
    self.not_checked: list[str] = []

  @property
  def custom_ops(self) -> tuple[str, ...]:
    """The custom ops the spike function calls (memoised per candidate)."""
    memo = self.ctx.memo
    if "torch_custom_ops" not in memo:
      memo["torch_custom_ops"] = tuple(torch_custom_ops(self.ctx))
    return memo["torch_custom_ops"]

  def lacks(self, capability: str, message: str, fix: str, **detail: Any) -> None:
    self.missing.append({"capability": capability, "message": message, "fix": fix, **detail})

  def fail(self, message: str, **detail: Any) -> None:
    self.failures.append({"message": message, **detail})

  note = fail  # the name :class:`verification.checks._context.Comparisons` gives it

  @property
  def mechanism(self) -> str:
    """What the spike function is beyond plain torch code (memoised per candidate): :func:`torch_mechanism`."""
    memo = self.ctx.memo
    if "torch_mechanism" not in memo:
      memo["torch_mechanism"] = torch_mechanism(self.ctx)
    return memo["torch_mechanism"]

  def error(self, what: str, exc: BaseException, capability: str | None = None) -> None:
    """An exception of a transform: a missing capability when the mechanism lacks it or torch says so, else a
    failure."""
    by_mechanism = _MECHANISMS.get(self.mechanism, {}).get(capability or "")
    if by_mechanism is not None:  # the same message whatever this run's error (it may depend on compiled state)
      self.lacks(capability, f"{what}: {by_mechanism[0]}", by_mechanism[1], observed=describe(exc))
      return
    known = classify(exc, capability, self.mechanism)
    if known is not None and known[0] == "vmap" and self.custom_ops:
      # torch names setup_context for any op without a batching rule; a custom op gets one by registration.
      known = ("vmap", f"the custom op {', '.join(self.custom_ops)} has no batching rule", _CUSTOM_VMAP_FIX)
    if known is None:
      self.fail(f"{what} raised {describe(exc)}")
    else:
      cap, reason, fix = known
      self.missing.append({"capability": cap, "message": f"{what}: {reason} ({describe(exc)})", "fix": fix})

  def compare(self, what: str, x: np.ndarray, expected: Any, got: Any, tol: np.ndarray | float, **extra: Any) -> None:
    """Records a failure where |got - expected| > tol (NaN on one side only is a failing point)."""
    x = np.asarray(x, F64).reshape(-1)
    e = np.asarray(expected, F64).reshape(-1)
    g = np.asarray(got, F64).reshape(-1)
    err = np.abs(g - e)
    same = (np.isnan(e) & np.isnan(g)) | (np.isinf(e) & (e == g))
    err = np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))
    bound = np.broadcast_to(np.asarray(tol, F64), err.shape)
    bad = err > bound
    if bad.any():
      i = int(np.argmax(np.where(bad, err / np.maximum(bound, np.finfo(F64).tiny), -1.0)))
      self.fail(what, worst_input=float(x[i]), expected=float(e[i]), got=float(g[i]), tolerance=float(bound[i]),
                failing_points=int(bad.sum()), **extra)


def as_numpy(t: Any) -> np.ndarray:
  torch = import_torch()
  t = t.detach()
  return (t.to(torch.float64) if t.is_floating_point() else t).cpu().numpy()


def grad_of(fn: Callable, x: Any, ct: Any, create_graph: bool = False) -> Any:
  """d<ct, fn(x)>/dx by ``torch.autograd.grad`` (zeros where the output does not depend on x). Runs the
  candidate: for the bodies of recorded functions only."""
  torch = import_torch()
  with torch.enable_grad():
    xr = x.detach().clone().requires_grad_(True) if not create_graph else x
    y = fn(xr)
    (g,) = torch.autograd.grad(y, xr, grad_outputs=ct, allow_unused=True, create_graph=create_graph)
  return torch.zeros_like(xr) if g is None else g


# -------------------------------------------------------------------------------------------------
# Where the candidate runs: recorded (verification.core.tape). Each takes the inputs the harness chose
# and returns the candidate's raw outputs as data; an exception the check turns into a result comes back
# as a value (as the try around the same call did before), any other one is raised.
# -------------------------------------------------------------------------------------------------


@recorded
def torch_custom_ops(ctx: Any) -> tuple[str, ...]:
  """The operators outside torch's own namespaces that the spike function dispatches on
  ``torch.linspace(-1, 1, 4)`` in float64 (``torch.library`` custom ops, ``ns::name``), recorded with a
  ``TorchDispatchMode``; () where none or where it raises."""
  torch = import_torch()
  from torch.utils._python_dispatch import TorchDispatchMode

  fn = ctx.candidate.fn
  x = torch.linspace(-1, 1, 4, dtype=torch.float64)
  seen: set[str] = set()

  class Record(TorchDispatchMode):
    def __torch_dispatch__(self, func, types_, args=(), kwargs=None):
      if getattr(func, "namespace", "aten") not in _TORCH_NAMESPACES:
        seen.add(str(getattr(func, "_schema", func)).split("(")[0])
      return func(*args, **(kwargs or {}))

  try:
    with Record(), torch.enable_grad():
      fn(x.detach().clone().requires_grad_(True))
  except Exception:
    return ()
  return tuple(sorted(seen))


@recorded
def torch_mechanism(ctx: Any) -> str:
  """"torch.compile" for a ``torch.compile``'d function or module, "TorchScript" for a scripted one (a partial
  of either too), else ""."""
  torch = import_torch()
  fn = ctx.candidate.fn
  while isinstance(fn, functools.partial):
    fn = fn.func
  if hasattr(fn, "_torchdynamo_orig_callable") or type(fn).__name__ == "OptimizedModule":
    return "torch.compile"
  if isinstance(fn, torch.jit.ScriptFunction | torch.jit.ScriptModule):
    return "TorchScript"
  return ""


def fresh_compilation() -> None:
  """Dynamo's caches emptied (where torch.compile was used in this process): a compiled candidate's verdict
  in one check does not depend on what earlier checks compiled (its recompile limit, say)."""
  import sys

  dynamo = sys.modules.get("torch._dynamo")
  if dynamo is not None:
    dynamo.reset()


@recorded
def torch_gradient(ctx: Any, x: np.ndarray) -> np.ndarray:
  """g at x (float64): ``torch.autograd.grad`` of the spike function with a cotangent of ones."""
  torch = import_torch()
  ones = torch.ones(np.shape(x), dtype=torch.float64)
  return as_numpy(grad_of(ctx.candidate.fn, torch.from_numpy(np.asarray(x, F64).copy()), ones))


@recorded
def torch_output_dtype(ctx: Any, x: np.ndarray) -> str:
  """The dtype of the spike function's output at x, as torch prints it (``"torch.float64"``)."""
  torch = import_torch()
  return str(ctx.candidate.fn(torch.from_numpy(x.copy())).dtype)


@recorded
def torch_vjp(ctx: Any, x: np.ndarray, ct: np.ndarray) -> dict[str, Any] | Exception:
  """``autograd.grad(fn(x), x, grad_outputs=ct)`` (None where autograd gives none), and the input and
  the cotangent as they are after it, with whether their version counters moved; or what it raised."""
  torch = import_torch()
  xt = torch.from_numpy(x.copy()).requires_grad_(True)
  ctt = torch.from_numpy(ct.copy())
  versions = (xt._version, ctt._version)
  try:
    with torch.enable_grad():
      (got,) = torch.autograd.grad(ctx.candidate.fn(xt), xt, grad_outputs=ctt, allow_unused=True)
  except Exception as exc:
    return exc
  return {"vjp": None if got is None else as_numpy(got),
          "x_after": as_numpy(xt), "x_version_moved": xt._version != versions[0],
          "ct_after": as_numpy(ctt), "ct_version_moved": ctt._version != versions[1]}


@recorded
def torch_forward_ad(ctx: Any, x: np.ndarray, t: np.ndarray) -> dict[str, Any] | Exception:
  """The primal and tangent (None where torch gives none) of ``torch.autograd.forward_ad`` at x with
  tangent t, and the spike function at x without grad; or what forward mode raised."""
  torch = import_torch()
  import torch.autograd.forward_ad as fwad

  fn = ctx.candidate.fn
  try:
    with fwad.dual_level():
      out = fn(fwad.make_dual(torch.from_numpy(x.copy()), torch.from_numpy(t.copy())))
      primal, tangent = fwad.unpack_dual(out)
  except Exception as exc:
    return exc
  with torch.no_grad():
    h = as_numpy(fn(torch.from_numpy(x.copy())))
  return {"h": h, "primal": as_numpy(primal), "tangent": None if tangent is None else as_numpy(tangent)}


@recorded
def torch_double_backward(ctx: Any, x: np.ndarray) -> dict[str, Any] | Exception:
  """The gradient's derivative by double backward (``create_graph=True``; None where autograd gives none)
  and whether the gradient has a graph at all; or what it raised."""
  torch = import_torch()
  xt = torch.from_numpy(x.copy()).requires_grad_(True)
  try:
    with torch.enable_grad():
      g1 = grad_of(ctx.candidate.fn, xt, torch.ones_like(xt), create_graph=True)
      g2 = None
      if g1.requires_grad:
        (g2,) = torch.autograd.grad(g1.sum(), xt, allow_unused=True)
  except Exception as exc:
    return exc
  return {"has_graph": bool(g1.requires_grad), "second": None if g2 is None else as_numpy(g2)}


@recorded
def torch_vmap(ctx: Any, x: np.ndarray) -> dict[str, Any]:
  """The spike function at x (no grad), then ``torch.func.vmap(fn)`` and ``torch.func.vmap(torch.func.grad
  (fn))`` at x, each its value or what it raised (the second is not tried where the first raised)."""
  torch = import_torch()
  fn = ctx.candidate.fn
  with torch.no_grad():
    out: dict[str, Any] = {"h": as_numpy(fn(torch.from_numpy(x.copy())))}
  for key, transform in (("vmap", lambda: torch.func.vmap(fn)),
                         ("vmap_grad", lambda: torch.func.vmap(torch.func.grad(fn)))):
    try:
      got = transform()(torch.from_numpy(x.copy()))
    except Exception as exc:
      out[key] = exc
      break
    out[key] = as_numpy(got)
  return out


@recorded
def torch_compiled(ctx: Any, x: np.ndarray, mode: str) -> dict[str, Any] | Exception:
  """``torch.compile(fn, fullgraph=True, backend=mode)`` at x (float32): the forward and the gradient (a
  cotangent of ones), compiled and eager; or what compiling or the compiled function raised."""
  torch = import_torch()
  fn = ctx.candidate.fn
  x32 = torch.from_numpy(x.copy())
  try:
    compiled = torch.compile(fn, fullgraph=True, backend=mode)
    y_c = compiled(x32)
    g_c = grad_of(compiled, x32, torch.ones_like(x32))
  except Exception as exc:
    return exc
  finally:
    torch._dynamo.reset()  # the next candidate compiles afresh (and the cache does not grow)
  y_e, g_e = fn(x32.clone()), grad_of(fn, x32, torch.ones_like(x32))
  return {"forward": as_numpy(y_c), "gradient": as_numpy(g_c), "eager_forward": as_numpy(y_e),
          "eager_gradient": as_numpy(g_e)}


@recorded
def torch_dtypes(ctx: Any, x: np.ndarray, name: str) -> dict[str, Any] | Exception:
  """The dtypes (as torch prints them) of the spike function's output and of its gradient (a cotangent of
  ones; None where autograd gives none) for x in the torch dtype ``name``; or what either raised."""
  torch = import_torch()
  xt = torch.from_numpy(x.copy()).to(getattr(torch, name)).requires_grad_(True)
  try:
    with torch.enable_grad():
      y = ctx.candidate.fn(xt)
      (g,) = torch.autograd.grad(y, xt, grad_outputs=torch.ones_like(y), allow_unused=True)
  except Exception as exc:
    return exc
  return {"forward": str(y.dtype), "gradient": None if g is None else str(g.dtype)}


@recorded
def torch_layouts(ctx: Any, xs: np.ndarray, cts: np.ndarray) -> dict[str, Any]:
  """The spike function at xs (16 points), then, in order, for non-contiguous and expanded inputs: the
  forward and the VJP (cotangent cts) of a stride-2 view of a (16, 2) buffer (the VJP is the buffer's),
  the gradient of a transposed 4×4 matrix, and the forward and the VJP (cotangent cts[:5]) of xs[0]
  expanded to 5 (a float); None where autograd gives none. The list ends with the first exception raised."""
  torch = import_torch()
  fn = ctx.candidate.fn
  h = as_numpy(fn(torch.from_numpy(xs.copy())).detach())
  outputs: list[Any] = []
  try:
    # Every other element of a (n, 2) buffer: a non-contiguous view with stride 2.
    base = torch.from_numpy(np.stack([xs, -xs], axis=1).copy()).requires_grad_(True)
    view = base[:, 0]
    with torch.enable_grad():
      y = fn(view)
      (gb,) = torch.autograd.grad(y, base, grad_outputs=torch.from_numpy(cts.copy()), allow_unused=True)
    outputs.append(as_numpy(y))
    outputs.append(None if gb is None else as_numpy(gb))
    # A transposed matrix.
    m = torch.from_numpy(xs.reshape(4, 4).copy()).requires_grad_(True)
    with torch.enable_grad():
      yt = fn(m.t())
      (gm,) = torch.autograd.grad(yt, m, grad_outputs=torch.ones_like(yt), allow_unused=True)
    outputs.append(None if gm is None else as_numpy(gm))
    # An expanded scalar: stride 0, every element the same memory.
    x0 = torch.tensor(float(xs[0]), dtype=torch.float64).requires_grad_(True)
    with torch.enable_grad():
      ye = fn(x0.expand(5))
      (g0,) = torch.autograd.grad(ye, x0, grad_outputs=torch.from_numpy(cts[:5].copy()), allow_unused=True)
    outputs.append(as_numpy(ye))
    outputs.append(None if g0 is None else float(g0))
  except Exception as exc:
    outputs.append(exc)
  return {"h": h, "outputs": outputs}


#: The inputs of the sizes, ranks and memory layouts training gives a spike function: (what, the leaf's
#: shape, a permutation of the leaf's axes or None, an index with steps or None, whether the leaf is stored
#: channels_last). The spike function receives the leaf permuted, then indexed; every axis longer than 1.
TRAINING_LAYOUTS: tuple[tuple[str, tuple[int, ...], tuple[int, ...] | None, tuple[slice, ...] | None, bool], ...] = (
    ("a contiguous (N, C, H, W) input", (2, 3, 4, 5), None, None, False),
    ("a channels_last (N, C, H, W) input", (2, 3, 4, 5), None, None, True),
    ("an (N, H, W, C) tensor permuted to (N, C, H, W)", (2, 4, 5, 3), (0, 3, 1, 2), None, False),
    ("a (T, B, C, H, W) input", (3, 2, 5, 2, 2), None, None, False),
    ("a (B, T, C, H, W) tensor transposed to (T, B, C, H, W)", (2, 3, 5, 2, 2), (1, 0, 2, 3, 4), None, False),
    ("a 4-d input sliced with steps [::2, :, 1::2, ::3]", (4, 3, 8, 7), None,
     (slice(None, None, 2), slice(None), slice(1, None, 2), slice(None, None, 3)), False),
)


def _layout_view(a: Any, perm: tuple[int, ...] | None, index: tuple[slice, ...] | None) -> Any:
  """The leaf (a tensor, or an array of positions) as the spike function receives it."""
  if perm is not None:
    a = a.permute(*perm) if hasattr(a, "permute") else np.transpose(a, perm)
  return a if index is None else a[index]


def _layout_positions(leaf_shape: tuple[int, ...], m: int, perm: Any, index: Any) -> tuple[np.ndarray, np.ndarray]:
  """(the leaf's elements as positions in the m points, the view's elements as flat positions in the leaf)."""
  flat = np.arange(int(np.prod(leaf_shape))).reshape(leaf_shape)
  return flat % m, _layout_view(flat, perm, index)


@recorded
def torch_training_layouts(ctx: Any, x: np.ndarray, ct: np.ndarray) -> dict[str, Any]:
  """The spike function at x (1-d, no grad), then for each of :data:`TRAINING_LAYOUTS` (the leaf holding
  x's points in order, repeated): the forward of the view and the leaf's gradient for a cotangent of the
  view's shape (ct's points at other positions); each its value or what it raised."""
  torch = import_torch()
  fn = ctx.candidate.fn
  with torch.no_grad():
    out: dict[str, Any] = {"h": as_numpy(fn(torch.from_numpy(x.copy())))}
  cases: list[Any] = []
  for _, shape, perm, index, channels_last in TRAINING_LAYOUTS:
    at, view = _layout_positions(shape, x.size, perm, index)
    leaf = torch.from_numpy(x[at])
    if channels_last:
      leaf = leaf.contiguous(memory_format=torch.channels_last)
    leaf.requires_grad_(True)
    try:
      with torch.enable_grad():
        y = fn(_layout_view(leaf, perm, index))
        (grad,) = torch.autograd.grad(y, leaf, grad_outputs=torch.from_numpy(ct[(7 * view + 3) % ct.size]),
                                      allow_unused=True)
      cases.append({"forward": as_numpy(y), "gradient": None if grad is None else as_numpy(grad)})
    except Exception as exc:
      cases.append(exc)
  out["cases"] = cases
  return out


def shapes(j: Judge, x: np.ndarray, ct: np.ndarray, g: np.ndarray) -> None:
  """Each of :data:`TRAINING_LAYOUTS`: its forward is the 1-d forward at the same points (exact) and the
  leaf's gradient ct·g at each element the view reads (0 elsewhere)."""
  out = torch_training_layouts(j.ctx, x, ct)
  h = out["h"]
  for (what, shape, perm, index, _), case in zip(TRAINING_LAYOUTS, out["cases"], strict=True):
    if isinstance(case, Exception):
      j.fail(f"{what} raised {describe(case)}", shape=list(shape))
      continue
    at, view = _layout_positions(shape, x.size, perm, index)
    points = x[at.reshape(-1)[view]]
    j.compare(f"the forward of {what} is not the 1-d forward elementwise", points, h[at.reshape(-1)[view]],
              case["forward"] if np.shape(case["forward"]) == view.shape else np.full(view.shape, np.nan), 0.0,
              shape=list(view.shape), dtype="float64")
    cts = ct[(7 * view + 3) % ct.size]
    expected, ct_leaf = np.zeros(at.size), np.zeros(at.size)
    expected[view.reshape(-1)] = (cts * g[at.reshape(-1)[view]]).reshape(-1)
    ct_leaf[view.reshape(-1)] = cts.reshape(-1)
    got = np.zeros(at.size) if case["gradient"] is None else np.asarray(case["gradient"]).reshape(-1)
    if got.size != at.size:
      j.fail(f"the gradient of {what} has shape {np.shape(case['gradient'])} where {shape} was expected")
      continue
    tol = tolerances.K_WIRING * tolerances.eps(F64) * j.ctx.peak * (1 + np.abs(ct_leaf))
    j.compare(f"the gradient of {what} is not ct·g elementwise (an axis order or memory layout mixed up)",
              x[at.reshape(-1)], expected, got, tol, shape=list(shape), dtype="float64")


# -------------------------------------------------------------------------------------------------
# The judging: the candidate's recorded outputs against what the harness computes itself.
# -------------------------------------------------------------------------------------------------


def vjp_and_mutation(j: Judge, x: np.ndarray, ct: np.ndarray, g: np.ndarray, tol: np.ndarray) -> None:
  out = torch_vjp(j.ctx, x, ct)
  if isinstance(out, Exception):
    j.fail(f"the VJP with a random cotangent raised {describe(out)}")
    return
  got = np.zeros_like(x) if out["vjp"] is None else out["vjp"]
  j.compare("the VJP is not ct·g(x) for a random cotangent (autograd.grad with grad_outputs)", x, ct * g, got,
            tol, dtype="float64")
  if not np.array_equal(out["ct_after"], ct) or out["ct_version_moved"]:
    j.fail("the backward modifies the cotangent in place (grad_output); clone it before writing to it",
           dtype="float64")
  if not np.array_equal(out["x_after"], x) or out["x_version_moved"]:
    j.fail("the spike function modifies its input in place", dtype="float64")


#: Inputs where a threshold's form shows (x > 0 against x >= 0, the sign bit): the primal of every
#: transform is judged at them too, appended to the off-kink points (float64).
SIGN_CASES = np.array([0.0, -0.0, 5e-324, -5e-324, float(np.finfo(F64).tiny), -float(np.finfo(F64).tiny)])


def forward_mode(j: Judge, x: np.ndarray, t: np.ndarray, g: np.ndarray, tol: np.ndarray) -> None:
  """The forward_ad primal is H (at ±0 and ±tiny too) and its tangent g·t; no tangent where g ≠ 0 is the
  capability missing."""
  n = x.size
  out = torch_forward_ad(j.ctx, np.concatenate([x, SIGN_CASES]), np.concatenate([t, np.ones(SIGN_CASES.size)]))
  if isinstance(out, Exception):
    j.error("forward mode (torch.autograd.forward_ad)", out, "forward")
    return
  j.compare("the forward-mode primal is not H(x) (torch.autograd.forward_ad; ±0 and ±tiny included)",
            np.concatenate([x, SIGN_CASES]), out["h"], out["primal"], 0.0, dtype="float64")
  tangent = None if out["tangent"] is None else out["tangent"][:n]
  if tangent is None and np.any(g * t != 0) and j.mechanism in _MECHANISMS:
    reason, fix = _MECHANISMS[j.mechanism]["forward"]
    j.lacks("forward", f"forward mode (torch.autograd.forward_ad): no tangent came back: {reason}", fix)
    return
  if tangent is None and np.any(g * t != 0):
    ops = j.custom_ops
    what = f"the custom op {', '.join(ops)}" if ops else "an operation of the spike function"
    j.lacks("forward", f"forward mode (torch.autograd.forward_ad): no tangent came back, and no error: torch drops "
            f"the tangent of {what} silently (it has no forward-mode formula)",
            _CUSTOM_FORWARD_FIX if ops else "write the autograd.Function's jvp staticmethod (tangent times g)")
    return
  got = np.zeros_like(x) if tangent is None else tangent
  j.compare("the forward-mode tangent is not g(x)·t (torch.autograd.forward_ad)", x, g * t, got, tol,
            dtype="float64")


def second_order(j: Judge, x: np.ndarray, gfun: Callable[[np.ndarray], np.ndarray]) -> None:
  """Double backward against Richardson differences of ``gfun`` (g at any points: :func:`torch_gradient`)."""
  ctx = j.ctx
  out = torch_double_backward(ctx, x)
  if isinstance(out, Exception):
    j.error("second order (double backward)", out, "second")
    return
  second = np.zeros_like(x) if out["second"] is None else out["second"]
  fd, tol = g_slope(ctx, gfun, x)
  if not out["has_graph"]:
    # No graph behind the gradient: torch's second derivative is 0. Right where g is piecewise
    # constant off the kinks (LeakyRelu, Boxcar: g' = 0); elsewhere the mechanism lacks second order.
    if np.any(np.abs(fd) > tol):
      j.lacks("second", "second order (double backward): the gradient is not differentiable (the backward "
              "detaches its result or uses non-differentiable operations), and g' is not 0 here",
              "compute the backward with differentiable torch operations on the saved input")
    return
  before = len(j.failures)
  j.compare("the double backward is not g'(x) (central differences of g)", x, fd, second, tol,
            reason=G_SLOPE_REASON, dtype="float64")
  lacking = _MECHANISMS.get(j.mechanism, {}).get("second")
  if len(j.failures) > before and lacking is not None:  # numbers the mechanism does not promise
    failure = j.failures.pop()
    j.lacks("second", f"second order (double backward): {lacking[0]}", lacking[1],
            observed=f"{failure['got']!r} where g' is {failure['expected']!r} at x = {failure['worst_input']!r}")


def vmap_grad(j: Judge, x: np.ndarray, g: np.ndarray, tol: np.ndarray) -> None:
  """``torch.func.vmap(fn)`` = fn (exact, ±0 and ±tiny included) and ``torch.func.vmap(torch.func.grad(fn))`` = g."""
  n = x.size
  xs = np.concatenate([x, SIGN_CASES])
  out = torch_vmap(j.ctx, xs)
  for key, what, expected, bound, of in (
      ("vmap", "torch.func.vmap(fn)", out["h"], 0.0, "fn (a wrong batching rule)"),
      ("vmap_grad", "torch.func.vmap(torch.func.grad(fn))", g, tol, "g")):
    got = out[key]
    if isinstance(got, Exception):
      j.error(what, got, "vmap")
      return
    if key == "vmap":
      j.compare(f"{what} is not {of} (±0 and ±tiny included)", xs, expected, got, bound, dtype="float64")
    else:
      j.compare(f"{what} is not {of}", x, expected, np.asarray(got)[:n], bound, dtype="float64")


def compiled(j: Judge, x: np.ndarray, mode: str) -> None:
  out = torch_compiled(j.ctx, x[:8].astype(np.float32), mode)
  if isinstance(out, Exception):
    j.error(f"torch.compile(fn, fullgraph=True, backend={mode!r})", out, "jit")
    return
  eps = tolerances.eps(np.float32)
  j.compare("torch.compile(fullgraph=True) forward differs from eager", x[:8], out["eager_forward"], out["forward"],
            0.0, dtype="float32")
  j.compare("torch.compile(fullgraph=True) gradient differs from eager", x[:8], out["eager_gradient"],
            out["gradient"], tolerances.K_WIRING * eps * j.ctx.peak, dtype="float32",
            reason="same formula, fused code may round differently: a few float32 ulp of the peak")


def dtypes(j: Judge, x: np.ndarray) -> None:
  for name in DTYPES:
    out = torch_dtypes(j.ctx, x[:8], name)
    if isinstance(out, Exception):
      j.fail(f"forward or gradient raised {describe(out)} on a {name} input", dtype=name)
      continue
    want = f"torch.{name}"
    if out["forward"] != want:
      j.fail(f"the forward returns {out['forward'].removeprefix('torch.')} for a {name} input", dtype=name,
             got_dtype=out["forward"])
    if out["gradient"] is not None and out["gradient"] != want:
      j.fail(f"the gradient is {out['gradient'].removeprefix('torch.')} for a {name} input", dtype=name,
             got_dtype=out["gradient"])


def layouts(j: Judge, x: np.ndarray, ct: np.ndarray, g: np.ndarray, tol: np.ndarray) -> None:
  n = 16
  xs, cts = x[:n], ct[:n]
  out = torch_layouts(j.ctx, xs, cts)
  h = out["h"]
  outputs = iter(out["outputs"])

  def take() -> Any:
    """The next output, or the exception the candidate raised at that point (raised here, where the
    judging stops)."""
    value = next(outputs)
    if isinstance(value, Exception):
      raise value
    return value

  try:
    y = take()
    j.compare("forward of a non-contiguous view differs from the contiguous input", xs, h, y, 0.0)
    gb = take()
    got = np.zeros(n) if gb is None else gb[:, 0]
    j.compare("the VJP of a non-contiguous view differs from the contiguous input", xs, cts * g[:n], got, tol[:n])
    gm = take()
    j.compare("the gradient of a transposed (non-contiguous) matrix differs", xs, g[:n],
              np.zeros(n) if gm is None else gm.reshape(-1), tol[:n])
    ye = take()
    j.compare("forward of an expanded input differs", np.repeat(xs[:1], 5), np.repeat(h[:1], 5), ye, 0.0)
    g0 = take()
    j.compare("the gradient through an expanded input is not Σct·g(x0)", xs[:1], [cts[:5].sum() * g[0]],
              [0.0 if g0 is None else g0], 5 * tol[:1])
  except Exception as exc:
    j.fail(f"a non-contiguous or expanded input raised {describe(exc)}")


def rounded_as_autograd(ct: np.ndarray, name: str) -> np.ndarray:
  """The float64 cotangent ``ct`` cast to the dtype :func:`torch_output_dtype` recorded (``"torch.float16"``, or a
  NumPy dtype's name where the forward returned an array), as autograd casts a cotangent to the output's dtype.
  A float dtype in NumPy, as torch's CPU cast does it: to the nearest, ties to even, and to a 16-bit float through
  float32 first (torch converts a double to ``float``, then to ``Half`` or ``BFloat16``), back in float64; so the
  judge needs no torch. Any other dtype (an integer, bool or complex output) by torch itself."""
  short = name.removeprefix("torch.")
  with np.errstate(over="ignore"):  # (beyond the dtype's range: inf, as torch gives)
    if short in ("float16", "bfloat16"):
      return ct.astype(np.float32).astype(ml_dtypes.bfloat16 if short == "bfloat16" else np.float16).astype(F64)
    if short in ("float32", "float64"):
      return ct.astype(short).astype(F64)
  if not name.startswith("torch."):
    return ct.astype(np.dtype(name))
  torch = import_torch()
  return as_numpy(torch.from_numpy(ct).to(getattr(torch, short)))


def prepare(ctx: Any) -> types.SimpleNamespace | Outcome:
  """What every torch form judges with (memoised per candidate): 64 float64 points x off the kinks, a
  random cotangent ct (rounded to the forward's output dtype), g at x, ``gfun`` (g at any points,
  recorded) and the wiring tolerance; a ``fail`` outcome where the forward or the gradient raises. Every
  torch form starts here, with Dynamo's caches emptied (:func:`fresh_compilation`)."""
  fresh_compilation()
  if "torch" in ctx.memo:
    return ctx.memo["torch"]
  x = numerics.sample_points(ctx.length, ctx.reference.kinks(), 8 * ctx.step, n=64, seed=ctx.seed, span=4.0)
  x = x.astype(F64)
  ct = np.random.default_rng(ctx.seed + 1).normal(size=x.shape) * 2.0 + 0.5

  def gfun(v: np.ndarray) -> np.ndarray:
    return torch_gradient(ctx, np.asarray(v, F64))

  try:
    g = gfun(x)
    out_dtype = torch_output_dtype(ctx, x[:1])
  except Exception as exc:
    out = failed(f"the VJP (torch.autograd.grad) raised {describe(exc)}", dtype="float64")
  else:
    # autograd casts the cotangent to the output's dtype: where the forward changes the dtype (the
    # autodiff check reports it), the VJP is judged with the cotangent as rounded to it.
    ct = rounded_as_autograd(ct, out_dtype)
    # Same computation in the same dtype, only the final product rounds differently: a few ulp.
    tol = tolerances.K_WIRING * tolerances.eps(F64) * ctx.peak * (1 + np.abs(ct))
    out = types.SimpleNamespace(x=x, ct=ct, g=g, gfun=gfun, tol=tol)
  ctx.memo["torch"] = out
  return out


TOLERANCE = f"{tolerances.K_WIRING:g}·eps·peak·(1 + |ct|)"


def outcome(j: Judge, done: str, **detail: Any) -> Outcome:
  """``fail`` with the first failure (all listed), else ``unsupported`` with the first missing capability
  (all listed), else ``pass`` with ``done``."""
  missing = [m["capability"] for m in j.missing]
  if j.failures:
    first = j.failures[0]
    return failed(first["message"], **{k: v for k, v in first.items() if k != "message"},
                  all_failures=j.failures[:8], missing=missing)
  if j.missing:
    first = j.missing[0]
    return unsupported(first["capability"], first["message"], fix=first["fix"], missing=missing,
                       all_missing=j.missing, **({"observed": first["observed"]} if "observed" in first else {}))
  if j.not_checked:
    detail["not_checked"] = j.not_checked
  return passed(done, **detail)
