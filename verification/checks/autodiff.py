"""The autodiff check: reverse mode, as a training loop uses it (required).

Establishes, in float64 on points kept off the kinks: the VJP with a random cotangent is ct·g; the
primal outputs of ``jax.vjp`` and ``jax.value_and_grad`` are H; the VJP of 0-d to 3-d inputs (size-1
axes too) is the 1-d VJP elementwise; ``surrogate_grad``, where declared, is the spike function's g.

Tolerance: ``K_WIRING·eps(float64)·peak·(1 + |ct|)`` (:mod:`verification.core.tolerances`): the same
computation in the same dtype, only the final products round differently.

JAX form: :func:`check`. Torch form: :func:`check_torch`, with torch's own transforms
(:mod:`verification.checks._torch`).
"""

from __future__ import annotations

import math

import numpy as np

from verification.checks import _torch as T
from verification.checks._context import (
  F64,
  VJP_SHAPES,
  Comparisons,
  Context,
  cotangent,
  needs_jax,
  wiring_points,
  wiring_tolerance,
)
from verification.checks._jax import PIECES, run_eagerly, transformed
from verification.core import numerics, tolerances
from verification.core.evaluate import describe
from verification.results import Outcome, failed, passed, unsupported


def check(ctx: Context) -> Outcome:
  """Reverse mode as a training loop uses it (float64): the VJP with random cotangents is ct·g; the
  primal outputs of ``jax.vjp`` and ``jax.value_and_grad`` are H; the VJP of 0-d to 3-d inputs (size-1
  axes too) is the 1-d VJP elementwise; ``surrogate_grad`` is g."""
  if (skip := needs_jax(ctx)) is not None:
    return skip
  x = wiring_points(ctx, F64)
  ct = cotangent(ctx, x)
  out = transformed(ctx, "autodiff")
  if isinstance(out["vjp"], Exception):  # judge reverse mode even where jit is missing (the transforms check says so)
    eager = run_eagerly(ctx.candidate.fn, PIECES["autodiff"], ctx.memo["transform_args"]["autodiff"])
    out = eager if not isinstance(eager["vjp"], Exception) else out
  out["g"] = ctx.evaluator.evaluate(x, ("g",))["g"]
  if isinstance(out["g"], Exception):
    return failed(str(out["g"]), dtype="float64")
  g, H = out["g"].astype(F64), ctx.quantity(x, "H").astype(F64)
  tol = wiring_tolerance(ctx, F64, ct)
  c = Comparisons()
  extra = {"dtype": "float64"}
  vjp_value = None
  if isinstance(out["vjp"], Exception):
    c.note(f"the VJP with a random cotangent raised {describe(out['vjp'])}", **extra)
  else:
    primal, vjp_value = out["vjp"]
    c.compare("the VJP is not ct·g(x) for a random cotangent (the gradient ignores or misuses the cotangent)",
              x, ct * g, vjp_value, tol, **extra)
    c.compare("the primal output of jax.vjp is not H(x) (what a training loop sees as the spikes)", x, H, primal,
              0.0, **extra)
  if isinstance(out["value_and_grad"], Exception):
    c.note(f"jax.value_and_grad raised {describe(out['value_and_grad'])}", **extra)
  else:
    (_, spikes), grad = out["value_and_grad"]
    c.compare("the forward under jax.value_and_grad is not H(x)", x, H, spikes, 0.0, **extra)
    c.compare("jax.value_and_grad of sum(ct·fn(x)) is not ct·g(x)", x, ct * g, grad, tol, **extra)
  if isinstance(out["shapes"], Exception):
    c.note(f"the VJP of a multi-dimensional input raised {describe(out['shapes'])}", **extra)
  elif vjp_value is not None:
    for shape, got in zip(VJP_SHAPES, out["shapes"], strict=True):
      n = math.prod(shape)
      c.compare(f"the VJP of a {shape} input is not the 1-d VJP elementwise", x[:n], vjp_value[:n].reshape(shape),
                got, tol[:n].reshape(shape), shape=list(shape), **extra)
  if "sg" in ctx.evaluator.fns:
    c.compare("the spike function's gradient is not its surrogate_grad", x, ctx.quantity(x, "sg"), g, tol, **extra)
  return c.outcome("VJP = ct·g for random cotangents; jax.vjp and jax.value_and_grad give H as the primal; the VJP "
                   f"of shapes {', '.join(map(str, VJP_SHAPES))} is the 1-d one elementwise (float64)",
                   tolerance=f"{tolerances.K_WIRING:g}·eps·peak·(1 + |ct|)", dtype="float64")


def check_torch(ctx: Context) -> Outcome:
  """The torch form: VJP, forward mode, double backward, ``torch.func.vmap``, ``torch.compile``, dtypes and
  layouts with torch's own transforms (:mod:`verification.checks._torch`)."""
  torch = T.import_torch()
  j = T.Judge(ctx)
  margin = 8 * ctx.step
  x = numerics.sample_points(ctx.length, ctx.reference.kinks(), margin, n=64, seed=ctx.seed, span=4.0).astype(F64)
  ct = np.random.default_rng(ctx.seed + 1).normal(size=x.shape) * 2.0 + 0.5
  # Same computation in the same dtype, only the final product rounds differently: a few ulp.
  tol = tolerances.K_WIRING * tolerances.eps(F64) * ctx.peak * (1 + np.abs(ct))

  def gfun(v: np.ndarray) -> np.ndarray:
    ones = torch.ones(v.shape, dtype=torch.float64)
    return T.as_numpy(T.grad_of(j.fn, torch.from_numpy(np.asarray(v, F64).copy()), ones))

  try:
    g = gfun(x)
    out_dtype = j.fn(torch.from_numpy(x[:1].copy())).dtype
  except Exception as exc:
    return failed(f"the VJP (torch.autograd.grad) raised {T.describe(exc)}", dtype="float64")
  T.dtypes(j, x)
  # autograd casts the cotangent to the output's dtype: where the forward changes the dtype (reported
  # above), the VJP is judged with the cotangent as rounded to it.
  ct = T.as_numpy(torch.from_numpy(ct).to(out_dtype))
  T.vjp_and_mutation(j, x, ct, g, tol)
  T.forward_mode(j, x, ct, g, tol)
  T.second_order(j, x, gfun)
  T.vmap_grad(j, x, g, 4 * tol)
  T.layouts(j, x, ct, g, 4 * tol)
  mode = T.compile_mode()
  if mode:
    T.compiled(j, x, mode)
  missing = [m["capability"] for m in j.missing]
  if j.failures:
    first = j.failures[0]
    return failed(first["message"], **{k: v for k, v in first.items() if k != "message"},
                          all_failures=j.failures[:8], missing=missing)
  if j.missing:
    first = j.missing[0]
    return unsupported(first["capability"], first["message"], fix=first["fix"], missing=missing,
                               all_missing=j.missing)
  done = "VJP = ct·g, forward mode = g·t, double backward = g', vmap(grad) = g, " + \
      (f"torch.compile({mode}) = eager, " if mode else "") + "dtypes kept, non-contiguous and expanded inputs"
  return passed(done + " (float64)", tolerance=f"{tolerances.K_WIRING:g}·eps·peak·(1 + |ct|)")
