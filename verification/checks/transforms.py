"""The transforms check (capabilities jit and vmap), in one dtype (float32 where selected).

Establishes: the compiled forward and VJP equal the eager ones (both signs, ±0, the kinks and either
side of them); ``vmap(fn)``, ``jit(vmap(fn))`` and vmap over the leading axis of a 2-d input equal fn;
``vmap(grad(fn))`` equals g.

Tolerance: H exact; the VJP ``K_TRANSFORM·eps·peak·(1 + |ct|)`` (compiled and eager code may fuse
differently). A missing batching rule or lowering is ``unsupported``; a wrong one is a ``fail``.

Torch form (:func:`check_torch`, float64 for vmap, float32 for compile): ``torch.func.vmap(fn)`` = fn,
``torch.func.vmap(torch.func.grad(fn))`` = g, and ``torch.compile(fn, fullgraph=True)`` = eager for the
forward and the gradient (``SURROGATE_TORCH_COMPILE`` selects the backend or turns it off). The fix of
a missing vmap names the mechanism's own (``setup_context``/``generate_vmap_rule`` for an
``autograd.Function``, ``torch.library.register_vmap`` for a custom op).
"""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np

from verification.checks import _torch as T
from verification.checks._context import Comparisons, Context, cotangent, needs_jax, wiring_tolerance
from verification.checks._jax import raised, transform_dtype, transform_points, transformed
from verification.core import tolerances
from verification.core.evaluate import describe
from verification.core.tape import recorded
from verification.results import Outcome, failed, passed


def check(ctx: Context) -> Outcome:
  """jit and vmap (capabilities): the compiled forward and VJP equal the eager ones (both signs, ±0,
  the kinks); ``vmap(fn)``, ``jit(vmap(fn))`` and ``vmap`` over the leading axis of a 2-d input equal
  fn; ``vmap(grad(fn))`` equals g. In one dtype (float32 where selected)."""
  if (skip := needs_jax(ctx)) is not None:
    return skip
  c = Comparisons()
  gaps: list[Outcome] = []
  dtype = transform_dtype(ctx)
  x = transform_points(ctx, dtype)
  ct = cotangent(ctx, x)
  extra = {"dtype": dtype.name}
  try:
    eager_h, eager_vjp = _eager(ctx, x, ct)
  except Exception as exc:
    return failed(f"the eager (uncompiled) spike function or its VJP raised {describe(exc)}", **extra)
  out = dict(transformed(ctx, "transforms"))
  if isinstance(out["vjp"], Exception):
    gap = raised(ctx, "jit", "jit", out["vjp"], x)
    return failed(gap.diagnosis.message, **extra) if gap.status.failing else gap
  out["H"] = ctx.quantity(x, "H")  # the evaluator's compiled forward
  tol = wiring_tolerance(ctx, dtype, ct, tolerances.K_TRANSFORM)
  c.compare("jit(fn) differs from the eager fn (its compiled lowering and eager implementation disagree)",
            x, eager_h, out["H"], 0.0, **extra)
  c.compare("the compiled VJP differs from the eager VJP", x, eager_vjp, out["vjp"], tol, **extra)
  out["eager_vmap"] = _eager_vmap(ctx, x)
  checks = (("vmap", "jit(vmap(fn))", out["H"]), ("eager_vmap", "vmap(fn)", eager_h),
            ("vmap_2d", "vmap(fn) over the leading axis of a 2-d input", out["H"].reshape(8, -1)),
            ("vmap_grad", "vmap(grad(fn))", ctx.quantity(x, "g")))
  for key, what, expected in checks:
    if isinstance(out[key], Exception):
      gap = raised(ctx, "vmap", what, out[key], x)
      if gap.status.failing:
        c.note(gap.diagnosis.message, **extra)
      else:
        gaps.append(gap)
    elif key == "vmap_grad":
      c.compare(f"{what} is not g", x, expected, out[key], tol, **extra)
    else:
      c.compare(f"{what} differs from fn (a wrong batching rule)", x, expected, out[key], 0.0, **extra)
  if c.failures:
    return c.outcome("")
  if gaps:
    return gaps[0]
  return passed("jit = eager for H and the VJP; vmap(fn), jit(vmap(fn)), vmap over a 2-d leading axis = fn; "
                f"vmap(grad) = g ({dtype.name})",
                tolerance=f"H exact; VJP {tolerances.K_TRANSFORM:g}·eps·peak·(1 + |ct|)")



@recorded
def _eager(ctx: Context, x: np.ndarray, ct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The spike function and its VJP, uncompiled."""
  fn, xj = ctx.candidate.fn, jnp.asarray(x)
  return np.asarray(fn(xj)), np.asarray(jax.vjp(fn, xj)[1](jnp.asarray(ct))[0])


@recorded
def _eager_vmap(ctx: Context, x: np.ndarray) -> np.ndarray | Exception:
  try:
    return np.asarray(jax.vmap(ctx.candidate.fn)(jnp.asarray(x)))
  except Exception as exc:
    return exc


def check_torch(ctx: Context) -> Outcome:
  """The torch form: ``torch.func.vmap(fn)`` = fn and ``vmap(grad(fn))`` = g (float64);
  ``torch.compile(fn, fullgraph=True)`` = eager, forward and gradient (float32)."""
  prep = T.prepare(ctx)
  if not isinstance(prep, SimpleNamespace):
    return prep
  j = T.Judge(ctx)
  T.vmap_grad(j, prep.x, prep.g, 4 * prep.tol)
  mode = T.compile_mode()
  if mode:
    T.compiled(j, prep.x, mode)
  return T.outcome(j, "torch.func.vmap(fn) = fn, vmap(grad(fn)) = g (float64)"
                   + (f"; torch.compile(fullgraph=True, backend={mode!r}) = eager (float32)" if mode else
                      "; torch.compile turned off (SURROGATE_TORCH_COMPILE=0)"),
                   tolerance=f"vmap(fn) exact; vmap(grad) 4·{T.TOLERANCE}")
