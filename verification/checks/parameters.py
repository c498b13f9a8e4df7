"""The parameters check: derivatives of a candidate in its surrogate's parameters θ.

For a candidate with a ``factory(**params) -> spike function`` (rebuilt at traced parameter values,
with the reference's parameter names), for every parameter that may be traced (static ones, such
as a number of terms, are left out), in float64:

1. H has derivative exactly 0 in θ (H does not depend on θ), at θ and at every value in a batch;
2. d/dθ of the VJP ct·g(x; θ), by reverse mode over reverse mode at scalar points, equals
   ct·∂g/∂θ with ∂g/∂θ from Richardson-extrapolated central differences in θ of the candidate's own
   g (tolerance derived as in the derivative check);
3. the same quantities under ``jit`` and under ``vmap`` over a batch of θ values agree;
4. g built at a traced θ equals g built at the same θ given as a Python number, at θ and at a
   value a quarter away (a parameter read with ``float()`` and a fallback is ignored when traced);
5. per neuron: θ an array of four values broadcast against x (one per neuron of a (B, C) input, one per
   channel of an (N, C, H, W) input) gives at each element the reference's g (× scale) at that element's
   own value, within the differential check's float64 tolerance (a candidate that reduces the array, takes
   one element or broadcasts it along another axis fails).

Reverse mode only (``jax.grad``), so candidates with ``jax.custom_vjp`` or ``custom_gradient`` (no
forward mode) are checked too. Candidates without a factory are skipped.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from verification.core import evaluate, numerics, tolerances
from verification.core.evaluate import describe
from verification.core.tape import recorded
from verification.results import Outcome, failed, passed, skipped

F64 = np.dtype(np.float64)
EPS = float(np.finfo(np.float64).eps)
#: Offsets of the batch, in units of the step h: the finite-difference stencil around θ.
_STENCIL = (-2, -1, 1, 2)


def theta_step(value: float) -> float:
  """h ≈ 1e-3·|θ| (1e-3 at θ = 0) rounded down to a power of two, so θ ± h is exact.

  Central differences then have a truncation error ~h²|g'''|/6 ≈ 1e-7 relative before Richardson
  extrapolation and a rounding error ~eps·|g|/h ≈ 1e-13 relative.
  """
  return 2.0 ** math.floor(math.log2(1e-3 * (abs(value) or 1.0)))


#: The points are padded to this many (repeating them), so every parameter set of a surrogate shares
#: its programs.
POINTS = 96


def _quantities(factory: Callable[..., Any], fixed: dict[str, Any], name: str) -> Callable[..., dict[str, Any]]:
  """(free, θ, x, ct) -> dH/dθ, g, d(ct·g)/dθ per point: scalar reverse mode, vmapped over the points.
  ``fixed`` parameters are constants of the program, ``free`` ones are its arguments."""

  def at(free: dict[str, Any], t: jax.Array, x: jax.Array, ct: jax.Array) -> dict[str, Any]:
    def spike(v: jax.Array, tt: jax.Array) -> jax.Array:
      return factory(**{**fixed, **free, name: tt})(v)

    g_of = lambda v, tt: jax.grad(spike)(v, tt)
    return {
        "dH": jax.vmap(lambda v: jax.grad(spike, argnums=1)(v, t))(x),
        "g": jax.vmap(lambda v: g_of(v, t))(x),
        "dvjp": jax.vmap(lambda v, w: jax.grad(lambda tt: w * g_of(v, tt))(t))(x, ct),
    }

  return at


def _compiled(at: Callable[..., dict[str, Any]]) -> tuple[Callable, Callable, Callable]:
  """(jit of ``at`` and of its vmap over θ in one program; each on its own, to name the one that fails)."""
  batched = jax.vmap(at, in_axes=(None, 0, None, None))
  both = jax.jit(lambda free, t, ts, x, ct: (at(free, t, x, ct), batched(free, ts, x, ct)))
  return both, jax.jit(at), jax.jit(batched)


@functools.lru_cache(maxsize=256)
def _shared_programs(factory: type, static: tuple, name: str) -> tuple[Callable, Callable, Callable]:
  return _compiled(_quantities(factory, dict(static), name))


def _programs(ctx: Any, name: str) -> tuple[tuple[Callable, Callable, Callable], dict[str, Any], str | None]:
  """(:func:`_compiled` programs, free parameters, a name of the shared programs or None). A reference
  surrogate's class as the factory: its other dynamic parameters are arguments too, so all its parameter sets
  share one program (compiled once per parameter name). Any other factory is given its parameters as
  constants."""
  c = ctx.candidate
  params = dict(c.params)
  dynamic = set(type(ctx.reference).dynamic_parameters())
  if c.factory is type(ctx.reference) and c.factory in evaluate.REGISTERED:
    free = {k: float(v) for k, v in params.items() if k in dynamic and k != name}
    static = tuple(sorted((k, v) for k, v in params.items() if k not in dynamic))
    with contextlib.suppress(TypeError):  # an unhashable static value: not shared
      return _shared_programs(c.factory, static, name), free, _shared_name(c.factory, static, name)
  return _compiled(_quantities(c.factory, {k: v for k, v in params.items() if k != name}, name)), {}, None


def _shared_name(factory: type, static: tuple, name: str) -> str:
  """The name of a reference class's shared programs in parameter ``name`` across processes
  (:func:`verification.core.evaluate.kept`)."""
  return f"{__name__} {factory.__module__}.{factory.__qualname__}{static!r} in {name}"


def _call(ctx: Any, program: Callable, shared: str | None, what: str, *args: Any) -> Any:
  """``program(*args)``; a shared program of the reference target's worker kept across runs."""
  if shared is not None and ctx.evaluator.keeps_programs:
    return evaluate.kept(program, f"{what} of {shared}", *args)
  return program(*args)


def _worst(x: np.ndarray, expected: np.ndarray, got: np.ndarray, tol: np.ndarray) -> dict[str, Any]:
  err = np.abs(got - expected)
  err = np.where(np.isnan(err), np.inf, err)
  ratio = err / tol
  i = int(np.argmax(ratio))
  return {"worst_input": float(x[i]), "expected": float(expected[i]), "got": float(got[i]),
          "tolerance": float(tol[i]), "failing_points": int(np.sum(ratio > 1)), "points": int(x.size)}


def _check_one(ctx: Any, name: str, x: np.ndarray, ct: np.ndarray) -> tuple[str, dict[str, Any]] | None:
  """The first problem with parameter ``name`` (message, detail), or None."""
  c = ctx.candidate
  params = dict(c.params)
  theta = float(params[name])
  h = theta_step(theta)
  delta = 0.25 * (abs(theta) or 1.0)
  thetas = np.array([theta, theta + delta, *(theta + k * h for k in _STENCIL)])
  m = x.size
  xp, ctp = np.resize(x, max(POINTS, m)), np.resize(ct, max(POINTS, m))
  where = f"'{name}' = {theta:g}"
  outputs = _parameter_outputs(ctx, name, where, theta, thetas, xp, ctp, m)
  if isinstance(outputs, str):
    return outputs, {}
  single, batch = outputs

  # 1. H does not depend on θ: exactly 0
  for label, dH, at in (("jit", single["dH"][None], thetas[:1]), ("vmap", batch["dH"], thetas)):
    nonzero = dH != 0
    if nonzero.any():
      j, i = np.argwhere(nonzero)[0]
      return (f"the output H depends on '{name}': dH/d{name} = {dH[j, i]:.6g} at x = {x[i]:g}, {name} = {at[j]:g} "
              f"({label}); H(x) is a step that does not depend on the parameters, so this leaks the parameter's "
              "tangent into the forward and into every derivative through it",
              {"worst_input": float(x[i]), "expected": 0.0, "got": float(dH[j, i]), "tolerance": 0.0,
               "failing_points": int(nonzero.sum()), "reason": "exact: H does not depend on the parameters"})

  # 4. traced θ = θ as a Python number, at θ and at θ + Δ
  # the condition term |x·g'(x)| from the reference at θ, doubled for θ + Δ (g' of a width-like
  # parameter scales at most like (1.25)² there)
  condition = 2 * np.abs(x * ctx.ref(x, "d2H"))
  for j, value in enumerate(thetas[:2]):
    try:
      concrete = _concrete_g(ctx, name, float(value), xp, m)
    except Exception as exc:
      return f"the factory at {name} = {value:g} (a number) cannot be differentiated: {describe(exc)}", {}
    traced = single["g"] if j == 0 else batch["g"][1]
    size = max(ctx.peak, float(np.max(np.abs(concrete))))
    tol = tolerances.g_tolerance(F64, tolerances.K_DIFFERENTIAL["float64"], size, condition)
    d = _worst(x, concrete, traced, tol)
    if d["failing_points"]:
      return (f"'{name}' is not used as traced: with {name} = {value:g} traced, g({d['worst_input']:g}) = "
              f"{d['got']:.8g}; built with {name} = {value:g} as a number, g = {d['expected']:.8g} (a parameter "
              "read with float() or a Python branch falls back to another value when traced)",
              {**d, "reason": "same computation: K·eps·(peak + |x·g'(x)|) in float64"})

  # 3. jit = vmap (same kernel, vectorised: a few ulp)
  dv = single["dvjp"]
  tol = 16 * EPS * (np.max(np.abs(dv)) + np.abs(dv)) + 1e-300
  d = _worst(x, dv, batch["dvjp"][0], tol)
  if d["failing_points"]:
    return (f"d(VJP)/d{name} under vmap over {name} differs from jit at x = {d['worst_input']:g}: "
            f"{d['got']:.8g} vs {d['expected']:.8g}", {**d, "reason": "16 eps of the largest value"})
  d = _worst(x, single["g"], batch["g"][0], 16 * EPS * (np.max(np.abs(single["g"])) + np.abs(single["g"])) + 1e-300)
  if d["failing_points"]:
    return (f"g under vmap over {name} differs from jit at x = {d['worst_input']:g}: {d['got']:.8g} vs "
            f"{d['expected']:.8g}", {**d, "reason": "16 eps of the largest value"})

  # 2. d(ct·g)/dθ = ct·(Richardson of central differences of g in θ)
  f = {k: batch["g"][2 + i] for i, k in enumerate(_STENCIL)}
  c1, c2 = (f[1] - f[-1]) / (2 * h), (f[2] - f[-2]) / (4 * h)
  fd, est = c1 + (c1 - c2) / 3, np.abs(c1 - c2) / 3
  g_size = np.max(np.abs(np.stack(list(f.values()))), axis=0)
  tol_fd = 4 * est + 64 * EPS * g_size / h + 1e-9 * ctx.peak / (abs(theta) or 1.0)
  ct_abs = np.abs(ct)
  d = _worst(x, ct * fd, dv, tol_fd * ct_abs)
  if d["failing_points"]:
    i = int(np.argmin(np.abs(x - d["worst_input"])))
    flipped = fd[i] != 0 and abs(dv[i] + ct[i] * fd[i]) <= tol_fd[i] * ct_abs[i]
    what = "has the wrong sign" if flipped else "is not the derivative of g in it"
    return (f"d(VJP)/d{name} = ct·dg/d{name} {what}: at x = {d['worst_input']:g}, ct = {ct[i]:.4g}, autodiff gives "
            f"{d['got']:.8g}, central differences of g in {name} give {d['expected']:.8g}",
            {**d, "step": h, "reason": f"Richardson on central differences in {name}, h = 2^{int(math.log2(h))} ≈ "
                                       f"1e-3·|{name}|; tolerance = |ct|·(4·|R(h) - R(2h)|/3 + 64·eps·|g|/h + "
                                       "1e-9·peak/|θ|)"})
  return None


@recorded
def _parameter_outputs(ctx: Any, name: str, where: str, theta: float, thetas: np.ndarray, xp: np.ndarray,
                       ctp: np.ndarray, m: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | str:
  """(at θ, over the batch of θ) of :func:`_quantities`, or why they cannot be computed (``where`` names the
  parameter and its value)."""
  (both, single_fn, batch_fn), free, shared = _programs(ctx, name)

  def numpy(out: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, F64)[..., :m] for k, v in out.items()}

  try:
    return tuple(map(numpy, _call(ctx, both, shared, "both", free, np.float64(theta), thetas, xp, ctp)))
  except Exception:  # which transform fails
    try:
      single = numpy(single_fn(free, np.float64(theta), xp, ctp))
    except Exception as exc:
      return f"the spike function cannot be differentiated in {where} under jit: {describe(exc)}"
    try:
      return single, numpy(batch_fn(free, thetas, xp, ctp))
    except Exception as exc:
      return f"the spike function cannot be differentiated in {where} under vmap over '{name}': {describe(exc)}"


@recorded
def _concrete_g(ctx: Any, name: str, value: float, xp: np.ndarray, m: int) -> np.ndarray:
  """g of the factory built with the parameter as a Python number, eagerly (nothing compiled per value); for
  the reference target's own surrogates, compiled with the number a constant of the program, which is kept
  across runs (:func:`verification.core.evaluate.kept`: the same operations, its parameter sets are fixed)."""
  factory = ctx.candidate.factory(**{**dict(ctx.candidate.params), name: value})
  g = jax.vmap(jax.grad(factory))
  if ctx.evaluator.keeps_programs and ctx.candidate.factory in evaluate.REGISTERED:
    return np.asarray(evaluate.kept(jax.jit(g), f"{__name__} concrete g of {factory!r}", xp), F64)[:m]
  return np.asarray(g(jax.device_put(xp)), F64)[:m]


def _off_moving_kinks(ctx: Any, name: str, x: np.ndarray, margin: float) -> np.ndarray:
  """The points at least ``margin`` from every kink of the reference at each θ of the stencil: where a
  kink moves with θ (SparseFastSigmoid's jump at x = b), a stencil across it differentiates the jump."""
  theta = float(ctx.reference.params[name])
  h = theta_step(theta)
  keep = np.ones(x.shape, bool)
  for k in (0, *_STENCIL):
    try:
      moved = type(ctx.reference)(**{**ctx.reference.params, name: theta + k * h})
    except ValueError:  # θ + kh outside the domain: the stencil is judged at the points that exist
      continue
    for p in moved.kinks():
      keep &= np.abs(x - p) >= margin
  return keep


#: Per-neuron parameter values, as factors of the claimed θ (the first four valid ones are used), and the two
#: layouts they are broadcast in: one value per neuron of a (B, C) input (shape (C,)), and one per channel
#: of an (N, C, H, W) input (shape (C, 1, 1)).
_NEURON_FACTORS = (0.5, 1.0, 1.5, 2.0, 0.75, 1.25, 3.0)
NEURONS = 4
_LAYOUTS = {"per_neuron": ((24, NEURONS), (NEURONS,)), "per_channel": ((2, NEURONS, 3, 4), (NEURONS, 1, 1))}


def _per_neuron_program(factory: Callable[..., Any], fixed: dict[str, Any], name: str) -> Callable:
  """(free, values, x per layout) -> g per layout, the parameter ``name`` an array broadcast against x."""

  def at(free: dict[str, Any], values: Any, xs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for layout, (_, shape) in _LAYOUTS.items():
      fn = factory(**{**fixed, **free, name: values.reshape(shape)})
      out[layout] = jax.grad(lambda v, f=fn: f(v).sum())(xs[layout])
    return out

  return jax.jit(at)


@functools.lru_cache(maxsize=256)
def _shared_per_neuron(factory: type, static: tuple, name: str) -> Callable:
  return _per_neuron_program(factory, dict(static), name)


@recorded
def _per_neuron_g(ctx: Any, name: str, values: np.ndarray, xs: dict[str, np.ndarray]) -> dict[str, Any] | str:
  """g of the factory built with ``name`` an array of per-neuron ``values``, in each layout; or why it cannot
  be computed."""
  c = ctx.candidate
  params = dict(c.params)
  dynamic = set(type(ctx.reference).dynamic_parameters())
  program, free, shared = None, {}, None
  if c.factory is type(ctx.reference) and c.factory in evaluate.REGISTERED:
    free = {k: float(v) for k, v in params.items() if k in dynamic and k != name}
    static = tuple(sorted((k, v) for k, v in params.items() if k not in dynamic))
    with contextlib.suppress(TypeError):
      program, shared = _shared_per_neuron(c.factory, static, name), _shared_name(c.factory, static, name)
  if program is None:
    program = _per_neuron_program(c.factory, {k: v for k, v in params.items() if k != name}, name)
  try:
    return {k: np.asarray(v, F64) for k, v in _call(ctx, program, shared, "per-neuron", free, values, xs).items()}
  except Exception as exc:
    return f"the spike function built with '{name}' an array of {values.size} per-neuron values raised {describe(exc)}"


@functools.lru_cache(maxsize=256)
def _reference_takes_arrays(cls: type, params: tuple, name: str) -> bool:
  """Whether the reference surrogate itself accepts ``name`` as an array broadcast against x in both layouts
  (traced only: nothing is computed). Where it does not, per-neuron values are not judged for it.

  The answer is the reference's alone: kept with the reference's values (a judge saves it, every process reads
  it: :mod:`verification.core.cache`), so a later run traces nothing for it; the worker and the judge read the
  same answer and pose the same per-neuron question."""
  from verification.core import cache

  key = cache.values_key(f"{cls.__module__}.{cls.__qualname__}{params!r} takes {name} as an array",
                         np.zeros(0, F64))
  kept = cache.load_values(key)
  if kept is not None and set(kept) == {"answer"}:
    return bool(kept["answer"].all())
  try:
    for xshape, pshape in _LAYOUTS.values():
      s = cls(**{**dict(params), name: np.full(pshape, float(dict(params)[name]))})
      jax.eval_shape(jax.grad(lambda v, s=s: s(v).sum()), jax.ShapeDtypeStruct(xshape, F64))
  except Exception:
    answer = False
  else:
    answer = True
  cache.save_values(key, {"answer": np.array([answer])})
  return answer


def _per_neuron(ctx: Any, name: str, x: np.ndarray) -> tuple[str, dict[str, Any]] | None:
  """The parameter as an array broadcast against x (per neuron, per channel): g at each element against the
  reference's × scale at that element's own value; None where it matches (or cannot be posed)."""
  from verification.checks._context import reference_evaluator

  theta = float(ctx.reference.params[name])
  with contextlib.suppress(TypeError):  # unhashable parameters: judged
    if not _reference_takes_arrays(type(ctx.reference), tuple(sorted(ctx.reference.params.items())), name):
      return None
  refs: list[Any] = []
  for f in _NEURON_FACTORS:
    with contextlib.suppress(ValueError, TypeError):
      refs.append((theta * f, type(ctx.reference)(**{**ctx.reference.params, name: theta * f})))
    if len(refs) == NEURONS:
      break
  if len(refs) < NEURONS or len({v for v, _ in refs}) < 2:
    return None  # fewer than four distinct valid values (θ = 0, say): nothing per neuron to tell apart
  margin = 8 * ctx.step
  keep = np.ones(x.shape, bool)
  for _, r in refs:
    for k in r.kinks():
      keep &= np.abs(x - k) >= margin
  pool = x[keep]
  if pool.size < 8:
    return None
  values = np.array([v for v, _ in refs])
  xs = {layout: np.resize(pool, math.prod(shape)).reshape(shape) for layout, (shape, _) in _LAYOUTS.items()}
  got = _per_neuron_g(ctx, name, values, xs)
  if isinstance(got, str):
    return got, {}
  for layout, (shape, pshape) in _LAYOUTS.items():
    v = xs[layout]
    which = np.broadcast_to(np.arange(NEURONS).reshape(pshape), shape)
    expected, cond = np.zeros(shape), np.zeros(shape)
    for j, (_, r) in enumerate(refs):
      at = which == j
      ev = reference_evaluator(r).evaluate(v[at], ("g", "d2H"), record=False)
      expected[at] = ctx.scale * np.asarray(ev["g"], F64)
      cond[at] = np.abs(v[at] * ctx.scale * np.asarray(ev["d2H"], F64))
    g = np.asarray(got.get(layout), F64)
    if g.shape != shape:
      return (f"with '{name}' an array of per-neuron values ({layout.replace('_', ' ')}, shape {pshape}), g came "
              f"back with shape {g.shape} for an input of shape {shape}", {})
    size = max(ctx.peak, float(np.max(np.abs(expected))))
    tol = tolerances.g_tolerance(F64, tolerances.K_DIFFERENTIAL["float64"], size, cond)
    d = _worst(v.reshape(-1), expected.reshape(-1), g.reshape(-1), tol.reshape(-1))
    if d["failing_points"]:
      j = int(which.reshape(-1)[np.argmin(np.abs(v.reshape(-1) - d["worst_input"]))])
      return (f"'{name}' as an array of per-neuron values ({layout.replace('_', ' ')}: shape {pshape} against an "
              f"input of shape {shape}) is not applied elementwise: at x = {d['worst_input']!r} with {name} = "
              f"{values[j]!r}, g = {d['got']!r} where the reference gives {d['expected']!r} (the parameter is "
              "reduced, taken from one neuron, or broadcast along another axis)",
              {**d, "layout": layout, "values": values.tolist(),
               "reason": "as the differential check: K·eps·(peak + |x·g'(x)|) in float64"})
  return None


def check(ctx: Any) -> Outcome:
  """For candidates with a factory: H flat in θ, d(VJP)/dθ = ct·dg/dθ against central differences in
  θ, jit = vmap over a batch of θ, traced θ = θ as a number (float64)."""
  c = ctx.candidate
  if c.factory is None:
    return skipped("no factory: the candidate cannot be rebuilt at traced parameter values")
  if c.backend != "jax":
    return skipped(f"needs JAX transforms: {c.label} is evaluated through another backend")
  names = [n for n in type(ctx.reference).dynamic_parameters() if n in c.params]
  if not names:
    return skipped(f"{ctx.reference.name} has no parameter that can be traced")
  margin = 8 * ctx.step
  x = numerics.sample_points(ctx.length, ctx.reference.kinks(), margin, n=48, seed=ctx.seed, span=4.0)
  rng = np.random.default_rng(ctx.seed + 2)
  ct = rng.normal(size=x.shape) * 2.0 + 0.5
  for name in names:
    keep = _off_moving_kinks(ctx, name, x, margin)
    problem = _check_one(ctx, name, x[keep], ct[keep]) or _per_neuron(ctx, name, x)
    if problem is not None:
      message, detail = problem
      return failed(message, dtype="float64", parameter=name, parameters=names, **detail)
  return passed(f"H flat in {', '.join(names)}; d(VJP)/dθ = ct·dg/dθ against central differences in θ; jit = vmap "
                "over a batch of θ; traced θ = θ as a number; an array of per-neuron (per-channel) values broadcast "
                "against x = the reference elementwise (float64)", dtype="float64", parameters=names,
                points=int(x.size))
