"""What the checks share: the per-candidate :class:`Context`, the points they sample, and the
comparisons that decide pass or fail.

Every comparison fails closed (:func:`worst`): a NaN in the expected value, the candidate's value or
the tolerance is a failing point, except where the quantity is undefined (a NaN input, a periodic
surrogate at ±inf). A reference quantity that cannot be computed at the claimed parameters raises
:class:`ReferenceUncomputable`, which the registry turns into an ``error`` outcome.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

import surrogates
from verification.core import numerics, tolerances
from verification.core.candidate import Candidate
from verification.core.evaluate import Evaluator
from verification.results import Outcome, failed, passed, skipped

F64 = np.dtype(np.float64)


class ReferenceUncomputable(Exception):
  """A reference quantity cannot be computed at the candidate's claimed parameters (an ``error``)."""


_REFERENCE_EVALUATORS: dict[str, Evaluator] = {}


_REFERENCE_LOCK = threading.Lock()


def reference_evaluator(ref: surrogates.Surrogate) -> Evaluator:
  """One evaluator per reference surrogate, shared (its compiled bundles are reused); its values are kept on
  disk across runs (:meth:`Evaluator._saved_outputs`), and in a judge, where no candidate code runs, its compiled
  programs too: the same programs as the reference target's worker keeps, so either process reads back what
  the other compiled."""
  from verification.core import cache

  with _REFERENCE_LOCK:
    key = repr(ref)
    if key not in _REFERENCE_EVALUATORS:
      _REFERENCE_EVALUATORS[key] = Evaluator(  # the fields of the reference target's candidates: the same programs
          Candidate(name=ref.name, params=ref.params, fn=ref, surrogate_fun=ref.surrogate_fun,
                    surrogate_grad=ref.surrogate_grad), saved=True, keep_programs=cache.saving_values())
    return _REFERENCE_EVALUATORS[key]


@dataclasses.dataclass
class Context:
  candidate: Candidate
  reference: surrogates.Surrogate
  evaluator: Evaluator
  dtypes: tuple[np.dtype, ...]
  is_reference: bool = False
  hypothesis_examples: int = 20
  seed: int = 0
  #: Values shared between the checks of this candidate (computed by the first that needs them).
  memo: dict[str, Any] = dataclasses.field(default_factory=dict)

  @functools.cached_property
  def scale(self) -> float:
    return float(self.candidate.scale)

  @functools.cached_property
  def peak(self) -> float:
    """max |g| of the reference (times the candidate's scale), as :meth:`surrogates.Surrogate.peak`
    computes it (in float32), through the reference's compiled bundle."""
    g = self.ref_eval.evaluate(self.reference.peak_points(self.length), ("g",), record=False)["g"]
    value = float(np.max(np.abs(g))) if isinstance(g, np.ndarray) else math.nan
    return self._usable("the peak of g", value * abs(self.scale))

  @functools.cached_property
  def length(self) -> float:
    return self._usable("the width of g", self.reference.length_scale())

  def _usable(self, what: str, value: float) -> float:
    """A reference quantity the tolerances are built from: finite, positive and a normal float64."""
    if not (math.isfinite(value) and value >= float(np.finfo(F64).tiny) and value * 64 < float(np.finfo(F64).max)):
      raise ReferenceUncomputable(f"the reference cannot be computed at the claimed parameters "
                                  f"{dict(self.candidate.params)}: {what} is {value!r}")
    return value

  @functools.cached_property
  def step(self) -> float:
    return numerics.fd_step(self.length)

  @property
  def tape(self) -> Any:
    """The candidate's record (:mod:`verification.core.tape`): recording in the worker, replaying in the
    judge, None where the checks run next to the candidate without one."""
    return self.evaluator.tape

  @functools.cached_property
  def ref_eval(self) -> Evaluator:
    """The reference's evaluator. The reference target's candidate is its own reference where its outputs
    are computed (one compilation); where they are replayed the judge computes the reference itself."""
    replaying = self.tape is not None and self.tape.mode == "replay"
    return self.evaluator if self.is_reference and not replaying else reference_evaluator(self.reference)

  def undefined(self, x: np.ndarray) -> np.ndarray:
    """Inputs where every quantity is genuinely undefined: NaN, and ±inf for a periodic surrogate."""
    xf = np.asarray(x, F64)
    return np.isnan(xf) | (np.isinf(xf) if self.reference.periodic else False)

  def ref(self, x: np.ndarray, quantity: str) -> np.ndarray:
    """A reference quantity at x, evaluated in float64 (times the candidate's scale for g, P, g').

    Raises :class:`ReferenceUncomputable` where it is NaN at an input where it is defined."""
    xf = np.asarray(x, F64)
    out = self.ref_eval.evaluate(xf, (quantity,), record=False)[quantity]
    if isinstance(out, Exception):
      raise ReferenceUncomputable(f"the reference failed at the claimed parameters {dict(self.candidate.params)}: "
                                  f"{out}")
    nan = np.isnan(out) & ~self.undefined(xf)
    if nan.any():
      raise ReferenceUncomputable(f"the reference's {quantity} is NaN at x = {xf[nan][0]!r} at the claimed "
                                  f"parameters {dict(self.candidate.params)}: it cannot be computed there")
    return out if quantity == "H" else self.scale * out

  def quantity(self, x: np.ndarray, name: str) -> np.ndarray:
    """A candidate quantity; raises CandidateError if the candidate failed to produce it."""
    out = self.evaluator.evaluate(x, (name,))[name]
    if isinstance(out, Exception):
      raise out
    return out

  def quantity_near(self, x: np.ndarray, name: str, first: np.ndarray) -> np.ndarray:
    """A candidate quantity at inputs that differ in few elements from those of ``first`` (the quantity there),
    recorded as the elements where it differs (:meth:`~verification.core.evaluate.Evaluator.near`); raises
    CandidateError if the candidate failed to produce it."""
    out = self.evaluator.near(x, name, first)
    if isinstance(out, Exception):
      raise out
    return out

  def gradient_name(self) -> str:
    """The gradient the checks judge: the spike function's own (what users get); the autodiff check
    holds ``surrogate_grad`` to it where both exist."""
    return "g"


def worst(x: np.ndarray, expected: np.ndarray, got: np.ndarray, tol: np.ndarray, *,
           undefined: np.ndarray | None = None, **extra: Any) -> dict[str, Any]:
  """Detail of a comparison: the input where |got - expected| / tolerance is largest.

  Fails closed: a NaN in expected, got or the tolerance is a failing point (its ratio is inf),
  except where both are NaN at an input in ``undefined`` (default: NaN inputs). Equal infinities
  agree.
  """
  xf = np.asarray(x, F64).reshape(-1)
  shape = np.shape(expected)
  e, g = np.asarray(expected, F64).reshape(-1), np.asarray(got, F64).reshape(-1)
  t = np.broadcast_to(np.asarray(tol, F64), shape).reshape(-1)
  undefined = np.isnan(xf) if undefined is None else np.broadcast_to(undefined, e.shape)
  agree = (np.isnan(g) & np.isnan(e) & undefined) | (np.isinf(g) & (g == e))
  err = np.where(agree, 0.0, np.abs(g - e))
  bad_tol = np.isnan(t) & ~agree
  with np.errstate(invalid="ignore", divide="ignore"):
    ratio = np.where(agree | ((err == 0) & ~bad_tol), 0.0, err / t)
  ratio = np.where(np.isnan(ratio) | bad_tol, np.inf, ratio)
  n = ratio.size
  i = int(np.argmax(ratio)) if n else 0
  return {
      "worst_input": float(xf[i]) if n else None,
      "expected": float(e[i]) if n else None,
      "got": float(g[i]) if n else None,
      "tolerance": float(t[i]) if n else None,
      "error": float(err[i]) if n else None,
      "failing_points": int(np.sum(ratio > 1)),
      "points": int(n),
      **extra,
  }


def _grid(ctx: Context, dtype: np.dtype, span: float = 16.0, n: int = 8193) -> np.ndarray:
  """Points for value comparisons in a dtype: all 16-bit patterns within ±span·width, or a grid."""
  L = ctx.length
  if not (span * L < tolerances.fmax(dtype) and L > 1024 * float(jnp.finfo(dtype).smallest_subnormal)):
    raise ReferenceUncomputable(f"the claimed parameters {dict(ctx.candidate.params)} give g a width of {L:g}, "
                                f"which {dtype.name} cannot resolve: the reference cannot be judged in it")
  if dtype.itemsize == 2:
    x = numerics.all_bit_patterns(dtype)
    xf = x.astype(F64)
    return x[np.isfinite(xf) & (np.abs(xf) <= span * L)]
  rng = np.random.default_rng(ctx.seed)
  x = np.concatenate([np.linspace(-span, span, n), rng.uniform(-span, span, n // 4)]) * L
  if ctx.reference.periodic:
    x = np.concatenate([x, rng.uniform(-1e3, 1e3, 512) * L])
  return x.astype(dtype)


def _near_jumps(ctx: Context, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
  """Inputs within a few ulp of a jump of g: their value is a convention, judged separately."""
  xf = x.astype(F64)
  near = np.zeros(x.shape, bool)
  for k in ctx.reference.jumps():
    near |= np.abs(xf - k) <= 4 * tolerances.eps(dtype) * max(abs(k), ctx.length)
  return near


def flushed(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
  """x as the platform sees it in compiled code: subnormals to signed zero where it flushes them."""
  xf = x.astype(F64)
  if not numerics.flushes_subnormals()[dtype.name]:
    return xf
  sub = np.abs(xf) < float(jnp.finfo(dtype).tiny)
  return np.where(sub, np.copysign(0.0, xf), xf)


def forward_inputs(ctx: Context, dtype: np.dtype) -> np.ndarray:
  fi = jnp.finfo(dtype)
  special = [0.0, float(fi.smallest_subnormal), float(fi.tiny), float(fi.eps), 1.0, float(fi.max), np.inf]
  rng = np.random.default_rng(ctx.seed)
  vals = np.concatenate([special, [-v for v in special], rng.normal(0, 3 * ctx.length, 64)])
  return vals.astype(dtype)


#: Input shapes beyond 1-d that the forward (and, in float64, the VJP) must handle elementwise:
#: 0-d, size-1 axes anywhere, 2-d, 3-d, and as training has them, every axis longer than 1 and each of
#: another length (a permutation of elements shows): 4-d (N, C, H, W) and (N, H, W, C), and 5-d
#: (T, B, C, H, W). Each is filled with the elements of a 1-d input (repeated where it holds more).
TRAINING_SHAPES: tuple[tuple[int, ...], ...] = ((2, 4, 3), (2, 3, 4, 5), (2, 4, 5, 3), (3, 2, 5, 2, 2))
SHAPES: tuple[tuple[int, ...], ...] = ((), (1,), (1, 8), (8, 1), (4, 8), (2, 1, 4), *TRAINING_SHAPES)


#: The VJP's shapes (0-d is vmap(grad)'s, in the transforms check): size-1 axes, 2-d, 3-d, 4-d and 5-d.
VJP_SHAPES: tuple[tuple[int, ...], ...] = ((1,), (1, 8), (8, 1), (4, 8), (2, 1, 4), *TRAINING_SHAPES)


def shaped(x: np.ndarray, shapes: tuple[tuple[int, ...], ...] = SHAPES) -> list[np.ndarray]:
  """x's elements in each shape (repeated where the shape holds more)."""
  return [np.resize(x, math.prod(s)).reshape(s) for s in shapes]


#: The training loop's number of steps (the autodiff check).
STEPS = 4


def loop_inputs(x: np.ndarray, ct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """:data:`STEPS` different inputs (rotations of x, so every step sees other values at each position) and
  their cotangents, as (STEPS, len(x)) arrays: a training loop's calls."""
  xs = np.stack([np.roll(x, 7 * t) for t in range(STEPS)])
  cts = np.stack([np.roll(ct, 3 * t) for t in range(STEPS)])
  return xs, cts


def shapes_dtype(ctx: Context) -> np.dtype:
  """The dtype in which the forward's shapes are checked (shape handling does not depend on it)."""
  return next((d for d in ctx.dtypes if d.itemsize == 4), ctx.dtypes[-1])


#: The number of wiring points: fixed, so the programs over them compile once per surrogate.
WIRING_POINTS = 128


def wiring_points(ctx: Context, dtype, n: int = 64) -> np.ndarray:
  """About 1.5·n points over ±4 widths and 6 far ones, off the kinks, repeated to a fixed length."""
  margin = 8 * ctx.step
  x = numerics.sample_points(ctx.length, ctx.reference.kinks(), margin, n=n, seed=ctx.seed, span=4.0)
  return np.resize(x, WIRING_POINTS).astype(dtype)


def cotangent(ctx: Context, x: np.ndarray) -> np.ndarray:
  """Random cotangents of both signs (a gradient that ignores or misuses them shows)."""
  rng = np.random.default_rng(ctx.seed + 1)
  return (rng.normal(size=x.shape) * 2.0 + 0.5).astype(x.dtype)


class Comparisons:
  """Collects the failing comparisons of one check (each fails closed, see :func:`worst`)."""

  def __init__(self) -> None:
    self.failures: list[dict[str, Any]] = []

  def note(self, message: str, **detail: Any) -> None:
    self.failures.append({"message": message, **detail})

  def compare(self, message: str, x, expected, got, tol, **extra: Any) -> None:
    expected, got = np.asarray(expected, F64), np.asarray(got, F64)
    if expected.shape != got.shape:
      self.note(f"{message}: shape {got.shape} where {expected.shape} was expected", **extra)
      return
    d = worst(np.broadcast_to(np.asarray(x, F64).reshape(-1)[: expected.size], (expected.size,)),
               expected, got, tol, **extra)
    if d["failing_points"]:
      self.note(message, **d)

  def outcome(self, success: str, **detail: Any) -> Outcome:
    if self.failures:
      first = dict(self.failures[0])
      message = first.pop("message")
      return failed(message, **first, all_failures=self.failures[:8])
    return passed(success, **detail)


def wiring_tolerance(ctx: Context, dtype: np.dtype, ct: np.ndarray, k: float = tolerances.K_WIRING) -> np.ndarray:
  """k·eps·peak·(1 + |ct|): the same computation in the same dtype, only the last products round
  differently."""
  return k * tolerances.eps(dtype) * ctx.peak * (1 + np.abs(np.asarray(ct, F64)))


def needs_jax(ctx: Context) -> Outcome | None:
  c = ctx.candidate
  if c.backend == "jax":
    return None
  if c.backend == "torch":  # the registry runs a check's torch form; a check without one skips
    return skipped(f"{c.label} is a torch candidate and this check has no torch form")
  return skipped(f"needs JAX transforms: {c.label} is evaluated through its own forward and VJP")


def repeatability(ctx: Context, x: np.ndarray, name: str, first: np.ndarray) -> dict[str, Any] | None:
  """None where ``name`` at x computed a second time is bit-identical to ``first`` (the first evaluation);
  else a failure saying the candidate is nondeterministic, with the spread (a verdict at a tolerance
  would otherwise change from run to run). Values in messages are printed in full (``repr``)."""
  again = ctx.evaluator.again(x, name, first)
  if isinstance(again, Exception):
    return {"message": f"{name} computed a second time at the same inputs raised {again}"}
  a, b = np.asarray(first), np.asarray(again)
  if a.size == 0:
    return None
  same = np.all(a.view(np.uint8).reshape(a.size, -1) == b.view(np.uint8).reshape(b.size, -1), axis=1)
  if same.all():
    return None
  af, bf = a.reshape(-1).astype(F64), b.reshape(-1).astype(F64)
  spread = np.where(same, 0.0, np.abs(af - bf))
  spread = np.where(np.isnan(spread), np.inf, spread)
  i = int(np.argmax(np.where(same, -1.0, spread)))
  ulp = float(np.spacing(np.abs(a.reshape(-1)[i]))) if a.dtype.kind == "f" else math.nan
  xi = float(np.asarray(x, F64).reshape(-1)[i])
  return {"message": f"nondeterministic: {name} at the same {a.size} inputs ({a.dtype}), computed twice, differs at "
                     f"{int((~same).sum())} of them, by up to {float(spread[i])!r} ({float(spread[i]) / ulp:.3g} ulp) "
                     f"at x = {xi!r}: {float(af[i])!r}, then {float(bf[i])!r}; a verdict at a tolerance would "
                     "change from run to run",
          "worst_input": xi, "expected": float(af[i]), "got": float(bf[i]), "spread": float(spread[i]),
          "failing_points": int((~same).sum()), "points": int(a.size), "quantity": name,
          "dtype": str(a.dtype)}


def low_precision_rows(ctx: Context, dtype: np.dtype, compare_to_reference: bool, name: str = "g") -> dict:
  """g (or ``surrogate_grad``: name "sg") in a dtype against float64: the reference's × scale, or the
  candidate's own at the same rounded input."""
  x = _grid(ctx, dtype)
  near_jump = _near_jumps(ctx, x, dtype)
  x = x[~near_jump]
  xf = x.astype(F64)
  raw = ctx.quantity(x, name)
  got = raw.astype(F64)
  nondeterministic = repeatability(ctx, x, name, raw)
  dg = ctx.ref(xf, "d2H")
  if compare_to_reference:
    expected = ctx.ref(xf, "g")
    alt = ctx.ref(flushed(x, dtype), "g")
  else:
    first = ctx.quantity(xf, name)
    expected = first.astype(F64)
    alt = ctx.quantity_near(flushed(x, dtype), name, first).astype(F64)
  expected = np.where(np.abs(got - alt) < np.abs(got - expected), alt, expected)
  k = (tolerances.K_DIFFERENTIAL if compare_to_reference else tolerances.K_LOW_PRECISION)[dtype.name]
  declared = ctx.reference.argument_condition(xf)
  cond = dg * xf if declared is None else abs(ctx.scale) * np.asarray(declared, F64)
  tol = tolerances.g_tolerance(dtype, k, ctx.peak, cond)
  detail = worst(x, expected, got, tol, dtype=dtype.name, quantity=name, excluded_near_jumps=int(near_jump.sum()),
                  reason=f"{k:g}·eps({dtype.name})·(peak + |x·g'(x)|): rounding relative to the size of g, plus "
                         "the condition of g under rounding of its argument"
                         + ("" if declared is None else " (declared per-term condition of the sum)"))
  if nondeterministic is not None:
    detail["nondeterministic"] = nondeterministic
  return detail


#: Why the second derivative is held to this bound (the second_order check, JAX and torch forms).
G_SLOPE_REASON = ("Richardson on central differences of the candidate's g, h ≈ 4e-3·width; tolerance 4·(the "
                  "extrapolation's error estimate) + 1e-4·peak/width + 1e-4·|g'|")


def g_slope(ctx: Context, gfun: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """g' from the candidate's own g (float64) and its tolerance, for the second-order comparison.

  Richardson-extrapolated central differences: the step comes from the reference's width, and a
  candidate whose g is narrower than the reference's (a defect the differential check reports)
  would make plain central differences err by h²·|g⁽³⁾|/6, far past the bound; the extrapolation
  errs by O(h⁴) and says how much (its estimate is part of the tolerance)."""
  fd, est = numerics.richardson(gfun, np.asarray(x, F64), ctx.step)
  return fd, 4 * est + 1e-4 * ctx.peak / ctx.length + 1e-4 * np.abs(fd)
