"""The forward check: the spike function is exactly H(x) in every dtype and keeps the input's shape.

Establishes: H(x) = 1 for x >= 0 (both zeros), 0 for x < 0, at 0, -0.0, ±tiny, ±subnormal, ±eps, ±max,
±inf and random values, in float16, bfloat16, float32 and float64, with the input's dtype; the shapes
of :data:`~verification.checks._context.SHAPES` (0-d, size-1 axes, 2-d, 3-d, and 4-d and 5-d with every
axis longer than 1) kept. Where it fails, the input reported is the decisive one: a nonzero input that the
platform does not flush (H(tiny) = 0 proves a defect where H(0) = 0 alone reads as the x > 0 convention).

Tolerance: none (H is exact). Subnormal inputs are judged as the platform sees them in compiled code
(flushed to a signed zero where it flushes). H(±0) = 0 (``x > 0``) is a ``convention``; H(+0) = 1
with H(-0) = 0 is a sign-bit defect. A library called at v = x + θ is judged at the input it receives.
"""

from __future__ import annotations

import jax
import numpy as np

from verification.checks._context import F64, SHAPES, Context, flushed, forward_inputs, shaped, shapes_dtype
from verification.checks._jax import transformed
from verification.core.evaluate import CandidateError, describe
from verification.core.tape import recorded
from verification.results import Outcome, convention, failed, passed


def _call_forward_shapes(ctx: Context, x: np.ndarray) -> list[np.ndarray | Exception]:
  """The forward at each of :data:`SHAPES` (in the transformed program: no compilation of its own)."""
  if ctx.candidate.backend == "jax":
    out = transformed(ctx, "forward")["shapes"]
    if not isinstance(out, Exception):
      return list(out)
  return _forward_each(ctx, shaped(x))


@recorded
def _forward_each(ctx: Context, xs: list[np.ndarray]) -> list[np.ndarray | Exception]:
  """The forward at each input on its own (names the shape that fails)."""
  c = ctx.candidate
  out: list[np.ndarray | Exception] = []
  for v in xs:
    try:
      out.append(np.asarray(jax.jit(c.fn)(v) if c.backend == "jax" else c.forward(v)))
    except Exception as exc:
      out.append(CandidateError(f"the spike function raised {describe(exc)} on a {v.dtype} input of shape "
                                f"{v.shape}"))
  return out


def check(ctx: Context) -> Outcome:
  """H exact at 0, -0.0, ±tiny, ±subnormal, ±huge, ±inf and random values; dtype and shape kept.

  H(x) = 1 for x >= 0 (both zeros), 0 for x < 0. The ``x > 0`` convention (H(±0) = 0) is a
  ``convention`` outcome only when both zeros give 0; H(+0) = 1 with H(-0) = 0 is a sign-bit defect.
  """
  problems, conventions = [], []
  shapes_in = shapes_dtype(ctx)
  received = ctx.candidate.received  # x itself, or what a library called at v = x + θ receives
  for dtype in ctx.dtypes:
    x = forward_inputs(ctx, dtype)
    xf = received(x)
    exact = np.where(np.signbit(xf) & (xf != 0), 0.0, 1.0)
    seen = received(flushed(x, dtype).astype(dtype))
    as_flushed = np.where(np.signbit(seen) & (seen != 0), 0.0, 1.0)
    # 1-d through the evaluator (its compiled bundle); the other shapes in one compilation.
    one_d = ctx.evaluator.evaluate(x, ("H",))["H"]
    calls = [(x, one_d)]
    if dtype == shapes_in:  # shape handling does not depend on the dtype: one compilation
      calls += zip(shaped(x), _call_forward_shapes(ctx, x), strict=True)
    zeros: list[dict] = []
    mismatch = ctx.evaluator.dtype_mismatches.get(("H", dtype.name))
    if mismatch:
      problems.append({"dtype": dtype.name, "message": mismatch})
    for xs, out in calls:
      if isinstance(out, Exception):
        problems.append({"dtype": dtype.name, "message": str(out)})
        continue
      if out.shape != np.shape(xs) or out.dtype != dtype:
        problems.append({"dtype": dtype.name, "message": f"returned shape {out.shape} dtype {out.dtype} "
                         f"for input shape {np.shape(xs)} dtype {dtype.name}"})
        continue
      got = out.reshape(-1).astype(F64)
      n = got.size  # a shape holding more elements than x repeats them (:func:`shaped`)
      xn, xfn, exact_n, flushed_n, seen_n = (np.resize(a, n) for a in (x, xf, exact, as_flushed, seen))
      bad = (got != exact_n) & (got != flushed_n)
      if bad.any():
        # the decisive input: one the platform does not see as a zero (H(tiny) = 0 proves a defect, where
        # H(0) = 0 alone reads as the x > 0 convention)
        decisive = bad & (seen_n != 0)
        i = int(np.argmax(decisive if decisive.any() else bad))
        entry = {"dtype": dtype.name, "shape": list(np.shape(xs)), "worst_input": float(xn[i]),
                 "expected": float(exact_n[i]), "got": float(got[i]), "tolerance": 0.0,
                 "failing_points": int(bad.sum())}
        if ctx.candidate.input_offset:
          entry["received_input"] = float(xfn[i])
        (problems if decisive.any() else zeros).append(entry)
    if zeros and isinstance(one_d, np.ndarray) and one_d.shape == x.shape:
      # x > 0 everywhere means both zeros give 0; H(+0) != H(-0) is a sign test, not a convention
      h = one_d.astype(F64)
      at_zero = {bool(np.signbit(v)): float(h[j]) for j, v in enumerate(xf) if v == 0}
      if any(v != 0.0 for v in at_zero.values()):  # (a library called at v = x + θ receives no -0)
        pos, neg = at_zero.get(False), at_zero.get(True)
        why = ("the threshold tests the sign bit" if pos != neg else
               "neither convention: the x > 0 convention gives 0 for both zeros")
        problems += [{**z, "message": f"H(+0.0) = {pos:g} and H(-0.0) = {neg:g} in {dtype.name}: {why} (the "
                      "specification has 1 for both)"} for z in zeros]
        zeros = []
    conventions += zeros
  if problems:
    p = problems[0]
    msg = p.get("message") or f"H({p['worst_input']!r}) = {p['got']:g} in {p['dtype']}, expected {p['expected']:g}"
    if "message" not in p and len(p.get("shape", [0])) != 1:
      msg += f" (an input of shape {tuple(p['shape'])}, {p['failing_points']} elements wrong)"
    if "received_input" in p and "message" not in p:
      msg += (f" (the library receives x = {p['received_input']:g}: v = x + {ctx.candidate.input_offset:g} in "
              f"{p['dtype']})")
    p = {k: v for k, v in p.items() if k != "message"}
    return failed(f"forward is not H(x): {msg}", **p, all_failures=problems[:8])
  if conventions:
    return convention("H(0) = 0 (threshold x > 0), the specification has H(0) = H(-0.0) = 1", **conventions[0])
  offset = ctx.candidate.input_offset
  at = (f" at the inputs the library receives, fl(x + {offset:g}) - {offset:g} in each dtype (the candidate calls it "
        "at v = x + θ)") if offset else ""
  return passed("H exact for zeros, subnormals (as the platform flushes them), tiny, huge, inf and random "
                f"values in {', '.join(d.name for d in ctx.dtypes)}{at}; shapes {', '.join(map(str, SHAPES))} kept "
                f"({shapes_in.name})")

