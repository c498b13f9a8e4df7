"""The edge check: H, g (the VJP), ``surrogate_grad``, P, dP and H'' are finite at every finite input
in every dtype, and g and P have their declared limits at ±inf.

Inputs: all 65,536 bit patterns of float16 and bfloat16 (the NaN patterns evaluated apart: the
specification exempts them, so what a candidate does there, raising included, is reported in
``nan_inputs`` and never fails it or hides its finite results); explicit extremes and hypothesis draws for
float32 and float64. ±inf is accepted where the exact value lies beyond the dtype's range. Limits: g
at ±inf against the declared ones, P up to its additive constant (P(±inf) - P(x0) against the
reference's at a point x0 off the kinks); tolerance ``K_LIMIT·eps(d)·(size + |scale|·Σ|θ·∂L/∂θ|)``, the
second term for the rounding of the parameters in the compute dtype.
"""

from __future__ import annotations

import math

import numpy as np

import surrogates
from verification.checks._context import F64, Context
from verification.checks._jax import lacks_second_order
from verification.core import numerics, tolerances
from verification.results import Outcome, failed, passed

#: The reference quantity that gives the exact value of each candidate quantity.
_REFERENCE_OF = {"g": "g", "sg": "g", "P": "P", "dP": "g", "d2H": "d2H"}


_EDGE_QUANTITIES = {"H": "H", "g": "g (the VJP)", "sg": "surrogate_grad", "P": "P",
                    "dP": "the autodiff derivative of P", "d2H": "the second derivative of H"}


def _edge_inputs(ctx: Context, dtype: np.dtype) -> list[np.ndarray]:
  if dtype.itemsize == 2:
    return [numerics.all_bit_patterns(dtype)]
  batches = [numerics.edge_values(dtype)]
  for values, width in numerics.hypothesis_draws(dtype.name, ctx.hypothesis_examples, ctx.seed):
    batches.append(values)
    batches.append((values.astype(F64) % (40 * ctx.length * width) - 20 * ctx.length * width).astype(dtype))
  return batches


def check(ctx: Context) -> Outcome:
  """H, g, VJP, P, dP and H'' finite at every finite input, every dtype; limits at ±inf as declared."""
  findings: list[dict] = []
  skipped_q = [f"{q}: {ctx.evaluator.unavailable_reason(q)}" for q in ("P", "dP", "d2H")
               if q not in ctx.evaluator.fns]
  limits = ctx.reference.limits()
  nan_inputs: list[dict] = []
  for dtype in ctx.dtypes:
    every = np.concatenate(_edge_inputs(ctx, dtype))
    nan_in = np.isnan(every.astype(F64))
    x = every[~nan_in]  # apart: a candidate that raises on NaN (anomaly mode, a validating library) keeps the rest
    out = ctx.evaluator.evaluate(x)
    if nan_in.any():
      nan_inputs += _nan_behaviour(ctx, every[nan_in], dtype, out)
    xf = x.astype(F64)
    finite_in = np.isfinite(xf)
    exact: dict[str, np.ndarray] = {}
    for q, values in out.items():
      if isinstance(values, Exception):
        if q == "d2H" and lacks_second_order(ctx, values, x[:4].astype(F64)):
          skipped_q.append(f"d2H ({dtype.name}): second order unsupported, see the second_order check")
        else:
          findings.append({"quantity": q, "dtype": dtype.name, "message": str(values)})
        continue
      v = values.astype(F64)
      bad = finite_in & ~np.isfinite(v)
      if bad.any() and q in _REFERENCE_OF:
        # ±inf is the correctly rounded value where the exact one lies beyond the dtype's range
        ref_q = _REFERENCE_OF[q]
        if ref_q not in exact:
          exact[ref_q] = ctx.ref(xf, ref_q)
        e = exact[ref_q]
        beyond = ~np.isfinite(e) | (np.abs(e) > tolerances.fmax(dtype))
        bad &= ~(beyond & np.isinf(v) & (np.sign(v) == np.sign(e)))
      if bad.any():
        mags = np.abs(xf[bad])
        i = int(np.argmin(np.where(bad, np.abs(xf), np.inf)))
        findings.append({"quantity": q, "dtype": dtype.name, "smallest_abs_input": float(mags.min()),
                         "worst_input": float(xf[i]), "got": float(v[i]), "failing_points": int(bad.sum()),
                         "message": f"{_EDGE_QUANTITIES[q]} is {v[i]} at x = {xf[i]:g} ({dtype.name}); first "
                                    f"non-finite at |x| = {mags.min():g}, {int(bad.sum())} inputs"})
    for (q, dname), message in sorted(ctx.evaluator.dtype_mismatches.items()):
      if dname == dtype.name and q != "H":  # H's dtype is the forward check's
        findings.append({"quantity": q, "dtype": dname, "message": message})
    if limits is not None and not ctx.reference.periodic:
      findings.extend(_limit_findings(ctx, dtype, limits))
  if findings:
    findings.sort(key=lambda f: f.get("smallest_abs_input", math.inf))
    first = {k: v for k, v in findings[0].items() if k != "message"}
    return failed(findings[0]["message"], **first, all_failures=findings[:16], not_checked=skipped_q,
                  nan_inputs=nan_inputs)
  what = "all 65,536 patterns for 16-bit types; explicit extremes and hypothesis draws for 32/64-bit"
  raised = [n for n in nan_inputs if "raised" in n]
  note = (f"; at NaN inputs (exempt: evaluated apart, not judged) in {raised[0]['dtype']}, {raised[0]['raised']}"
          if raised else "")
  return passed(f"finite at every finite input ({what}); limits at ±inf as declared{note}", not_checked=skipped_q,
                dtypes=[d.name for d in ctx.dtypes], nan_inputs=nan_inputs)


def _nan_behaviour(ctx: Context, x: np.ndarray, dtype: np.dtype, finite: dict) -> list[dict]:
  """What each quantity does at NaN inputs (the specification exempts them: recorded, not judged): raised
  (with the message; not where it raised at the finite inputs too), or how many outputs are not NaN."""
  notes = []
  for q, values in ctx.evaluator.evaluate(x).items():
    if isinstance(finite.get(q), Exception):
      continue
    if isinstance(values, Exception):
      notes.append({"quantity": q, "dtype": dtype.name, "inputs": int(x.size), "raised": str(values)[:300]})
    else:
      notes.append({"quantity": q, "dtype": dtype.name, "inputs": int(x.size),
                    "not_nan": int(np.sum(~np.isnan(np.asarray(values, F64))))})
  return notes


def _anchor(ctx: Context, dtype: np.dtype) -> float:
  """A point x0 off the kinks, exact in ``dtype``, where P's additive constant is read off."""
  margin = 8 * ctx.step
  for c in (0.37, -0.61, 1.3, -2.1, 3.7):
    x0 = float(np.asarray(c * ctx.length, F64).astype(dtype))
    if all(abs(x0 - k) >= margin for k in ctx.reference.kinks()):
      return x0
  return float(np.asarray(5.3 * ctx.length, F64).astype(dtype))


def _limit_condition(ref: surrogates.Surrogate) -> dict[str, tuple[float, float]]:
  """Per quantity and side, Σ_θ |θ·∂L/∂θ|: how far a limit L moves, per unit of relative rounding, when
  the parameters are rounded to the compute dtype (a correct candidate may compute (α+1)/(2(α-1)) in
  float32; at α = 1.0001 that alone moves P(±inf) by 1.7e-4 relative). Forward differences of the
  declared limits in float64 with a relative step of 1e-6 (accurate to ~1e-6 of the term, plenty for a
  tolerance)."""
  base = ref.limits()
  out = {"g": [0.0, 0.0], "P": [0.0, 0.0]}
  for name in type(ref).dynamic_parameters():
    theta = ref.params.get(name)
    if not isinstance(theta, int | float) or isinstance(theta, bool) or theta == 0:
      continue
    try:
      moved = type(ref)(**{**ref.params, name: theta * (1 + 1e-6)}).limits()
    except (ValueError, TypeError):
      continue
    for q, pair in (("g", (0, 1)), ("P", (2, 3))):
      for side, k in enumerate(pair):
        d = (moved[k] - base[k]) / 1e-6
        if math.isfinite(d):
          out[q][side] += abs(d)
  return {"g": tuple(out["g"]), "sg": tuple(out["g"]), "P": tuple(out["P"])}


def _limit_findings(ctx: Context, dtype: np.dtype, limits: surrogates.Limits) -> list[dict]:
  """g at ±inf against the declared limits; P up to its additive constant: P(±inf) - P(x0) against the
  reference's (× scale) at a point x0 off the kinks, so ``P + c`` is as correct as P."""
  x0 = _anchor(ctx, dtype)
  x = np.array([-np.inf, np.inf, x0], dtype)
  out = ctx.evaluator.evaluate(x, ("g", "sg", "P"))
  expected = {"g": (limits.g_minus, limits.g_plus), "sg": (limits.g_minus, limits.g_plus),
              "P": (limits.p_minus, limits.p_plus)}
  found = []
  limit_condition = _limit_condition(ctx.reference)
  for q, values in out.items():
    if isinstance(values, Exception):
      continue
    v = values.astype(F64)
    for i, side in enumerate(("-inf", "+inf")):
      want, got, size = ctx.scale * expected[q][i], float(v[i]), ctx.peak
      what = f"{_EDGE_QUANTITIES[q]} at x = {side}"
      if q == "P":
        # the candidate's own constant cancels; rounding of P(x0) and P(±inf) in the dtype adds to the bound
        own = float(v[2])
        want, got = want - float(ctx.ref(np.array([x0]), "P")[0]), got - own
        size = ctx.peak * ctx.length + abs(own) + (abs(float(v[i])) if math.isfinite(float(v[i])) else 0.0)
        what = f"P({side}) - P({x0:g})"
      tol = tolerances.K_LIMIT * tolerances.eps(dtype) * (max(size, abs(want) if math.isfinite(want) else 0)
                                                          + abs(ctx.scale) * limit_condition[q][i])
      ok = (got == want) if math.isinf(want) else (math.isfinite(got) and abs(got - want) <= tol)
      if not ok:
        want_r = float(np.asarray(want, F64).astype(dtype)) if math.isfinite(want) else want
        if math.isfinite(want_r) and math.isfinite(got) and abs(got - want_r) <= tol:
          continue
        found.append({"quantity": q, "dtype": dtype.name, "worst_input": float(x[i]), "expected": want, "got": got,
                      "tolerance": tol, "message": f"{what} is {got} ({dtype.name}); its limit is {want}"})
  return found

