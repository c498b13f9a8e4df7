"""The low_precision check: g and ``surrogate_grad`` in float16, bfloat16 and float32 against the
candidate's own float64 value at the same rounded input.

Tolerance: ``K_LOW_PRECISION[d]·eps(d)·(peak + |x·g'(x)|)`` (:mod:`verification.core.tolerances`):
rounding relative to the size of g, plus the condition of g under rounding of its argument (a fixed
multiple of eps fails a correct Fourier-series surrogate). Inputs within a few ulp of a jump of g are
excluded (their value is a convention, judged by the differential check).
"""

from __future__ import annotations

from verification.checks._context import F64, Context, low_precision_rows
from verification.results import Outcome, failed, passed, skipped


def check(ctx: Context) -> Outcome:
  """g (the VJP) and ``surrogate_grad``, in float16, bfloat16, float32, each against the candidate's own
  float64 value at the same rounded input."""
  dtypes = [d for d in ctx.dtypes if d != F64]
  if F64 not in ctx.dtypes and dtypes:
    return skipped("float64 is not among the selected dtypes: no float64 value to compare against")
  names = [q for q in ("g", "sg") if q in ctx.evaluator.fns]
  rows = [low_precision_rows(ctx, d, compare_to_reference=False, name=q) for q in names for d in dtypes]
  unstable = [r["nondeterministic"] for r in rows if "nondeterministic" in r]
  if unstable:  # the same verdict every run: not a comparison at a tolerance of values that change
    n = unstable[0]
    return failed(n["message"], **{k: v for k, v in n.items() if k != "message"}, per_dtype=rows)
  bad = [r for r in rows if r["failing_points"]]
  what = {"g": "g", "sg": "surrogate_grad"}
  if bad:
    r = bad[0]
    return failed(f"{what[r['quantity']]} in {r['dtype']} is {r['got']!r} at x = {r['worst_input']!r}, float64 "
                  f"gives {r['expected']!r} (tolerance {r['tolerance']:.3g})", **r, per_dtype=rows)
  return passed(f"{' and '.join(what[q] for q in names)} within the per-dtype tolerance of their float64 values in "
                + ", ".join(d.name for d in dtypes), per_dtype=rows)

