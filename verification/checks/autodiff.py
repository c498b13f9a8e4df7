"""The autodiff check: reverse mode, as a training loop uses it (required).

Establishes, in float64 on points kept off the kinks: the VJP with a random cotangent is ct·g; the
primal outputs of ``jax.vjp`` and ``jax.value_and_grad`` are H; the VJP of 1-d to 5-d inputs (size-1
axes, and (N, C, H, W), (N, H, W, C), (T, B, C, H, W) with every axis longer than 1) is the 1-d VJP
elementwise; a training loop (several calls on different inputs, one backward of their sum) gives each
step ct·g at its own input; ``surrogate_grad``, where declared, is the spike function's g. And a float32
input of more than 2^20 elements gives the spikes and gradient of the same values evaluated as a small
block (:mod:`verification.checks._training`).

Tolerance: ``K_WIRING·eps(float64)·peak·(1 + |ct|)`` (:mod:`verification.core.tolerances`): the same
computation in the same dtype, only the final products round differently.

JAX form: :func:`check`. Torch form: :func:`check_torch`, with torch's own autograd
(:mod:`verification.checks._torch`); forward mode, second order and the transforms of a torch
candidate are judged by the checks of those names, as for JAX. NumPy-bridged candidates:
:func:`check_numpy` (their ``vjp`` with a random cotangent, and ``surrogate_grad``).
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np

from verification.checks import _torch as T
from verification.checks._context import (
  F64,
  STEPS,
  VJP_SHAPES,
  Comparisons,
  Context,
  cotangent,
  needs_jax,
  repeatability,
  wiring_points,
  wiring_tolerance,
)
from verification.checks._jax import run_eagerly, transformed
from verification.checks._training import LARGE, compare_loop, large_input, torch_loop
from verification.core import tolerances
from verification.core.evaluate import describe
from verification.core.tape import recorded
from verification.results import Outcome, failed


def check(ctx: Context) -> Outcome:
  """Reverse mode as a training loop uses it (float64): the VJP with random cotangents is ct·g; the
  primal outputs of ``jax.vjp`` and ``jax.value_and_grad`` are H; the VJP of 0-d to 3-d inputs (size-1
  axes too) is the 1-d VJP elementwise; ``surrogate_grad`` is g."""
  if ctx.candidate.backend == "numpy":
    return check_numpy(ctx)
  if (skip := needs_jax(ctx)) is not None:
    return skip
  x = wiring_points(ctx, F64)
  ct = cotangent(ctx, x)
  out = transformed(ctx, "autodiff")
  if isinstance(out["vjp"], Exception):  # judge reverse mode even where jit is missing (the transforms check says so)
    eager = run_eagerly(ctx, "autodiff", ctx.memo["transform_args"]["autodiff"])
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
      c.compare(f"the VJP of a {shape} input is not the 1-d VJP elementwise", np.resize(x, n),
                np.resize(vjp_value, n).reshape(shape), got, np.resize(tol, n).reshape(shape), shape=list(shape),
                **extra)
  for piece, what in (("scan", f"lax.scan over {STEPS} steps"),):
    if isinstance(out[piece], Exception):
      c.note(f"the gradient through {what} raised {describe(out[piece])}", **extra)
    else:
      compare_loop(ctx, c, x, g, ct, f"the gradient through {what}", out[piece], **extra)
  large_input(ctx, c)
  _repeatable(ctx, c, x)
  _surrogate_grad(ctx, c.compare, x, g, tol)
  return c.outcome("VJP = ct·g for random cotangents; jax.vjp and jax.value_and_grad give H as the primal; the VJP "
                   f"of shapes {', '.join(map(str, VJP_SHAPES))} is the 1-d one elementwise; a training loop of "
                   f"{STEPS} calls (lax.scan) gives each step ct·g at its own input (float64); a "
                   f"{LARGE:,}-element float32 input = the same values as a block",
                   tolerance=f"{tolerances.K_WIRING:g}·eps·peak·(1 + |ct|)", dtype="float64")


def check_torch(ctx: Context) -> Outcome:
  """The torch form, reverse mode with torch's own autograd: the VJP with a random cotangent is ct·g; the
  forward and gradient keep float16, bfloat16, float32 and float64; non-contiguous and expanded inputs
  give the contiguous values; nothing is modified in place; ``surrogate_grad`` is g."""
  prep = T.prepare(ctx)
  if not isinstance(prep, SimpleNamespace):
    return prep
  x, ct, g, tol = prep.x, prep.ct, prep.g, prep.tol
  j = T.Judge(ctx)
  T.dtypes(j, x)
  T.vjp_and_mutation(j, x, ct, g, tol)
  T.layouts(j, x, ct, g, 4 * tol)
  T.shapes(j, x, ct, g)
  torch_loop(ctx, j, x, ct, g)
  large_input(ctx, j)
  _repeatable(ctx, j, x)
  _surrogate_grad(ctx, j.compare, x, g, T.TOLERANCE)
  return T.outcome(j, "VJP = ct·g for random cotangents (torch.autograd.grad); dtypes kept; non-contiguous, "
                   f"expanded, 4-d (channels_last too), 5-d, permuted and step-sliced inputs; a training loop of "
                   f"{STEPS} calls, the graph retained, twice; a {LARGE:,}-element input = the same values as a "
                   "block; no in-place writes" + (", surrogate_grad = g" if _declares_sg(ctx) else "")
                   + " (float64)", tolerance=T.TOLERANCE)


def check_numpy(ctx: Context) -> Outcome:
  """The form for a NumPy-bridged candidate (its own ``forward`` and ``vjp``, no transforms to judge):
  ``vjp(x, ct)`` is ct·g for a random cotangent (g = ``vjp(x, 1)``) and ``surrogate_grad`` is g."""
  x = wiring_points(ctx, F64)
  ct = cotangent(ctx, x)
  g = ctx.quantity(x, "g").astype(F64)
  tol = wiring_tolerance(ctx, F64, ct)
  c = Comparisons()
  try:
    got = _numpy_vjp(ctx, x, ct)
  except Exception as exc:
    return failed(f"vjp(x, ct) with a random cotangent raised {describe(exc)}", dtype="float64")
  c.compare("vjp(x, ct) is not ct·g(x) for a random cotangent (the gradient ignores or misuses the cotangent)",
            x, ct * g, got, tol, dtype="float64")
  _surrogate_grad(ctx, c.compare, x, g, tol)
  large_input(ctx, c)
  _repeatable(ctx, c, x)
  return c.outcome(f"vjp(x, ct) = ct·g for random cotangents; a {LARGE:,}-element input = the same values as a "
                   "block" + (", surrogate_grad = g" if _declares_sg(ctx) else "")
                   + " (float64; the candidate's own forward and vjp: no transforms to judge)",
                   tolerance=f"{tolerances.K_WIRING:g}·eps·peak·(1 + |ct|)", dtype="float64")


@recorded
def _numpy_vjp(ctx: Context, x: np.ndarray, ct: np.ndarray) -> np.ndarray:
  return np.asarray(ctx.candidate.vjp(x, ct), F64)


def _repeatable(ctx: Context, c: Any, x: np.ndarray) -> None:
  """Repeatability: g at the same inputs, computed twice, is bit-identical (else a failure with the spread)."""
  first = ctx.evaluator.evaluate(x, ("g",))["g"]
  if isinstance(first, Exception):
    return
  found = repeatability(ctx, x, "g", first)
  if found is not None:
    c.note(found.pop("message"), **found)


def _declares_sg(ctx: Context) -> bool:
  return ctx.candidate.surrogate_grad is not None


def _surrogate_grad(ctx: Context, compare, x: np.ndarray, g: np.ndarray, tol) -> None:
  """``surrogate_grad``, where declared, against the spike function's g (what training uses)."""
  if not _declares_sg(ctx):
    return
  if isinstance(tol, str):
    tol = wiring_tolerance(ctx, F64, np.zeros_like(x))
  try:
    sg = ctx.quantity(x, "sg").astype(F64)
  except Exception as exc:
    compare(f"surrogate_grad raised {describe(exc)}", x, g, np.full_like(x, np.nan), tol, dtype="float64")
    return
  compare("the spike function's gradient is not its surrogate_grad", x, sg, g, tol, dtype="float64",
          quantity="surrogate_grad")
