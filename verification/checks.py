"""The checks. Each takes a :class:`Context` and returns an :class:`Outcome` (pass/fail/skip).

An exception escaping a check (from candidate code) is turned into an ``error`` result by the
runner. Every comparison states its tolerance and the reason for it in the detail.
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

F64 = np.dtype(np.float64)


@dataclasses.dataclass
class Outcome:
  status: str  # "pass" | "fail" | "skip"
  detail: dict[str, Any]


def passed(message: str, /, **detail: Any) -> Outcome:
  detail.pop("message", None)
  return Outcome("pass", {"message": message, **detail})


def failed(message: str, /, **detail: Any) -> Outcome:
  detail.pop("message", None)
  return Outcome("fail", {"message": message, **detail})


def skipped(message: str) -> Outcome:
  return Outcome("skip", {"message": message})


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

  @functools.cached_property
  def scale(self) -> float:
    return float(self.candidate.scale)

  @functools.cached_property
  def peak(self) -> float:
    return self.reference.peak() * abs(self.scale)

  @functools.cached_property
  def length(self) -> float:
    return self.reference.length_scale()

  @functools.cached_property
  def step(self) -> float:
    return numerics.fd_step(self.length)

  @functools.cached_property
  def ref_eval(self) -> Evaluator:
    return self.evaluator if self.is_reference else reference_evaluator(self.reference)

  def ref(self, x: np.ndarray, quantity: str) -> np.ndarray:
    """A reference quantity at x, evaluated in float64 (times the candidate's scale for g, P, g')."""
    out = self.ref_eval.evaluate(np.asarray(x, F64), (quantity,))[quantity]
    if isinstance(out, Exception):
      raise RuntimeError(f"the reference failed: {out}")
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


def _worst(x: np.ndarray, expected: np.ndarray, got: np.ndarray, tol: np.ndarray, **extra: Any) -> dict[str, Any]:
  """Detail of a comparison: the input where |got - expected| / tolerance is largest."""
  err = np.abs(np.asarray(got, F64) - np.asarray(expected, F64))
  both_nan = np.isnan(got.astype(F64)) & np.isnan(expected.astype(F64))
  same_inf = np.isinf(got.astype(F64)) & (got.astype(F64) == expected.astype(F64))
  err = np.where(both_nan | same_inf, 0.0, np.where(np.isnan(err), np.inf, err))
  ratio = err / np.broadcast_to(tol, err.shape)
  i = int(np.argmax(ratio)) if ratio.size else 0
  return {
      "worst_input": float(np.asarray(x, F64)[i]) if ratio.size else None,
      "expected": float(np.asarray(expected, F64)[i]) if ratio.size else None,
      "got": float(np.asarray(got, F64)[i]) if ratio.size else None,
      "tolerance": float(np.broadcast_to(tol, err.shape)[i]) if ratio.size else None,
      "error": float(err[i]) if ratio.size else None,
      "failing_points": int(np.sum(ratio > 1)),
      "points": int(ratio.size),
      **extra,
  }


def _grid(ctx: Context, dtype: np.dtype, span: float = 16.0, n: int = 8193) -> np.ndarray:
  """Points for value comparisons in a dtype: all 16-bit patterns within ±span·width, or a grid."""
  L = ctx.length
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


def _call_forward(ctx: Context, x: np.ndarray) -> np.ndarray:
  try:
    return ctx.evaluator.forward(x)  # compiled once per shape (op-by-op dispatch costs far more)
  except Exception as exc:
    raise CandidateError(f"the spike function raised {describe(exc)} on a {x.dtype} input of shape {x.shape}") from exc


def check_forward(ctx: Context) -> Outcome:
  """H exact at 0, -0.0, ±tiny, ±subnormal, ±huge, ±inf and random values; dtype and shape kept."""
  problems, conventions = [], []
  for dtype in ctx.dtypes:
    x = _forward_inputs(ctx, dtype)
    xf = x.astype(F64)
    exact = np.where(np.signbit(xf) & (xf != 0), 0.0, 1.0)
    flushed = _flushed(x, dtype)
    as_flushed = np.where(np.signbit(flushed) & (flushed != 0), 0.0, 1.0)
    # 1-d through the evaluator (its compiled bundle); 0-d and 2-d in float32 and float64.
    calls = [(x, ctx.evaluator.evaluate(x, ("H",))["H"])]
    if dtype.itemsize >= 4:
      calls += [(xs, _call_forward(ctx, xs)) for xs in (x[:1].reshape(()), x[:32].reshape(4, 8))]
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
        entry = {"dtype": dtype.name, "shape": list(np.shape(xs)), "worst_input": float(xf[i]),
                 "expected": float(exact[i]), "got": float(got[i]), "tolerance": 0.0,
                 "failing_points": int(bad.sum())}
        # differs only at zeros (also subnormals the platform flushes to zero): the x > 0 convention
        (conventions if np.all(flushed[:n][bad] == 0) else problems).append(entry)
  if problems:
    p = problems[0]
    msg = p.get("message") or f"H({p['worst_input']:g}) = {p['got']:g} in {p['dtype']}, expected {p['expected']:g}"
    return failed(f"forward is not H(x): {msg}", **p, all_failures=problems[:8])
  if conventions:
    c = conventions[0]
    return failed("convention: H(0) = 0 (threshold x > 0), the specification has H(0) = H(-0.0) = 1",
                  category="convention", **c)
  return passed("H exact for zeros, subnormals (as the platform flushes them), tiny, huge, inf and random "
                f"values in {', '.join(d.name for d in ctx.dtypes)}; 0-d, 1-d and 2-d shapes kept")


# ---------------------------------------------------------------------------------------------
# 2. autodiff wiring
# ---------------------------------------------------------------------------------------------


def _wiring_points(ctx: Context, dtype, n: int = 64) -> np.ndarray:
  margin = 8 * ctx.step
  x = numerics.sample_points(ctx.length, ctx.reference.kinks(), margin, n=n, seed=ctx.seed, span=4.0)
  return x.astype(dtype)


def _autodiff_pieces(fn: Callable, x: jax.Array, ct: jax.Array, h: float, second: bool) -> dict[str, Callable]:
  pieces = {
      "g": lambda: jax.vjp(fn, x)[1](jnp.ones_like(x))[0],
      "vjp": lambda: jax.vjp(fn, x)[1](ct)[0],
      "jvp": lambda: jax.jvp(fn, (x,), (ct,))[1],
      "jacfwd": lambda: jax.jacfwd(fn)(x[:16]),
      "vmap_grad": lambda: jax.vmap(jax.grad(fn))(x),
  }
  if second:
    pieces["second"] = lambda: jax.vmap(jax.grad(jax.grad(fn)))(x)
    pieces["g_plus"] = lambda: jax.vmap(jax.grad(fn))(x + h)
    pieces["g_minus"] = lambda: jax.vmap(jax.grad(fn))(x - h)
  return pieces


def _all_pieces(fn: Callable, x: jax.Array, ct: jax.Array, h: float, *, second: bool) -> dict[str, jax.Array]:
  return {k: f() for k, f in _autodiff_pieces(fn, x, ct, h, second).items()}


def _run_pieces(ctx: Context, x: jax.Array, ct: jax.Array, h: float, second: bool) -> dict[str, np.ndarray | Exception]:
  """All pieces in one compiled call (shared by a surrogate's parameter sets, see Evaluator.call); if
  that fails, each on its own so the failing one is named."""
  try:
    out = ctx.evaluator.call(_all_pieces, x, ct, h, second=second)
    return {k: np.asarray(v).astype(F64) for k, v in out.items()}
  except Exception:
    results: dict[str, np.ndarray | Exception] = {}
    for k, f in _autodiff_pieces(ctx.candidate.fn, x, ct, h, second).items():
      try:
        results[k] = np.asarray(jax.jit(f)()).astype(F64)
      except Exception as exc:
        results[k] = exc
    return results


_PIECE_FAILURE = {
    "g": "VJP raised", "vjp": "VJP raised", "jvp": "forward mode (jvp) raised", "jacfwd": "jacfwd raised",
    "vmap_grad": "vmap(grad) raised", "second": "second order (grad of grad) raised",
}


def check_autodiff(ctx: Context) -> Outcome:
  """VJP with random cotangents = ct·g; JVP = g·t; jit = eager; vmap = per-element; jacfwd; 2nd order."""
  c = ctx.candidate
  if c.backend == "torch":
    from verification import torch_checks  # imports torch

    o = torch_checks.check_autodiff(ctx)
    return Outcome(o.status.value, o.diagnosis.to_json())
  if c.backend != "jax":
    return skipped(f"needs JAX transforms: {c.label} is evaluated through torch autograd")
  fn = c.fn
  failures: list[dict] = []

  def note(what: str, detail: dict | None = None, **extra: Any) -> None:
    failures.append({"message": what, **(detail or {}), **extra})

  def compare(what: str, x, expected, got, tol, **extra) -> None:
    d = _worst(x, np.asarray(expected, F64).reshape(-1), np.asarray(got, F64).reshape(-1), tol, **extra)
    if d["failing_points"]:
      note(what, d)

  for dtype in (F64,):
    x = _wiring_points(ctx, dtype)
    rng = np.random.default_rng(ctx.seed + 1)
    ct = (rng.normal(size=x.shape) * 2.0 + 0.5).astype(dtype)
    xj, ctj = jnp.asarray(x), jnp.asarray(ct)
    # Same computation in the same dtype, only the final product rounds differently: a few ulp.
    tol = tolerances.K_WIRING * tolerances.eps(dtype) * ctx.peak * (1 + np.abs(ct.astype(F64)))
    out = _run_pieces(ctx, xj, ctj, ctx.step, second=dtype == F64)
    errors = {k: v for k, v in out.items() if isinstance(v, Exception)}
    for k, exc in errors.items():
      if k in _PIECE_FAILURE and not (k == "vjp" and "g" in errors):
        note(f"{_PIECE_FAILURE[k]} {describe(exc)}", dtype=dtype.name)
    if "g" in errors:
      continue
    g = out["g"]
    extra = {"dtype": dtype.name}
    if "vjp" not in errors:
      compare("the VJP is not ct·g(x) for a random cotangent (the gradient ignores or misuses the cotangent)",
              x, ct * g, out["vjp"], tol, **extra)
      try:
        eager = np.asarray(jax.vjp(fn, xj[:4])[1](ctj[:4])[0]).astype(F64)
        compare("jit(VJP) differs from the eager VJP", x[:4], eager, out["vjp"][:4], 4 * tol[:4], **extra)
      except Exception as exc:
        note(f"the eager VJP raised {describe(exc)}", **extra)
    if "sg" in ctx.evaluator.fns:
      sg = ctx.quantity(x, "sg").astype(F64)
      compare("the spike function's gradient is not its surrogate_grad", x, sg, g, tol, **extra)
    if "jvp" not in errors:
      compare("the JVP is not g(x)·t", x, g * ct, out["jvp"], tol, **extra)
    if "jacfwd" not in errors:
      compare("jacfwd is not diag(g)", np.repeat(x[:16], 16), np.diag(g[:16]), out["jacfwd"],
              np.full(256, tolerances.K_WIRING * tolerances.eps(dtype) * ctx.peak), **extra)
    if "vmap_grad" not in errors:
      compare("vmap(grad) of the scalar form is not g", x, g, out["vmap_grad"], 4 * tol, **extra)
      try:
        per = np.array([float(jax.grad(fn)(xj[i])) for i in range(2)])
        compare("vmap(grad) differs from per-element grad", x[:2], per, out["vmap_grad"][:2], 4 * tol[:2], **extra)
      except Exception as exc:
        note(f"grad of the scalar form raised {describe(exc)}", **extra)
    second = out.get("second")
    if isinstance(second, np.ndarray):
      if not np.all(np.isfinite(second)):
        i = int(np.argmax(~np.isfinite(second)))
        note("second derivative of the spike function is not finite", worst_input=float(x[i]),
             got=float(second[i]), **extra)
      elif not any(isinstance(out.get(k), Exception) for k in ("g_plus", "g_minus")):
        fd = (out["g_plus"] - out["g_minus"]) / (2 * ctx.step)
        # Central differences of g at h = 4e-3 width: error about h^2 |g'''| / 6, below 1e-5 of peak/width.
        tol2 = 1e-4 * ctx.peak / ctx.length + 1e-4 * np.abs(fd)
        compare("second derivative of the spike function is not g'(x)", x, fd, second, tol2,
                reason="central differences of g, h = 4e-3·width", **extra)
  if failures:
    return failed(failures[0]["message"], **failures[0], all_failures=failures[:8])
  return passed("VJP = ct·g for random cotangents, JVP = g·t, jacfwd = diag(g), jit = eager, vmap = per-element, "
                "second order = g' (float64)",
                tolerance=f"{tolerances.K_WIRING:g}·eps·peak·(1 + |ct|)")


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
  value, err = numerics.integrate_real_line(g, cut, kinks)
  tol = 10 * err + 1e-8 * abs(declared) + 1e-12
  ok = abs(value - declared) <= tol
  return {"message": f"mass {value:.12g} vs declared {declared:.12g}" if ok else
          f"total mass ∫g = {value:.12g} differs from the declared {declared:.12g}",
          "declared": declared, "got": value, "expected": declared, "tolerance": tol, "ok": ok}


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
    return failed(findings[0]["message"], **findings[0], all_failures=findings[:16], not_checked=skipped_q)
  what = "all 65,536 patterns for 16-bit types; explicit extremes and hypothesis draws for 32/64-bit"
  return passed(f"finite at every finite input ({what}); limits at ±inf as declared", not_checked=skipped_q,
                dtypes=[d.name for d in ctx.dtypes])


def _limit_findings(ctx: Context, dtype: np.dtype, limits: surrogates.Limits) -> list[dict]:
  x = np.array([-np.inf, np.inf], dtype)
  out = ctx.evaluator.evaluate(x, ("g", "sg", "P"))
  expected = {"g": (limits.g_minus, limits.g_plus), "sg": (limits.g_minus, limits.g_plus),
              "P": (limits.p_minus, limits.p_plus)}
  found = []
  for q, values in out.items():
    if isinstance(values, Exception):
      continue
    for i, side in enumerate(("-inf", "+inf")):
      want = ctx.scale * expected[q][i]
      got = float(values.astype(F64)[i])
      scale_of = ctx.peak * (ctx.length if q == "P" else 1.0)
      tol = tolerances.K_LIMIT * tolerances.eps(dtype) * max(scale_of, abs(want) if math.isfinite(want) else 0)
      ok = (got == want) if math.isinf(want) else (math.isfinite(got) and abs(got - want) <= tol)
      if not ok:
        want_r = float(np.asarray(want, F64).astype(dtype)) if math.isfinite(want) else want
        if math.isfinite(want_r) and abs(got - want_r) <= tol:
          continue
        found.append({"quantity": q, "dtype": dtype.name, "worst_input": float(x[i]), "expected": want, "got": got,
                      "tolerance": tol, "message": f"{_EDGE_QUANTITIES[q]} at x = {side} is {got} ({dtype.name}); "
                                                   f"its limit is {want}"})
  return found


# ---------------------------------------------------------------------------------------------
# 6. low precision and 7. differential
# ---------------------------------------------------------------------------------------------


def _low_precision_rows(ctx: Context, dtype: np.dtype, compare_to_reference: bool) -> dict:
  x = _grid(ctx, dtype)
  near_jump = _near_jumps(ctx, x, dtype)
  x = x[~near_jump]
  xf = x.astype(F64)
  name = ctx.gradient_name()
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
  detail = _worst(x, expected, got, tol, dtype=dtype.name, excluded_near_jumps=int(near_jump.sum()),
                  reason=f"{k:g}·eps({dtype.name})·(peak + |x·g'(x)|): rounding relative to the size of g, plus "
                         "the condition of g under rounding of its argument"
                         + ("" if declared is None else " (declared per-term condition of the sum)"))
  return detail


def check_low_precision(ctx: Context) -> Outcome:
  """g in float16, bfloat16, float32 against the candidate's own float64 value (same rounded input)."""
  dtypes = [d for d in ctx.dtypes if d != F64]
  if F64 not in ctx.dtypes and dtypes:
    return skipped("float64 is not among the selected dtypes: no float64 value to compare against")
  rows = [_low_precision_rows(ctx, d, compare_to_reference=False) for d in dtypes]
  bad = [r for r in rows if r["failing_points"]]
  if bad:
    r = bad[0]
    return failed(f"g in {r['dtype']} is {r['got']:.6g} at x = {r['worst_input']:g}, float64 gives "
                  f"{r['expected']:.6g} (tolerance {r['tolerance']:.3g})", **r, per_dtype=rows)
  return passed("g within the per-dtype tolerance of its float64 value in " + ", ".join(d.name for d in dtypes),
                per_dtype=rows)


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
    return passed(f"matches the reference × {ctx.scale:g}; convention at the jump x = {k['x']:g}: g = {k['got']:g} "
                  f"(reference {k['expected']:g})", per_dtype=rows, kinks=kink_values, category="convention")
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


CHECKS: dict[str, Callable[[Context], Outcome]] = {
    "forward": check_forward,
    "autodiff": check_autodiff,
    "derivative": check_derivative,
    "quadrature": check_quadrature,
    "edge": check_edge,
    "low_precision": check_low_precision,
    "differential": check_differential,
    "parameters": check_parameters,
}
