"""The differential check (targets only): the gradient against the reference × the candidate's
``scale``, per dtype, on a grid (all 16-bit patterns within ±16 widths) and random points.

Tolerance: ``K_DIFFERENTIAL[d]·eps(d)·(peak + |x·g'(x)|)``, as in the low_precision check. The value of
g at a jump of the reference is a ``convention`` where it differs. Skipped for the reference itself and
for candidates that carry their own declaration.
"""

from __future__ import annotations

import math

import numpy as np

from verification.checks._context import F64, Context, low_precision_rows
from verification.results import Outcome, convention, failed, passed, skipped


def check(ctx: Context) -> Outcome:
  """Forward and gradient against the reference (× scale), grid and hypothesis points, per dtype."""
  if ctx.is_reference:
    return skipped("the candidate is the reference")
  if ctx.candidate.surrogate is not None:
    return skipped("no reference: the candidate carries its own declaration")
  rows = [low_precision_rows(ctx, d, compare_to_reference=True) for d in ctx.dtypes]
  kink_values = _kink_conventions(ctx)
  unstable = [r["nondeterministic"] for r in rows if "nondeterministic" in r]
  if unstable:  # the same verdict every run: not a comparison at a tolerance of values that change
    n = unstable[0]
    return failed(n["message"], **{k: v for k, v in n.items() if k != "message"}, per_dtype=rows, kinks=kink_values)
  bad = [r for r in rows if r["failing_points"]]
  if bad:
    r = bad[0]
    ratio = r["got"] / r["expected"] if r["expected"] else math.nan
    return failed(f"g differs from the reference × {ctx.scale:g} in {r['dtype']}: at x = {r['worst_input']!r} "
                  f"expected {r['expected']!r}, got {r['got']!r} (ratio {ratio:.6g}, tolerance "
                  f"{r['tolerance']:.3g})", **r, per_dtype=rows, kinks=kink_values)
  conv = [k for k in kink_values if not k["agrees"]]
  if conv:
    k = conv[0]
    return convention(f"matches the reference × {ctx.scale:g}; convention at the jump x = {k['x']:g}: g = "
                      f"{k['got']:g} (reference {k['expected']:g})", per_dtype=rows, kinks=kink_values)
  return passed(f"matches the reference × {ctx.scale:g} in " + ", ".join(d.name for d in ctx.dtypes),
                per_dtype=rows, kinks=kink_values)


def _kink_conventions(ctx: Context) -> list[dict]:
  jumps = np.array(ctx.reference.jumps(), F64)
  if not jumps.size:
    return []
  got = ctx.quantity(jumps, ctx.gradient_name()).astype(F64)
  want = ctx.ref(jumps, "g")
  return [{"x": float(x), "got": float(a), "expected": float(b), "agrees": bool(abs(a - b) <= 1e-12 * ctx.peak)}
          for x, a, b in zip(jumps, got, want, strict=True)]

