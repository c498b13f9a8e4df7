"""A candidate's g and P next to the reference's, sampled for the reports' plots.

In the worker, after the checks: g (the VJP with cotangent 1) and P (if the candidate gives
``surrogate_fun``) of the candidate, and scale·g, scale·P of the reference, all in float64 on
:data:`POINTS` points spread evenly over ±8 widths (the reference's length scale) plus the kinks and
jumps inside that range, as a :class:`verification.results.Curve`. Only for plotting: nothing here
judges, and a failure only omits the curve.
"""

from __future__ import annotations

import numpy as np

from verification.results import Curve

POINTS = 256
SPAN = 8.0


def grid(length: float, kinks: tuple[float, ...] | list[float] = ()) -> np.ndarray:
  """POINTS float64 points evenly over [-SPAN·length, SPAN·length], and the kinks inside (sorted, unique)."""
  inside = [k for k in kinks if abs(k) <= SPAN * length]
  x = np.linspace(-SPAN * length, SPAN * length, POINTS)
  return np.unique(np.concatenate([x, np.asarray(inside, np.float64)]))


def _values(evaluator, x: np.ndarray, quantity: str, factor: float = 1.0) -> tuple[float | None, ...]:
  if quantity not in evaluator.fns:
    return ()
  out = evaluator.evaluate(x, (quantity,))[quantity]
  if isinstance(out, Exception):
    return ()
  v = factor * np.asarray(out, np.float64)
  return tuple(float(t) if np.isfinite(t) else None for t in v)


def sample(ctx) -> Curve:
  """The curve of the candidate in a checks' ``Context`` (its evaluators are reused: no new compilation)."""
  ref = ctx.reference
  x = grid(ref.length_scale(), tuple(ref.kinks()) + tuple(ref.jumps()))
  ref_eval = ctx.ref_eval
  return Curve(x=tuple(float(t) for t in x), g=_values(ctx.evaluator, x, "g"),
               reference_g=_values(ref_eval, x, "g", ctx.scale), P=_values(ctx.evaluator, x, "P"),
               reference_P=_values(ref_eval, x, "P", ctx.scale))
