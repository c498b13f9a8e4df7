"""The quadrature check: ∫_a^b g = P(b) - P(a) on five intervals, and the total mass.

Integration: adaptive 21-point Gauss–Kronrod (QUADPACK's rule and error estimate, vectorised), kinks as
breakpoints, at most :data:`~verification.core.numerics.MAX_EVALS` evaluations of g per integral (a g
rough everywhere fails, saying so, rather than being evaluated at millions of points). Tolerance: 10·the
quadrature's error estimate + (1e-10 + 4·declared mismatch of the primitive)·(peak·(b - a) + peak·width
+ |P(a)| + |P(b)|). The total mass is compared with the declared
one only after both tails are seen to decay (|g| at 10⁶·cut below 10⁻⁶·peak and falling faster than
1/|x|); P is the candidate's ``surrogate_fun`` or, without one, the reference's × scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from verification.checks._context import Context, reference_evaluator
from verification.core import numerics
from verification.results import Outcome, failed, passed


def check(ctx: Context) -> Outcome:
  """∫_a^b g = P(b) - P(a) (scipy.integrate.quad, kinks as breakpoints); total mass vs declared."""
  try:
    return _check(ctx)
  except numerics.QuadratureLimit as exc:  # bounded: the record of g's values stays small whatever g is
    return failed(f"∫g cannot be computed to the check's accuracy: {exc}; g is rough everywhere (a step function "
                  "at some resolution, noise) between the declared kinks, where the reference is smooth",
                  evaluations=numerics.MAX_EVALS, reason="adaptive Gauss–Kronrod with a bound on evaluations of g")


def _check(ctx: Context) -> Outcome:
  ev = ctx.evaluator
  L = ctx.length
  own_p = ev.scalar_p
  if own_p is not None:
    P, source = own_p, "the candidate's surrogate_fun"
  else:
    ref_p = reference_evaluator(ctx.reference).scalar_p
    P, source = (lambda t: ctx.scale * ref_p(t)), "the reference's primitive × scale"
  g = ev.scalar_g
  kinks = sorted(set(ctx.reference.kinks()) | {0.0})
  if ctx.reference.periodic:
    T = ctx.reference.period()
    intervals = [(-T / 3, T / 5), (0.0, T), (-T, 0.4 * T), (0.1 * T, 2.7 * T)]
    kinks = sorted(set(kinks) | {k * T / 2 for k in range(-8, 9)})
  else:
    intervals = [(-L, L), (-4 * L, 0.5 * L), (0.3 * L, 3 * L), (-12 * L, 12 * L), (-40 * L, -2 * L)]
  rtol = ctx.reference.primitive_rtol()
  rows = []
  for a, b in intervals:
    value, err = numerics.integrate_between(g, a, b, kinks)
    expected = P(b) - P(a)
    size = ctx.peak * (b - a) + ctx.peak * L + abs(P(a)) + abs(P(b))
    tol = 10 * err + (1e-10 + 4 * rtol) * size
    rows.append({"interval": [a, b], "integral": value, "expected": expected, "error": abs(value - expected),
                 "tolerance": tol, "ok": bool(abs(value - expected) <= tol)})
  bad = [r for r in rows if not r["ok"]]
  mass_row = _mass(ctx, g, kinks)
  detail = {"primitive": source, "intervals": rows, "mass": mass_row,
            "reason": "tolerance = 10·quad's error estimate + (1e-10 + 4·declared primitive mismatch)·"
                      "(peak·(b-a) + peak·width + |P(a)| + |P(b)|)"}
  if bad:
    r = bad[0]
    return failed(f"∫g over [{r['interval'][0]:g}, {r['interval'][1]:g}] = {r['integral']:.12g} but "
                  f"P(b) - P(a) = {r['expected']:.12g} ({source})", worst_input=r["interval"][1],
                  expected=r["expected"], got=r["integral"], tolerance=r["tolerance"], **detail)
  if mass_row.get("ok") is False:
    return failed(mass_row["message"], worst_input=None, expected=mass_row.get("expected"),
                  got=mass_row.get("got"), tolerance=mass_row.get("tolerance"), **detail)
  return passed(f"∫g = ΔP on {len(rows)} intervals; {mass_row['message']}", **detail)


def _mass(ctx: Context, g: Callable[[float], float], kinks: list[float]) -> dict[str, Any]:
  declared = ctx.reference.mass() * ctx.scale
  if ctx.reference.periodic:
    return {"message": "periodic: no total mass", "declared": "periodic"}
  L = ctx.length
  cut = 50 * L + max((abs(k) for k in kinks), default=0.0)
  if math.isnan(declared):
    return {"message": "mass undefined (tails of opposite sign): not checked", "declared": None}
  if math.isinf(declared):
    inner, _ = numerics.integrate_between(g, -cut, cut, kinks)
    outer, _ = numerics.integrate_between(g, -10 * cut, 10 * cut, kinks)
    ok = math.copysign(1, declared) * (outer - inner) > 1e-6 * max(1.0, abs(inner))
    return {"message": f"declared infinite; ∫ over ±{cut:g} = {inner:.6g}, over ±{10 * cut:g} = {outer:.6g}",
            "declared": declared, "ok": ok, "expected": declared, "got": outer, "tolerance": None}
  problem = _tail_problem(ctx, g, cut)
  if problem:
    return {"message": f"the declared total mass {declared:.12g} is finite, but {problem}: ∫g over the real line "
                       "is not a number (quadrature over an infinite range would return a finite, wrong value)",
            "declared": declared, "got": None, "expected": declared, "tolerance": None, "ok": False}
  value, err = numerics.integrate_real_line(g, cut, kinks)
  tol = 10 * err + 1e-8 * abs(declared) + 1e-12
  ok = abs(value - declared) <= tol
  return {"message": f"mass {value:.12g} vs declared {declared:.12g}" if ok else
          f"total mass ∫g = {value:.12g} differs from the declared {declared:.12g}",
          "declared": declared, "got": value, "expected": declared, "tolerance": tol, "ok": ok}


#: A tail decays when |g| at R = TAIL_REACH·cut is below TAIL_FRACTION of the peak and falls faster
#: than 1/|x| from R/10 to R (local power > 1 + TAIL_POWER_MARGIN): then ∫ beyond R is finite.
TAIL_REACH, TAIL_FRACTION, TAIL_POWER_MARGIN = 1e6, 1e-6, 1e-6


def _tail_problem(ctx: Context, g: Callable[[float], float], cut: float) -> str | None:
  """Why g has no finite total mass (a tail that does not decay), or None where both tails decay."""
  R = TAIL_REACH * cut
  for side in (-1.0, 1.0):
    near, far = abs(g(side * R / 10)), abs(g(side * R))
    if not (math.isfinite(near) and math.isfinite(far)):
      return f"g is {g(side * R / 10)} at x = {side * R / 10:g} and {g(side * R)} at x = {side * R:g}"
    if far > TAIL_FRACTION * ctx.peak:
      return (f"g does not decay: |g({side * R:g})| = {far:.6g} is above {TAIL_FRACTION:g}·peak = "
              f"{TAIL_FRACTION * ctx.peak:.6g}")
    if far > 0 and near > 0 and math.log10(near / far) <= 1 + TAIL_POWER_MARGIN:
      return (f"g falls no faster than 1/|x| towards {'-' if side < 0 else '+'}inf (|g| = {near:.6g} at "
              f"x = {side * R / 10:g}, {far:.6g} at x = {side * R:g})")
  return None

