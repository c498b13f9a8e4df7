"""The derivative check: g (the gradient users get) against Richardson-extrapolated central
differences of ``surrogate_fun`` in float64.

Step h = 2^k ≈ 4e-3·width (exact x ± h), samples kept 8 steps from every declared kink (a stencil that
straddles a kink returns the mean of the one-sided slopes). Tolerance: 4·(the extrapolation's own
error estimate + rounding of P) + 1e-9·peak, plus the declared mismatch of the primitive where the
reference declares one. Skipped without a ``surrogate_fun``.
"""

from __future__ import annotations

import math

import numpy as np

from verification.checks._context import F64, Context, worst
from verification.core import numerics
from verification.results import Outcome, failed, passed, skipped


def check(ctx: Context) -> Outcome:
  """surrogate_grad (or the spike function's gradient) against Richardson differences of P, float64."""
  if "P" not in ctx.evaluator.fns:
    return skipped("no surrogate_fun: quadrature against the reference's primitive and the differential check "
                   "verify the gradient")
  h = ctx.step
  margin = 8 * h  # the widest stencil reaches 2h; stay 4 radii clear of each declared kink
  x = numerics.sample_points(ctx.length, ctx.reference.kinks(), margin, seed=ctx.seed)
  if ctx.reference.periodic:
    x = np.concatenate([x, numerics.away_from(np.linspace(-50, 50, 101) * ctx.reference.period() + 0.37 * h,
                                              ctx.reference.kinks(), margin)])
  P = lambda v: ctx.quantity(np.asarray(v, F64), "P").astype(F64)
  fd, est = numerics.richardson(P, x, h)
  g = ctx.quantity(x, ctx.gradient_name()).astype(F64)
  rtol = ctx.reference.primitive_rtol()
  tol = 4 * est + 1e-9 * ctx.peak + rtol * np.abs(g)
  d = worst(x, fd, g, tol, dtype="float64", step=h,
             reason=f"Richardson on central differences, h = 2^{int(math.log2(h))} ≈ 4e-3·width; tolerance = "
                    f"4·(|R(h) - R(2h)|/15 + 8·eps·|P|/h) + 1e-9·peak"
                    + (f" + {rtol:g}·|g| (declared mismatch of the primitive)" if rtol else ""))
  if d["failing_points"]:
    return failed(f"g is not the derivative of surrogate_fun at {d['failing_points']} of {d['points']} points", **d)
  return passed(f"g matches Richardson differences of P at {d['points']} points off the kinks", **d)

