"""The second_order check (a capability): the derivative of the VJP, d/dx g, equals central
differences of g off the kinks, in float64.

Tolerance: ``4·est + 1e-4·peak/width + 1e-4·|g'|``, where est is the error estimate of Richardson-extrapolated
central differences of the candidate's own g at h ≈ 4e-3·width (O(h⁴): also where the candidate's g is
narrower than the reference's, whose width sets h). ``jax.custom_vjp`` promises no second derivative: where grad of
grad through its bwd rule is not g' the result is ``unsupported``, not a defect.
"""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np

from verification.checks import _torch as T
from verification.checks._context import F64, G_SLOPE_REASON, Comparisons, Context, g_slope, needs_jax, wiring_points
from verification.checks._jax import FIXES, built_with_custom_vjp, elementwise_grad, raised
from verification.core.tape import recorded
from verification.results import Outcome, failed, unsupported


def check(ctx: Context) -> Outcome:
  """Second order (a capability): the derivative of the VJP, d/dx g, equals central differences of g
  off the kinks (float64)."""
  if (skip := needs_jax(ctx)) is not None:
    return skip
  x = wiring_points(ctx, F64)
  second = ctx.evaluator.evaluate(x, ("d2H",))["d2H"]
  if isinstance(second, Exception):
    exc = _second_order_error(ctx, x)  # the evaluator keeps a message; the exception says whether the rule is missing
    if exc is not None:
      return raised(ctx, "second", "second order (grad of grad)", exc, x)
    return failed(str(second), dtype="float64")
  fd, tol = g_slope(ctx, lambda v: ctx.quantity(np.asarray(v, F64), "g").astype(F64), x)
  reason = G_SLOPE_REASON
  c = Comparisons()
  c.compare("the second derivative of the spike function is not g'(x)", x, fd, second, tol, dtype="float64",
            reason=reason)
  if c.failures and built_with_custom_vjp(ctx, x):
    # The specification: jax.custom_vjp (and custom_gradient, built on it) has no second derivative.
    # Reverse over reverse still runs, through the bwd rule; right numbers pass, others are the gap.
    worst = {k: v for k, v in c.failures[0].items() if k != "message"}
    return unsupported("second", "second order unsupported: built with jax.custom_vjp, which does not promise "
                       "one (grad of grad differentiates its bwd rule, and here that is not g'(x))",
                       fix=FIXES["second"], mechanism="custom_vjp", **worst)
  return c.outcome("d/dx g = central differences of g off the kinks (float64)", dtype="float64", reason=reason)



@recorded
def _second_order_error(ctx: Context, x: np.ndarray) -> Exception | None:
  """What grad of grad of the spike function raises at x (None where it does not)."""
  try:
    jax.jit(elementwise_grad(elementwise_grad(ctx.candidate.fn)))(jnp.asarray(x))
  except Exception as exc:
    return exc
  return None


def check_torch(ctx: Context) -> Outcome:
  """The torch form: double backward (``create_graph=True``) equals central differences of g off the kinks
  (float64); no graph behind the gradient is g' = 0."""
  prep = T.prepare(ctx)
  if not isinstance(prep, SimpleNamespace):
    return prep
  j = T.Judge(ctx)
  T.second_order(j, prep.x, prep.gfun)
  return T.outcome(j, "double backward = central differences of g off the kinks (float64)", dtype="float64",
                   reason=G_SLOPE_REASON)
