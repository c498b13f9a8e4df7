"""Torch's own transforms for the torch forms of the checks (``backend="torch"`` candidates).

A torch candidate's ``fn`` takes and returns tensors; its NumPy ``forward``/``vjp`` (built by the
harness) serve the numerical checks. The pieces here judge, on float64 points kept off the kinks
(:func:`prepare`), with g = the gradient for a cotangent of ones (``torch.autograd.grad``), each for the
check of the same name as the JAX form:

- autodiff: ``autograd.grad(fn(x), x, grad_outputs=ct)`` = ct·g for a random cotangent ct; dtypes
  (forward and gradient keep float16, bfloat16, float32 and float64); layouts (a non-contiguous view,
  a transposed matrix and an expanded scalar give the contiguous values); no in-place modification of
  the input or of the cotangent (values and version counter);
- forward_mode: the ``torch.autograd.forward_ad`` primal is H and its tangent g·t;
- second_order: double backward (``create_graph=True``, as ``gradgradcheck`` does) = g', judged
  against central differences of g at h = 4e-3 widths (a gradient with no graph is g' = 0, right
  where g is piecewise constant);
- transforms: ``torch.func.vmap(fn)`` = fn and ``torch.func.vmap(torch.func.grad(fn))`` = g;
  ``torch.compile(fn, fullgraph=True)`` = eager, forward and gradient (float32, 8 points, compiled
  once per candidate; ``SURROGATE_TORCH_COMPILE=0`` turns it off, ``=inductor`` uses inductor
  instead of the default ``aot_eager`` backend, which traces forward and backward without code
  generation).

Wrong numbers, wrong dtypes and exceptions are ``fail``. A transform the candidate's mechanism does
not support (an ``autograd.Function`` with no ``jvp``, no ``setup_context`` or ``vmap`` rule for
``torch.func``, a ``torch.library`` custom op without ``register_vmap`` or forward-mode formula, a
backward that is not differentiable, a graph break under ``fullgraph=True``) is ``unsupported`` with
its capability, the reason and the fix for that mechanism; where several are missing the first is the
result's capability and all are listed under ``missing``. This module imports torch only when called
(:func:`import_torch`).
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from verification.checks._context import G_SLOPE_REASON, g_slope
from verification.core import numerics, tolerances
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
)
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


def classify(exc: BaseException, default: str | None) -> tuple[str, str, str] | None:
  """(capability, reason, fix) for an error that says a transform is not supported, else None."""
  msg = str(exc).lower()
  for needle, capability, reason, fix in _MISSING:
    if needle in msg:
      return capability, reason, fix
  if default == "jit":
    return "jit", "torch.compile(fullgraph=True) cannot capture the spike function", _COMPILE_FIX
  return None


def custom_ops(fn: Callable[[Any], Any], x: Any) -> tuple[str, ...]:
  """The operators outside torch's own namespaces that ``fn(x)`` dispatches (``torch.library`` custom
  ops, ``ns::name``), recorded with a ``TorchDispatchMode``; () where none or where fn raises."""
  torch = import_torch()
  from torch.utils._python_dispatch import TorchDispatchMode

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


class Judge:
  """Collects failures and missing capabilities for one candidate."""

  def __init__(self, ctx: Any) -> None:
    self.ctx = ctx
    self.fn: Callable[[Any], Any] = ctx.candidate.fn
    self.failures: list[dict[str, Any]] = []
    self.missing: list[dict[str, Any]] = []

  @property
  def custom_ops(self) -> tuple[str, ...]:
    """The custom ops the spike function calls (memoised per candidate)."""
    memo = self.ctx.memo
    if "torch_custom_ops" not in memo:
      torch = import_torch()
      memo["torch_custom_ops"] = custom_ops(self.fn, torch.linspace(-1, 1, 4, dtype=torch.float64))
    return memo["torch_custom_ops"]

  def lacks(self, capability: str, message: str, fix: str) -> None:
    self.missing.append({"capability": capability, "message": message, "fix": fix})

  def fail(self, message: str, **detail: Any) -> None:
    self.failures.append({"message": message, **detail})

  def error(self, what: str, exc: BaseException, capability: str | None = None) -> None:
    """An exception of a transform: a missing capability when torch says so, else a failure."""
    known = classify(exc, capability)
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
  """d<ct, fn(x)>/dx by ``torch.autograd.grad`` (zeros where the output does not depend on x)."""
  torch = import_torch()
  with torch.enable_grad():
    xr = x.detach().clone().requires_grad_(True) if not create_graph else x
    y = fn(xr)
    (g,) = torch.autograd.grad(y, xr, grad_outputs=ct, allow_unused=True, create_graph=create_graph)
  return torch.zeros_like(xr) if g is None else g


def vjp_and_mutation(j: Judge, x: np.ndarray, ct: np.ndarray, g: np.ndarray, tol: np.ndarray) -> None:
  torch = import_torch()
  xt = torch.from_numpy(x.copy()).requires_grad_(True)
  ctt = torch.from_numpy(ct.copy())
  versions = (xt._version, ctt._version)
  try:
    with torch.enable_grad():
      (got,) = torch.autograd.grad(j.fn(xt), xt, grad_outputs=ctt, allow_unused=True)
  except Exception as exc:
    j.fail(f"the VJP with a random cotangent raised {describe(exc)}")
    return
  got = torch.zeros_like(xt) if got is None else got
  j.compare("the VJP is not ct·g(x) for a random cotangent (autograd.grad with grad_outputs)", x, ct * g, as_numpy(got),
            tol, dtype="float64")
  if not np.array_equal(as_numpy(ctt), ct) or ctt._version != versions[1]:
    j.fail("the backward modifies the cotangent in place (grad_output); clone it before writing to it",
           dtype="float64")
  if not np.array_equal(as_numpy(xt), x) or xt._version != versions[0]:
    j.fail("the spike function modifies its input in place", dtype="float64")


def forward_mode(j: Judge, x: np.ndarray, t: np.ndarray, g: np.ndarray, tol: np.ndarray) -> None:
  """The forward_ad primal is H and its tangent g·t; no tangent where g ≠ 0 is the capability missing."""
  torch = import_torch()
  import torch.autograd.forward_ad as fwad

  try:
    with fwad.dual_level():
      out = j.fn(fwad.make_dual(torch.from_numpy(x.copy()), torch.from_numpy(t.copy())))
      primal, tangent = fwad.unpack_dual(out)
  except Exception as exc:
    j.error("forward mode (torch.autograd.forward_ad)", exc, "forward")
    return
  with torch.no_grad():
    h = as_numpy(j.fn(torch.from_numpy(x.copy())))
  j.compare("the forward-mode primal is not H(x) (torch.autograd.forward_ad)", x, h, as_numpy(primal), 0.0,
            dtype="float64")
  if tangent is None and np.any(g * t != 0):
    ops = j.custom_ops
    what = f"the custom op {', '.join(ops)}" if ops else "an operation of the spike function"
    j.lacks("forward", f"forward mode (torch.autograd.forward_ad): no tangent came back, and no error: torch drops "
            f"the tangent of {what} silently (it has no forward-mode formula)",
            _CUSTOM_FORWARD_FIX if ops else "write the autograd.Function's jvp staticmethod (tangent times g)")
    return
  got = np.zeros_like(x) if tangent is None else as_numpy(tangent)
  j.compare("the forward-mode tangent is not g(x)·t (torch.autograd.forward_ad)", x, g * t, got, tol,
            dtype="float64")


def second_order(j: Judge, x: np.ndarray, gfun: Callable[[np.ndarray], np.ndarray]) -> None:
  torch = import_torch()
  ctx = j.ctx
  xt = torch.from_numpy(x.copy()).requires_grad_(True)
  try:
    with torch.enable_grad():
      g1 = grad_of(j.fn, xt, torch.ones_like(xt), create_graph=True)
      g2 = None
      if g1.requires_grad:
        (g2,) = torch.autograd.grad(g1.sum(), xt, allow_unused=True)
  except Exception as exc:
    j.error("second order (double backward)", exc, "second")
    return
  second = np.zeros_like(x) if g2 is None else as_numpy(g2)
  fd, tol = g_slope(ctx, gfun, x)
  if not g1.requires_grad:
    # No graph behind the gradient: torch's second derivative is 0. Right where g is piecewise
    # constant off the kinks (LeakyRelu, Boxcar: g' = 0); elsewhere the mechanism lacks second order.
    if np.any(np.abs(fd) > tol):
      j.lacks("second", "second order (double backward): the gradient is not differentiable (the backward "
              "detaches its result or uses non-differentiable operations), and g' is not 0 here",
              "compute the backward with differentiable torch operations on the saved input")
    return
  j.compare("the double backward is not g'(x) (central differences of g)", x, fd, second, tol,
            reason=G_SLOPE_REASON, dtype="float64")


def vmap_grad(j: Judge, x: np.ndarray, g: np.ndarray, tol: np.ndarray) -> None:
  """``torch.func.vmap(fn)`` = fn (exact) and ``torch.func.vmap(torch.func.grad(fn))`` = g."""
  torch = import_torch()
  with torch.no_grad():
    h = as_numpy(j.fn(torch.from_numpy(x.copy())))
  for what, transform, expected, bound, of in (
      ("torch.func.vmap(fn)", lambda: torch.func.vmap(j.fn), h, 0.0, "fn (a wrong batching rule)"),
      ("torch.func.vmap(torch.func.grad(fn))", lambda: torch.func.vmap(torch.func.grad(j.fn)), g, tol, "g")):
    try:
      got = transform()(torch.from_numpy(x.copy()))
    except Exception as exc:
      j.error(what, exc, "vmap")
      return
    j.compare(f"{what} is not {of}", x, expected, as_numpy(got), bound, dtype="float64")


def compiled(j: Judge, x: np.ndarray, mode: str) -> None:
  torch = import_torch()
  x32 = torch.from_numpy(x[:8].astype(np.float32))
  try:
    compiled = torch.compile(j.fn, fullgraph=True, backend=mode)
    y_c = compiled(x32)
    g_c = grad_of(compiled, x32, torch.ones_like(x32))
  except Exception as exc:
    j.error(f"torch.compile(fn, fullgraph=True, backend={mode!r})", exc, "jit")
    return
  finally:
    torch._dynamo.reset()  # the next candidate compiles afresh (and the cache does not grow)
  y_e, g_e = j.fn(x32.clone()), grad_of(j.fn, x32, torch.ones_like(x32))
  eps = tolerances.eps(np.float32)
  j.compare("torch.compile(fullgraph=True) forward differs from eager", x[:8], as_numpy(y_e), as_numpy(y_c), 0.0,
            dtype="float32")
  j.compare("torch.compile(fullgraph=True) gradient differs from eager", x[:8], as_numpy(g_e), as_numpy(g_c),
            tolerances.K_WIRING * eps * j.ctx.peak, dtype="float32",
            reason="same formula, fused code may round differently: a few float32 ulp of the peak")


def dtypes(j: Judge, x: np.ndarray) -> None:
  torch = import_torch()
  for name in DTYPES:
    want = getattr(torch, name)
    xt = torch.from_numpy(x[:8].copy()).to(want).requires_grad_(True)
    try:
      with torch.enable_grad():
        y = j.fn(xt)
        (g,) = torch.autograd.grad(y, xt, grad_outputs=torch.ones_like(y), allow_unused=True)
    except Exception as exc:
      j.fail(f"forward or gradient raised {describe(exc)} on a {name} input", dtype=name)
      continue
    if y.dtype != want:
      j.fail(f"the forward returns {str(y.dtype).removeprefix('torch.')} for a {name} input", dtype=name,
             got_dtype=str(y.dtype))
    if g is not None and g.dtype != want:
      j.fail(f"the gradient is {str(g.dtype).removeprefix('torch.')} for a {name} input", dtype=name,
             got_dtype=str(g.dtype))


def layouts(j: Judge, x: np.ndarray, ct: np.ndarray, g: np.ndarray, tol: np.ndarray) -> None:
  torch = import_torch()
  n = 16
  xs, cts = x[:n], ct[:n]
  h = as_numpy(j.fn(torch.from_numpy(xs.copy())).detach())
  try:
    # Every other element of a (n, 2) buffer: a non-contiguous view with stride 2.
    base = torch.from_numpy(np.stack([xs, -xs], axis=1).copy()).requires_grad_(True)
    view = base[:, 0]
    with torch.enable_grad():
      y = j.fn(view)
      (gb,) = torch.autograd.grad(y, base, grad_outputs=torch.from_numpy(cts.copy()), allow_unused=True)
    j.compare("forward of a non-contiguous view differs from the contiguous input", xs, h, as_numpy(y), 0.0)
    got = np.zeros(n) if gb is None else as_numpy(gb)[:, 0]
    j.compare("the VJP of a non-contiguous view differs from the contiguous input", xs, cts * g[:n], got, tol[:n])
    # A transposed matrix.
    m = torch.from_numpy(xs.reshape(4, 4).copy()).requires_grad_(True)
    with torch.enable_grad():
      yt = j.fn(m.t())
      (gm,) = torch.autograd.grad(yt, m, grad_outputs=torch.ones_like(yt), allow_unused=True)
    j.compare("the gradient of a transposed (non-contiguous) matrix differs", xs, g[:n],
              np.zeros(n) if gm is None else as_numpy(gm).reshape(-1), tol[:n])
    # An expanded scalar: stride 0, every element the same memory.
    x0 = torch.tensor(float(xs[0]), dtype=torch.float64).requires_grad_(True)
    with torch.enable_grad():
      ye = j.fn(x0.expand(5))
      (g0,) = torch.autograd.grad(ye, x0, grad_outputs=torch.from_numpy(cts[:5].copy()), allow_unused=True)
    j.compare("forward of an expanded input differs", np.repeat(xs[:1], 5), np.repeat(h[:1], 5), as_numpy(ye), 0.0)
    j.compare("the gradient through an expanded input is not Σct·g(x0)", xs[:1], [cts[:5].sum() * g[0]],
              [0.0 if g0 is None else float(g0)], 5 * tol[:1])
  except Exception as exc:
    j.fail(f"a non-contiguous or expanded input raised {describe(exc)}")


def prepare(ctx: Any) -> types.SimpleNamespace | Outcome:
  """What every torch form judges with (memoised per candidate): 64 float64 points x off the kinks, a
  random cotangent ct (rounded to the forward's output dtype), g at x, ``gfun`` (g at any points) and
  the wiring tolerance; a ``fail`` outcome where the forward or the gradient raises."""
  if "torch" in ctx.memo:
    return ctx.memo["torch"]
  torch = import_torch()
  fn = ctx.candidate.fn
  x = numerics.sample_points(ctx.length, ctx.reference.kinks(), 8 * ctx.step, n=64, seed=ctx.seed, span=4.0)
  x = x.astype(F64)
  ct = np.random.default_rng(ctx.seed + 1).normal(size=x.shape) * 2.0 + 0.5

  def gfun(v: np.ndarray) -> np.ndarray:
    ones = torch.ones(np.shape(v), dtype=torch.float64)
    return as_numpy(grad_of(fn, torch.from_numpy(np.asarray(v, F64).copy()), ones))

  try:
    g = gfun(x)
    out_dtype = fn(torch.from_numpy(x[:1].copy())).dtype
  except Exception as exc:
    out = failed(f"the VJP (torch.autograd.grad) raised {describe(exc)}", dtype="float64")
  else:
    # autograd casts the cotangent to the output's dtype: where the forward changes the dtype (the
    # autodiff check reports it), the VJP is judged with the cotangent as rounded to it.
    ct = as_numpy(torch.from_numpy(ct).to(out_dtype))
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
                       all_missing=j.missing)
  return passed(done, **detail)
