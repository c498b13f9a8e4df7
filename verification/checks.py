"""The checks. Each takes a :class:`Context` and returns a :class:`verification.results.Outcome`.

An exception escaping a check (from candidate code) is turned into an ``error`` result by the
runner; a reference quantity that cannot be computed at the claimed parameters is an ``error``
outcome saying so. Every comparison states its tolerance and the reason for it, and fails closed:
a NaN in the expected value, the candidate's value or the tolerance is a failing point, except
where the quantity is undefined (a NaN input, a periodic surrogate at ±inf).

Capabilities (forward mode, second order, vmap, jit) that a candidate's mechanism lacks are
``unsupported`` outcomes with the capability, the reason and the fix; a capability that exists
and gives wrong numbers is a ``fail``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import surrogates
from verification import numerics, tolerances
from verification.candidate import Candidate
from verification.evaluate import CandidateError, Evaluator, describe
from verification.parameters import check_parameters
from verification.results import Outcome, convention, errored, failed, passed, skipped, unsupported

F64 = np.dtype(np.float64)


class ReferenceUncomputable(Exception):
  """A reference quantity cannot be computed at the candidate's claimed parameters (an ``error``)."""


# ---------------------------------------------------------------------------------------------
# Context shared by the checks of one candidate
# ---------------------------------------------------------------------------------------------

_REFERENCE_EVALUATORS: dict[str, Evaluator] = {}
_REFERENCE_LOCK = threading.Lock()


def reference_evaluator(ref: surrogates.Surrogate) -> Evaluator:
  """One evaluator per reference surrogate, shared (its compiled bundles are reused)."""
  with _REFERENCE_LOCK:
    key = repr(ref)
    if key not in _REFERENCE_EVALUATORS:
      _REFERENCE_EVALUATORS[key] = Evaluator(
          Candidate(name=ref.name, params=ref.params, fn=ref, surrogate_fun=ref.surrogate_fun)
      )
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
    g = self.ref_eval.evaluate(self.reference.peak_points(self.length), ("g",))["g"]
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

  @functools.cached_property
  def ref_eval(self) -> Evaluator:
    return self.evaluator if self.is_reference else reference_evaluator(self.reference)

  def undefined(self, x: np.ndarray) -> np.ndarray:
    """Inputs where every quantity is genuinely undefined: NaN, and ±inf for a periodic surrogate."""
    xf = np.asarray(x, F64)
    return np.isnan(xf) | (np.isinf(xf) if self.reference.periodic else False)

  def ref(self, x: np.ndarray, quantity: str) -> np.ndarray:
    """A reference quantity at x, evaluated in float64 (times the candidate's scale for g, P, g').

    Raises :class:`ReferenceUncomputable` where it is NaN at an input where it is defined."""
    xf = np.asarray(x, F64)
    out = self.ref_eval.evaluate(xf, (quantity,))[quantity]
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

  def gradient_name(self) -> str:
    """The gradient the checks judge: the spike function's own (what users get); the autodiff check
    holds ``surrogate_grad`` to it where both exist."""
    return "g"


def _dtype_name(d) -> str:
  return np.dtype(d).name


def _worst(x: np.ndarray, expected: np.ndarray, got: np.ndarray, tol: np.ndarray, *,
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


def _flushed(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
  """x as the platform sees it in compiled code: subnormals to signed zero where it flushes them."""
  xf = x.astype(F64)
  if not numerics.flushes_subnormals()[dtype.name]:
    return xf
  sub = np.abs(xf) < float(jnp.finfo(dtype).tiny)
  return np.where(sub, np.copysign(0.0, xf), xf)


# ---------------------------------------------------------------------------------------------
# 1. forward
# ---------------------------------------------------------------------------------------------


def _forward_inputs(ctx: Context, dtype: np.dtype) -> np.ndarray:
  fi = jnp.finfo(dtype)
  special = [0.0, float(fi.smallest_subnormal), float(fi.tiny), float(fi.eps), 1.0, float(fi.max), np.inf]
  rng = np.random.default_rng(ctx.seed)
  vals = np.concatenate([special, [-v for v in special], rng.normal(0, 3 * ctx.length, 64)])
  return vals.astype(dtype)


#: Input shapes beyond 1-d that the forward (and, in float64, the VJP) must handle elementwise:
#: 0-d, size-1 axes anywhere, 2-d and 3-d. Each is filled with the first elements of a 1-d input.
SHAPES: tuple[tuple[int, ...], ...] = ((), (1,), (1, 8), (8, 1), (4, 8), (2, 1, 4), (2, 4, 3))
#: The VJP's shapes (0-d is vmap(grad)'s, in the transforms check): size-1 axes, 2-d and 3-d.
VJP_SHAPES: tuple[tuple[int, ...], ...] = ((1,), (1, 8), (8, 1), (4, 8), (2, 1, 4))


def _shaped(x: np.ndarray, shapes: tuple[tuple[int, ...], ...] = SHAPES) -> list[np.ndarray]:
  return [x[: math.prod(s)].reshape(s) for s in shapes]


def _shapes_dtype(ctx: Context) -> np.dtype:
  """The dtype in which the forward's shapes are checked (shape handling does not depend on it)."""
  return next((d for d in ctx.dtypes if d.itemsize == 4), ctx.dtypes[-1])


def _call_forward_shapes(ctx: Context, x: np.ndarray) -> list[np.ndarray | Exception]:
  """The forward at each of :data:`SHAPES` (in the transformed program: no compilation of its own)."""
  c = ctx.candidate
  xs = _shaped(x)
  if c.backend == "jax":
    out = _transformed(ctx, "forward")["shapes"]
    if not isinstance(out, Exception):
      return list(out)
  out: list[np.ndarray | Exception] = []
  for v in xs:  # name the shape that fails
    try:
      out.append(np.asarray(jax.jit(c.fn)(v) if c.backend == "jax" else c.forward(v)))
    except Exception as exc:
      out.append(CandidateError(f"the spike function raised {describe(exc)} on a {v.dtype} input of shape "
                                f"{v.shape}"))
  return out


def check_forward(ctx: Context) -> Outcome:
  """H exact at 0, -0.0, ±tiny, ±subnormal, ±huge, ±inf and random values; dtype and shape kept.

  H(x) = 1 for x >= 0 (both zeros), 0 for x < 0. The ``x > 0`` convention (H(±0) = 0) is a
  ``convention`` outcome only when both zeros give 0; H(+0) = 1 with H(-0) = 0 is a sign-bit defect.
  """
  problems, conventions = [], []
  shapes_dtype = _shapes_dtype(ctx)
  received = ctx.candidate.received  # x itself, or what a library called at v = x + θ receives
  for dtype in ctx.dtypes:
    x = _forward_inputs(ctx, dtype)
    xf = received(x)
    exact = np.where(np.signbit(xf) & (xf != 0), 0.0, 1.0)
    flushed = received(_flushed(x, dtype).astype(dtype))
    as_flushed = np.where(np.signbit(flushed) & (flushed != 0), 0.0, 1.0)
    # 1-d through the evaluator (its compiled bundle); the other shapes in one compilation.
    one_d = ctx.evaluator.evaluate(x, ("H",))["H"]
    calls = [(x, one_d)]
    if dtype == shapes_dtype:  # shape handling does not depend on the dtype: one compilation
      calls += zip(_shaped(x), _call_forward_shapes(ctx, x), strict=True)
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
      n = got.size
      bad = (got != exact[:n]) & (got != as_flushed[:n])
      if bad.any():
        i = int(np.argmax(bad))
        entry = {"dtype": dtype.name, "shape": list(np.shape(xs)), "worst_input": float(x[i]),
                 "expected": float(exact[i]), "got": float(got[i]), "tolerance": 0.0,
                 "failing_points": int(bad.sum())}
        if ctx.candidate.input_offset:
          entry["received_input"] = float(xf[i])
        (zeros if np.all(flushed[:n][bad] == 0) else problems).append(entry)
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
    msg = p.get("message") or f"H({p['worst_input']:g}) = {p['got']:g} in {p['dtype']}, expected {p['expected']:g}"
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
                f"({shapes_dtype.name})")


# ---------------------------------------------------------------------------------------------
# 2. autodiff: reverse mode (required); forward mode, second order, jit and vmap (capabilities)
# ---------------------------------------------------------------------------------------------


#: The number of wiring points: fixed, so the programs over them compile once per surrogate.
WIRING_POINTS = 128


def _wiring_points(ctx: Context, dtype, n: int = 64) -> np.ndarray:
  """About 1.5·n points over ±4 widths and 6 far ones, off the kinks, repeated to a fixed length."""
  margin = 8 * ctx.step
  x = numerics.sample_points(ctx.length, ctx.reference.kinks(), margin, n=n, seed=ctx.seed, span=4.0)
  return np.resize(x, WIRING_POINTS).astype(dtype)


def _cotangent(ctx: Context, x: np.ndarray) -> np.ndarray:
  """Random cotangents of both signs (a gradient that ignores or misuses them shows)."""
  rng = np.random.default_rng(ctx.seed + 1)
  return (rng.normal(size=x.shape) * 2.0 + 0.5).astype(x.dtype)


def _elementwise_grad(f: Callable) -> Callable:
  return lambda v: jax.grad(lambda u: jnp.sum(f(u)))(v)


def _to_numpy(tree: Any) -> Any:
  return jax.tree_util.tree_map(np.asarray, tree)


#: A piece of the transformed quantities: ``piece(fn, args) -> pytree``, ``args`` a dict of arrays.
Piece = Callable[[Callable, dict[str, Any]], Any]


def _run_pieces(fn: Callable, pieces: dict[str, Piece], args: dict[str, Any]) -> dict[str, Any]:
  """Each piece jitted on its own (so the failing one is named). Values: pytrees of NumPy arrays, or
  the Exception."""
  results: dict[str, Any] = {}
  for k, f in pieces.items():
    try:
      results[k] = _to_numpy(jax.jit(lambda a, f=f: f(fn, a))(args))
    except Exception as exc:
      results[k] = exc
  return results


def _run_eagerly(fn: Callable, pieces: dict[str, Piece], args: dict[str, Any]) -> dict[str, Any]:
  results: dict[str, Any] = {}
  args = jax.device_put(args)
  for k, f in pieces.items():
    try:
      results[k] = _to_numpy(f(fn, args))
    except Exception as exc:
      results[k] = exc
  return results


def _vjp(fn: Callable, x: jax.Array, ct: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(primal, VJP at ct)."""
  primal, pullback = jax.vjp(fn, x)
  return primal, pullback(ct)[0]


def _value_and_grad(fn: Callable, x: jax.Array, ct: jax.Array) -> Any:
  """``jax.value_and_grad`` of sum(ct·fn(x)), with the spikes as auxiliary output."""

  def loss(v, w):
    s = fn(v)
    return jnp.sum(s * w), s

  return jax.value_and_grad(loss, has_aux=True)(x, ct)


#: The pieces of the autodiff, forward_mode and transforms checks, per group (see the checks).
_PIECES: dict[str, dict[str, Piece]] = {
    "forward": {"shapes": lambda fn, a: [fn(v) for v in a["xs"]]},
    "autodiff": {
        "vjp": lambda fn, a: _vjp(fn, a["x"], a["ct"]),
        "value_and_grad": lambda fn, a: _value_and_grad(fn, a["x"], a["ct"]),
        "shapes": lambda fn, a: [jax.vjp(fn, v)[1](w)[0] for v, w in zip(a["shaped_x"], a["shaped_ct"], strict=True)],
    },
    "forward_mode": {
        "jvp": lambda fn, a: jax.jvp(fn, (a["x"],), (a["t"],)),
        "jacfwd": lambda fn, a: jax.jacfwd(fn)(a["x"][:16]),
    },
    "transforms": {
        "vjp": lambda fn, a: _vjp(fn, a["x"], a["ct"])[1],
        "vmap": lambda fn, a: jax.vmap(fn)(a["x"]),
        "vmap_2d": lambda fn, a: jax.vmap(fn)(a["x"].reshape(8, -1)),
        "vmap_grad": lambda fn, a: jax.vmap(jax.grad(fn))(a["x"]),
    },
}


def _transformed_program(c: Candidate, args: dict[str, dict[str, Any]]) -> dict[str, Any]:
  return {g: {k: f(c.fn, args[g]) for k, f in pieces.items()} for g, pieces in _PIECES.items()}


def _transform_args(ctx: Context) -> dict[str, dict[str, Any]]:
  """The inputs of the pieces, per group: the forward's inputs in :data:`SHAPES`, the autodiff and
  forward_mode checks' wiring points (float64) and the transforms check's points
  (:func:`_transform_dtype`), with random cotangents."""
  x = _wiring_points(ctx, F64)
  ct = _cotangent(ctx, x)
  xt = _transform_points(ctx, _transform_dtype(ctx))
  return {"forward": {"xs": _shaped(_forward_inputs(ctx, _shapes_dtype(ctx)))},
          "autodiff": {"x": x, "ct": ct, "shaped_x": _shaped(x, VJP_SHAPES), "shaped_ct": _shaped(ct, VJP_SHAPES)},
          "forward_mode": {"x": x, "t": ct},
          "transforms": {"x": xt, "ct": _cotangent(ctx, xt)}}


def _transformed(ctx: Context, group: str) -> dict[str, Any]:
  """The transformed quantities of the forward (its shapes), autodiff, forward_mode and transforms
  checks, all in one compilation (the first check to ask computes them for all four; shared by the
  parameter sets of a reference surrogate); where that raises, per group, then per piece, so the
  failing one is named and the other groups are unaffected."""
  if "transformed" not in ctx.memo:
    args = _transform_args(ctx)
    fn = ctx.candidate.fn
    try:
      flat = _to_numpy(ctx.evaluator.program(_transformed_program)(args))
    except Exception:
      flat = {}
      for g, pieces in _PIECES.items():
        try:
          flat[g] = _to_numpy(jax.jit(lambda a, p=pieces: {k: f(fn, a) for k, f in p.items()})(args[g]))
        except Exception:
          flat[g] = _run_pieces(fn, pieces, args[g])
    ctx.memo["transformed"] = flat
    ctx.memo["transform_args"] = args
  return ctx.memo["transformed"][group]


_WHAT = {"forward": "forward mode (jvp)", "second": "second order (grad of grad)", "vmap": "vmap", "jit": "jit"}
_FIXES = {
    "forward": "jax.custom_jvp gives both forward mode and second order (for a custom primitive: a JVP rule in "
               "jax.interpreters.ad.primitive_jvps)",
    "second": "define the derivative with jax.custom_jvp in differentiable jnp operations (no NumPy or "
              "stop_gradient inside it)",
    "vmap": "give the primitive a batching rule (jax.interpreters.batching.primitive_batchers), or build the "
            "spike function from jnp operations",
    "jit": "write the spike function with jnp/lax operations (no Python control flow or NumPy calls on traced "
           "values), or give the primitive a lowering (jax.interpreters.mlir.register_lowering)",
}
#: Words in an exception that say a transform is not implemented (a missing capability), as opposed
#: to a rule that exists and breaks (a defect).
_GAP_MARKERS = {
    "forward": ("forward-mode", "differentiation rule", "not implemented"),
    "second": ("forward-mode", "differentiation rule", "not implemented", "transpose rule"),
    "vmap": ("batching rule", "not implemented"),
    "jit": ("concret", "tracer", "lowering", "translation rule", "not implemented"),
}


def _built_with_custom_vjp(fn: Callable, x: jax.Array) -> bool:
  try:
    return "custom_vjp_call" in str(jax.make_jaxpr(fn)(x))
  except Exception:
    return False


def _gap(ctx: Context, capability: str, exc: BaseException, x: jax.Array) -> Outcome | None:
  """``unsupported`` where ``exc`` says the candidate's mechanism lacks the capability; None otherwise."""
  text = f"{type(exc).__name__}: {exc}"
  if not (isinstance(exc, NotImplementedError) or any(m in text.lower() for m in _GAP_MARKERS[capability])):
    return None
  first = text.strip().splitlines()[0]
  if capability in ("forward", "second") and _built_with_custom_vjp(ctx.candidate.fn, x):
    reason, mechanism = "built with jax.custom_vjp, which has no forward mode; jax.custom_jvp gives both", "custom_vjp"
  else:
    reason, mechanism = f"its mechanism has no {_WHAT[capability]} rule", "other"
  return unsupported(capability, f"{_WHAT[capability]} unsupported: {reason} ({first})", fix=_FIXES[capability],
                     mechanism=mechanism, error=first)


def _raised(ctx: Context, capability: str, what: str, exc: BaseException, x: jax.Array) -> Outcome:
  """A transform raised: ``unsupported`` where the capability is missing, else a defect."""
  return _gap(ctx, capability, exc, x) or failed(f"{what} raised {describe(exc)}")


class _Comparisons:
  """Collects the failing comparisons of one check (each fails closed, see :func:`_worst`)."""

  def __init__(self) -> None:
    self.failures: list[dict[str, Any]] = []

  def note(self, message: str, **detail: Any) -> None:
    self.failures.append({"message": message, **detail})

  def compare(self, message: str, x, expected, got, tol, **extra: Any) -> None:
    expected, got = np.asarray(expected, F64), np.asarray(got, F64)
    if expected.shape != got.shape:
      self.note(f"{message}: shape {got.shape} where {expected.shape} was expected", **extra)
      return
    d = _worst(np.broadcast_to(np.asarray(x, F64).reshape(-1)[: expected.size], (expected.size,)),
               expected, got, tol, **extra)
    if d["failing_points"]:
      self.note(message, **d)

  def outcome(self, success: str, **detail: Any) -> Outcome:
    if self.failures:
      first = dict(self.failures[0])
      message = first.pop("message")
      return failed(message, **first, all_failures=self.failures[:8])
    return passed(success, **detail)


def _wiring_tolerance(ctx: Context, dtype: np.dtype, ct: np.ndarray, k: float = tolerances.K_WIRING) -> np.ndarray:
  """k·eps·peak·(1 + |ct|): the same computation in the same dtype, only the last products round
  differently."""
  return k * tolerances.eps(dtype) * ctx.peak * (1 + np.abs(np.asarray(ct, F64)))


def _needs_jax(ctx: Context) -> Outcome | None:
  c = ctx.candidate
  if c.backend == "jax":
    return None
  if c.backend == "torch":
    return skipped(f"{c.label} is a torch candidate: the autodiff check judges it with torch's own transforms "
                   "(VJP, forward mode, second order, torch.func.vmap, torch.compile)")
  return skipped(f"needs JAX transforms: {c.label} is evaluated through its own forward and VJP")


def check_autodiff(ctx: Context) -> Outcome:
  """Reverse mode as a training loop uses it (float64): the VJP with random cotangents is ct·g; the
  primal outputs of ``jax.vjp`` and ``jax.value_and_grad`` are H; the VJP of 0-d to 3-d inputs (size-1
  axes too) is the 1-d VJP elementwise; ``surrogate_grad`` is g."""
  if ctx.candidate.backend == "torch":
    from verification import torch_checks  # imports torch

    return torch_checks.check_autodiff(ctx)
  if (skip := _needs_jax(ctx)) is not None:
    return skip
  x = _wiring_points(ctx, F64)
  ct = _cotangent(ctx, x)
  out = _transformed(ctx, "autodiff")
  if isinstance(out["vjp"], Exception):  # judge reverse mode even where jit is missing (the transforms check says so)
    eager = _run_eagerly(ctx.candidate.fn, _PIECES["autodiff"], ctx.memo["transform_args"]["autodiff"])
    out = eager if not isinstance(eager["vjp"], Exception) else out
  out["g"] = ctx.evaluator.evaluate(x, ("g",))["g"]
  if isinstance(out["g"], Exception):
    return failed(str(out["g"]), dtype="float64")
  g, H = out["g"].astype(F64), ctx.quantity(x, "H").astype(F64)
  tol = _wiring_tolerance(ctx, F64, ct)
  c = _Comparisons()
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
      c.compare(f"the VJP of a {shape} input is not the 1-d VJP elementwise", x[:n], vjp_value[:n].reshape(shape),
                got, tol[:n].reshape(shape), shape=list(shape), **extra)
  if "sg" in ctx.evaluator.fns:
    c.compare("the spike function's gradient is not its surrogate_grad", x, ctx.quantity(x, "sg"), g, tol, **extra)
  return c.outcome("VJP = ct·g for random cotangents; jax.vjp and jax.value_and_grad give H as the primal; the VJP "
                   f"of shapes {', '.join(map(str, VJP_SHAPES))} is the 1-d one elementwise (float64)",
                   tolerance=f"{tolerances.K_WIRING:g}·eps·peak·(1 + |ct|)", dtype="float64")


def check_forward_mode(ctx: Context) -> Outcome:
  """Forward mode (a capability): ``jax.jvp`` gives H as the primal and g·t as the tangent;
  ``jax.jacfwd`` is diag(g) (float64)."""
  if (skip := _needs_jax(ctx)) is not None:
    return skip
  x = _wiring_points(ctx, F64)
  t = _cotangent(ctx, x)
  out = _transformed(ctx, "forward_mode")
  if isinstance(out["jvp"], Exception):
    return _raised(ctx, "forward", "forward mode (jax.jvp)", out["jvp"], jnp.asarray(x))
  g, H = ctx.quantity(x, "g").astype(F64), ctx.quantity(x, "H").astype(F64)
  tol = _wiring_tolerance(ctx, F64, t)
  c = _Comparisons()
  primal, tangent = out["jvp"]
  c.compare("the primal output of jax.jvp is not H(x)", x, H, primal, 0.0, dtype="float64")
  c.compare("the JVP is not g(x)·t", x, g * t, tangent, tol, dtype="float64")
  if isinstance(out["jacfwd"], Exception):
    c.note(f"jax.jacfwd raised {describe(out['jacfwd'])}", dtype="float64")
  else:
    c.compare("jacfwd is not diag(g)", np.repeat(x[:16], 16), np.diag(g[:16]).reshape(-1),
              out["jacfwd"].reshape(-1), tolerances.K_WIRING * tolerances.eps(F64) * ctx.peak, dtype="float64")
  return c.outcome("jax.jvp: primal = H, tangent = g·t; jacfwd = diag(g) (float64)",
                   tolerance=f"{tolerances.K_WIRING:g}·eps·peak·(1 + |t|)")


def check_second_order(ctx: Context) -> Outcome:
  """Second order (a capability): the derivative of the VJP, d/dx g, equals central differences of g
  off the kinks (float64)."""
  if (skip := _needs_jax(ctx)) is not None:
    return skip
  x = _wiring_points(ctx, F64)
  second = ctx.evaluator.evaluate(x, ("d2H",))["d2H"]
  if isinstance(second, Exception):
    try:  # the evaluator keeps a message; the exception itself says whether the rule is missing
      jax.jit(_elementwise_grad(_elementwise_grad(ctx.candidate.fn)))(jnp.asarray(x))
    except Exception as exc:
      return _raised(ctx, "second", "second order (grad of grad)", exc, jnp.asarray(x))
    return failed(str(second), dtype="float64")
  h = ctx.step
  fd = (ctx.quantity(x + h, "g").astype(F64) - ctx.quantity(x - h, "g").astype(F64)) / (2 * h)
  # Central differences of g at h ≈ 4e-3·width: error about h²·|g⁽³⁾|/6, below 1e-5 of peak/width.
  reason = "central differences of g, h ≈ 4e-3·width: 1e-4·peak/width + 1e-4·|g'|"
  c = _Comparisons()
  c.compare("the second derivative of the spike function is not g'(x)", x, fd, second,
            1e-4 * ctx.peak / ctx.length + 1e-4 * np.abs(fd), dtype="float64", reason=reason)
  if c.failures and _built_with_custom_vjp(ctx.candidate.fn, jnp.asarray(x)):
    # The specification: jax.custom_vjp (and custom_gradient, built on it) has no second derivative.
    # Reverse over reverse still runs, through the bwd rule; right numbers pass, others are the gap.
    worst = {k: v for k, v in c.failures[0].items() if k != "message"}
    return unsupported("second", "second order unsupported: built with jax.custom_vjp, which does not promise "
                       "one (grad of grad differentiates its bwd rule, and here that is not g'(x))",
                       fix=_FIXES["second"], mechanism="custom_vjp", **worst)
  return c.outcome("d/dx g = central differences of g off the kinks (float64)", dtype="float64", reason=reason)


def _transform_points(ctx: Context, dtype: np.dtype, n: int = 64) -> np.ndarray:
  """Both signs, ±0, ±tiny, ±eps, the kinks and either side of them, and random values (no subnormals:
  the platform may flush them in compiled code and not in an eager NumPy implementation)."""
  fi = jnp.finfo(dtype)
  L = ctx.length
  kinks = [float(k) for k in ctx.reference.kinks()]
  special = [0.0, -0.0, float(fi.tiny), -float(fi.tiny), float(fi.eps), -float(fi.eps), L, -L, 4 * L, -4 * L]
  special += kinks + [k + d for k in kinks for d in (-0.01 * L, 0.01 * L)]
  rng = np.random.default_rng(ctx.seed + 2)
  m = max(n - len(special), 8)
  m += -(len(special) + m) % 8  # a multiple of 8, for the 2-d vmap
  return np.concatenate([np.array(special, F64), rng.normal(0, 2 * L, m)]).astype(dtype)


def _transform_dtype(ctx: Context) -> np.dtype:
  """One dtype for the jit and vmap comparisons (they test rules, not rounding): float32 where selected."""
  return next((d for d in ctx.dtypes if d.name == "float32"), max(ctx.dtypes, key=lambda d: d.itemsize))


def check_transforms(ctx: Context) -> Outcome:
  """jit and vmap (capabilities): the compiled forward and VJP equal the eager ones (both signs, ±0,
  the kinks); ``vmap(fn)``, ``jit(vmap(fn))`` and ``vmap`` over the leading axis of a 2-d input equal
  fn; ``vmap(grad(fn))`` equals g. In one dtype (float32 where selected)."""
  if (skip := _needs_jax(ctx)) is not None:
    return skip
  fn = ctx.candidate.fn
  c = _Comparisons()
  gaps: list[Outcome] = []
  dtype = _transform_dtype(ctx)
  x = _transform_points(ctx, dtype)
  ct = _cotangent(ctx, x)
  xj, ctj = jnp.asarray(x), jnp.asarray(ct)
  extra = {"dtype": dtype.name}
  try:
    eager_h = np.asarray(fn(xj))
    eager_vjp = np.asarray(jax.vjp(fn, xj)[1](ctj)[0])
  except Exception as exc:
    return failed(f"the eager (uncompiled) spike function or its VJP raised {describe(exc)}", **extra)
  out = dict(_transformed(ctx, "transforms"))
  if isinstance(out["vjp"], Exception):
    gap = _raised(ctx, "jit", "jit", out["vjp"], xj)
    return failed(gap.diagnosis.message, **extra) if gap.status.failing else gap
  out["H"] = ctx.quantity(x, "H")  # the evaluator's compiled forward
  tol = _wiring_tolerance(ctx, dtype, ct, tolerances.K_TRANSFORM)
  c.compare("jit(fn) differs from the eager fn (its compiled lowering and eager implementation disagree)",
            x, eager_h, out["H"], 0.0, **extra)
  c.compare("the compiled VJP differs from the eager VJP", x, eager_vjp, out["vjp"], tol, **extra)
  try:
    out["eager_vmap"] = np.asarray(jax.vmap(fn)(xj))
  except Exception as exc:
    out["eager_vmap"] = exc
  checks = (("vmap", "jit(vmap(fn))", out["H"]), ("eager_vmap", "vmap(fn)", eager_h),
            ("vmap_2d", "vmap(fn) over the leading axis of a 2-d input", out["H"].reshape(8, -1)),
            ("vmap_grad", "vmap(grad(fn))", ctx.quantity(x, "g")))
  for key, what, expected in checks:
    if isinstance(out[key], Exception):
      gap = _raised(ctx, "vmap", what, out[key], xj)
      if gap.status.failing:
        c.note(gap.diagnosis.message, **extra)
      else:
        gaps.append(gap)
    elif key == "vmap_grad":
      c.compare(f"{what} is not g", x, expected, out[key], tol, **extra)
    else:
      c.compare(f"{what} differs from fn (a wrong batching rule)", x, expected, out[key], 0.0, **extra)
  if c.failures:
    return c.outcome("")
  if gaps:
    return gaps[0]
  return passed("jit = eager for H and the VJP; vmap(fn), jit(vmap(fn)), vmap over a 2-d leading axis = fn; "
                f"vmap(grad) = g ({dtype.name})",
                tolerance=f"H exact; VJP {tolerances.K_TRANSFORM:g}·eps·peak·(1 + |ct|)")


# ---------------------------------------------------------------------------------------------
# 3. derivative: g against finite differences of P
# ---------------------------------------------------------------------------------------------


def check_derivative(ctx: Context) -> Outcome:
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
  d = _worst(x, fd, g, tol, dtype="float64", step=h,
             reason=f"Richardson on central differences, h = 2^{int(math.log2(h))} ≈ 4e-3·width; tolerance = "
                    f"4·(|R(h) - R(2h)|/15 + 8·eps·|P|/h) + 1e-9·peak"
                    + (f" + {rtol:g}·|g| (declared mismatch of the primitive)" if rtol else ""))
  if d["failing_points"]:
    return failed(f"g is not the derivative of surrogate_fun at {d['failing_points']} of {d['points']} points", **d)
  return passed(f"g matches Richardson differences of P at {d['points']} points off the kinks", **d)


# ---------------------------------------------------------------------------------------------
# 4. quadrature
# ---------------------------------------------------------------------------------------------


def check_quadrature(ctx: Context) -> Outcome:
  """∫_a^b g = P(b) - P(a) (scipy.integrate.quad, kinks as breakpoints); total mass vs declared."""
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


# ---------------------------------------------------------------------------------------------
# 5. edge inputs
# ---------------------------------------------------------------------------------------------

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


def check_edge(ctx: Context) -> Outcome:
  """H, g, VJP, P, dP and H'' finite at every finite input, every dtype; limits at ±inf as declared."""
  findings: list[dict] = []
  skipped_q = [f"{q}: {ctx.evaluator.unavailable_reason(q)}" for q in ("P", "dP", "d2H")
               if q not in ctx.evaluator.fns]
  limits = ctx.reference.limits()
  for dtype in ctx.dtypes:
    x = np.concatenate(_edge_inputs(ctx, dtype))
    out = ctx.evaluator.evaluate(x)
    xf = x.astype(F64)
    finite_in = np.isfinite(xf)
    exact: dict[str, np.ndarray] = {}
    for q, values in out.items():
      if isinstance(values, Exception):
        if q == "d2H" and any(m in str(values).lower() for m in _GAP_MARKERS["second"]):
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
    return failed(findings[0]["message"], **first, all_failures=findings[:16], not_checked=skipped_q)
  what = "all 65,536 patterns for 16-bit types; explicit extremes and hypothesis draws for 32/64-bit"
  return passed(f"finite at every finite input ({what}); limits at ±inf as declared", not_checked=skipped_q,
                dtypes=[d.name for d in ctx.dtypes])


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


# ---------------------------------------------------------------------------------------------
# 6. low precision and 7. differential
# ---------------------------------------------------------------------------------------------


def _low_precision_rows(ctx: Context, dtype: np.dtype, compare_to_reference: bool, name: str = "g") -> dict:
  """g (or ``surrogate_grad``: name "sg") in a dtype against float64: the reference's × scale, or the
  candidate's own at the same rounded input."""
  x = _grid(ctx, dtype)
  near_jump = _near_jumps(ctx, x, dtype)
  x = x[~near_jump]
  xf = x.astype(F64)
  got = ctx.quantity(x, name).astype(F64)
  dg = ctx.ref(xf, "d2H")
  if compare_to_reference:
    expected = ctx.ref(xf, "g")
    alt = ctx.ref(_flushed(x, dtype), "g")
  else:
    expected = ctx.quantity(xf, name).astype(F64)
    alt = ctx.quantity(_flushed(x, dtype), name).astype(F64)
  expected = np.where(np.abs(got - alt) < np.abs(got - expected), alt, expected)
  k = (tolerances.K_DIFFERENTIAL if compare_to_reference else tolerances.K_LOW_PRECISION)[dtype.name]
  declared = ctx.reference.argument_condition(xf)
  cond = dg * xf if declared is None else abs(ctx.scale) * np.asarray(declared, F64)
  tol = tolerances.g_tolerance(dtype, k, ctx.peak, cond)
  detail = _worst(x, expected, got, tol, dtype=dtype.name, quantity=name, excluded_near_jumps=int(near_jump.sum()),
                  reason=f"{k:g}·eps({dtype.name})·(peak + |x·g'(x)|): rounding relative to the size of g, plus "
                         "the condition of g under rounding of its argument"
                         + ("" if declared is None else " (declared per-term condition of the sum)"))
  return detail


def check_low_precision(ctx: Context) -> Outcome:
  """g (the VJP) and ``surrogate_grad``, in float16, bfloat16, float32, each against the candidate's own
  float64 value at the same rounded input."""
  dtypes = [d for d in ctx.dtypes if d != F64]
  if F64 not in ctx.dtypes and dtypes:
    return skipped("float64 is not among the selected dtypes: no float64 value to compare against")
  names = [q for q in ("g", "sg") if q in ctx.evaluator.fns]
  rows = [_low_precision_rows(ctx, d, compare_to_reference=False, name=q) for q in names for d in dtypes]
  bad = [r for r in rows if r["failing_points"]]
  what = {"g": "g", "sg": "surrogate_grad"}
  if bad:
    r = bad[0]
    return failed(f"{what[r['quantity']]} in {r['dtype']} is {r['got']:.6g} at x = {r['worst_input']:g}, float64 "
                  f"gives {r['expected']:.6g} (tolerance {r['tolerance']:.3g})", **r, per_dtype=rows)
  return passed(f"{' and '.join(what[q] for q in names)} within the per-dtype tolerance of their float64 values in "
                + ", ".join(d.name for d in dtypes), per_dtype=rows)


def check_differential(ctx: Context) -> Outcome:
  """Forward and gradient against the reference (× scale), grid and hypothesis points, per dtype."""
  if ctx.is_reference:
    return skipped("the candidate is the reference")
  if ctx.candidate.surrogate is not None:
    return skipped("no reference: the candidate carries its own declaration")
  rows = [_low_precision_rows(ctx, d, compare_to_reference=True) for d in ctx.dtypes]
  kink_values = _kink_conventions(ctx)
  bad = [r for r in rows if r["failing_points"]]
  if bad:
    r = bad[0]
    ratio = r["got"] / r["expected"] if r["expected"] else math.nan
    return failed(f"g differs from the reference × {ctx.scale:g} in {r['dtype']}: at x = {r['worst_input']:g} "
                  f"expected {r['expected']:.8g}, got {r['got']:.8g} (ratio {ratio:.6g}, tolerance "
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


def _judged(check: Callable[[Context], Outcome]) -> Callable[[Context], Outcome]:
  """A reference quantity that cannot be computed at the claimed parameters is an ``error`` outcome."""

  @functools.wraps(check)
  def run(ctx: Context) -> Outcome:
    try:
      return check(ctx)
    except ReferenceUncomputable as exc:
      return errored(str(exc))

  return run


CHECKS: dict[str, Callable[[Context], Outcome]] = {
    name: _judged(check)
    for name, check in (
        ("forward", check_forward),
        ("autodiff", check_autodiff),
        ("forward_mode", check_forward_mode),
        ("second_order", check_second_order),
        ("transforms", check_transforms),
        ("derivative", check_derivative),
        ("quadrature", check_quadrature),
        ("edge", check_edge),
        ("low_precision", check_low_precision),
        ("differential", check_differential),
        ("parameters", check_parameters),
    )
}
