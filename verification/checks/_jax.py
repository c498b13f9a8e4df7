"""The JAX transforms the forward, autodiff, forward_mode and transforms checks judge, compiled as one
program per candidate (:func:`transformed`), and how a transform that raises is classified.

A transform that the candidate's mechanism lacks (no forward-mode rule, no batching rule, no
lowering) is ``unsupported`` with the reason and the fix (:func:`raised`); one that exists and
breaks is a defect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from verification.checks._context import (
  F64,
  VJP_SHAPES,
  Context,
  cotangent,
  forward_inputs,
  loop_inputs,
  shaped,
  shapes_dtype,
  wiring_points,
)
from verification.core.candidate import Candidate
from verification.core.evaluate import describe
from verification.core.tape import recorded
from verification.results import Outcome, failed, unsupported


def elementwise_grad(f: Callable) -> Callable:
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


@recorded
def run_eagerly(ctx: Context, group: str, args: dict[str, Any]) -> dict[str, Any]:
  """The pieces of ``group`` without jit (each on its own)."""
  results: dict[str, Any] = {}
  fn = ctx.candidate.fn
  args = jax.device_put(args)
  for k, f in PIECES[group].items():
    try:
      results[k] = _to_numpy(f(fn, args))
    except Exception as exc:
      results[k] = exc
  return results


def _vjp(fn: Callable, x: jax.Array, ct: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(primal, VJP at ct)."""
  primal, pullback = jax.vjp(fn, x)
  return primal, pullback(ct)[0]


def _scan_grad(fn: Callable, xs: jax.Array, cts: jax.Array) -> jax.Array:
  """The gradient of Σ_t Σ ct_t·fn(x_t) over the rows of xs, the steps run by ``lax.scan`` (how a recurrent
  layer runs its time steps): several calls of the spike function, one backward."""

  def loss(v):
    def step(total, pair):
      return total + jnp.sum(pair[1] * fn(pair[0])), None

    return jax.lax.scan(step, jnp.zeros((), v.dtype), (v, cts))[0]

  return jax.grad(loss)(xs)


def _value_and_grad(fn: Callable, x: jax.Array, ct: jax.Array) -> Any:
  """``jax.value_and_grad`` of sum(ct·fn(x)), with the spikes as auxiliary output."""

  def loss(v, w):
    s = fn(v)
    return jnp.sum(s * w), s

  return jax.value_and_grad(loss, has_aux=True)(x, ct)


#: The pieces of the autodiff, forward_mode and transforms checks, per group (see the checks).
PIECES: dict[str, dict[str, Piece]] = {
    "forward": {"shapes": lambda fn, a: [fn(v) for v in a["xs"]]},
    "autodiff": {
        "vjp": lambda fn, a: _vjp(fn, a["x"], a["ct"]),
        "value_and_grad": lambda fn, a: _value_and_grad(fn, a["x"], a["ct"]),
        "shapes": lambda fn, a: [jax.vjp(fn, v)[1](w)[0] for v, w in zip(a["shaped_x"], a["shaped_ct"], strict=True)],
        "scan": lambda fn, a: _scan_grad(fn, a["xs"], a["cts"]),
    },
    "forward_mode": {
        "jvp": lambda fn, a: jax.jvp(fn, (a["x"],), (a["t"],)),
        "jacfwd": lambda fn, a: jax.jacfwd(fn)(a["x"][:16]),
        "jvp_special": lambda fn, a: jax.jvp(fn, (a["special"],), (jnp.ones_like(a["special"]),))[0],
    },
    "transforms": {
        "vjp": lambda fn, a: _vjp(fn, a["x"], a["ct"])[1],
        "vmap": lambda fn, a: jax.vmap(fn)(a["x"]),
        "vmap_2d": lambda fn, a: jax.vmap(fn)(a["x"].reshape(8, -1)),
        "vmap_grad": lambda fn, a: jax.vmap(jax.grad(fn))(a["x"]),
    },
}


def _transformed_program(c: Candidate, args: dict[str, dict[str, Any]]) -> dict[str, Any]:
  return {g: {k: f(c.fn, args[g]) for k, f in pieces.items()} for g, pieces in PIECES.items()}


def _transform_args(ctx: Context) -> dict[str, dict[str, Any]]:
  """The inputs of the pieces, per group: the forward's inputs in :data:`SHAPES`, the autodiff and
  forward_mode checks' wiring points (float64) and the transforms check's points
  (:func:`transform_dtype`), with random cotangents."""
  x = wiring_points(ctx, F64)
  ct = cotangent(ctx, x)
  xt = transform_points(ctx, transform_dtype(ctx))
  xs, cts = loop_inputs(x, ct)
  return {"forward": {"xs": shaped(forward_inputs(ctx, shapes_dtype(ctx)))},
          "autodiff": {"x": x, "ct": ct, "shaped_x": shaped(x, VJP_SHAPES), "shaped_ct": shaped(ct, VJP_SHAPES),
                       "xs": xs, "cts": cts},
          "forward_mode": {"x": x, "t": ct, "special": forward_inputs(ctx, shapes_dtype(ctx))},
          "transforms": {"x": xt, "ct": cotangent(ctx, xt)}}


def transformed(ctx: Context, group: str) -> dict[str, Any]:
  """The transformed quantities of the forward (its shapes), autodiff, forward_mode and transforms
  checks, all in one compilation (the first check to ask computes them for all four; shared by the
  parameter sets of a reference surrogate); where that raises, per group, then per piece, so the
  failing one is named and the other groups are unaffected."""
  if "transformed" not in ctx.memo:
    args = _transform_args(ctx)
    ctx.memo["transformed"] = _transformed_outputs(ctx, args)
    ctx.memo["transform_args"] = args
  return ctx.memo["transformed"][group]


@recorded
def _transformed_outputs(ctx: Context, args: dict[str, dict[str, Any]]) -> dict[str, Any]:
  fn = ctx.candidate.fn
  try:
    return _to_numpy(ctx.evaluator.program(_transformed_program)(args))
  except Exception:
    flat = {}
    for g, pieces in PIECES.items():
      try:
        flat[g] = _to_numpy(jax.jit(lambda a, p=pieces: {k: f(fn, a) for k, f in p.items()})(args[g]))
      except Exception:
        flat[g] = _run_pieces(fn, pieces, args[g])
    return flat


_WHAT = {"forward": "forward mode (jvp)", "second": "second order (grad of grad)", "vmap": "vmap", "jit": "jit"}


FIXES = {
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
GAP_MARKERS = {
    "forward": ("forward-mode", "differentiation rule", "not implemented", "do not support jvp"),
    "second": ("forward-mode", "differentiation rule", "not implemented", "transpose rule", "do not support jvp"),
    "vmap": ("batching rule", "not implemented"),
    "jit": ("concret", "tracer", "lowering", "translation rule", "not implemented"),
}


@recorded
def built_with_custom_vjp(ctx: Context, x: np.ndarray) -> bool:
  """Whether the spike function's program at x calls a ``jax.custom_vjp``."""
  try:
    return "custom_vjp_call" in str(jax.make_jaxpr(ctx.candidate.fn)(jnp.asarray(x)))
  except Exception:
    return False


#: Primitives of host callbacks: JAX differentiates none of them (no JVP rule), whatever the error says.
CALLBACKS = ("pure_callback", "io_callback", "callback")


@recorded
def gradient_calls_back(ctx: Context, x: np.ndarray) -> bool:
  """Whether the program of the spike function's gradient at x calls host code (``jax.pure_callback``,
  ``io_callback``): its derivative then has no JVP rule, by construction."""
  try:
    eqns = str(jax.make_jaxpr(elementwise_grad(ctx.candidate.fn))(jnp.asarray(x)))
  except Exception:
    return False
  return any(f" {name}[" in eqns or f" {name} " in eqns for name in CALLBACKS)


def lacks_second_order(ctx: Context, exc: BaseException | str, x: np.ndarray) -> bool:
  """Whether second order raised because the mechanism lacks it: by the mechanism (a gradient computed by a
  host callback), else by the error's words (:data:`GAP_MARKERS`)."""
  text = str(exc).lower()
  return (isinstance(exc, NotImplementedError) or any(m in text for m in GAP_MARKERS["second"])
          or gradient_calls_back(ctx, np.asarray(x)))


def _gap(ctx: Context, capability: str, exc: BaseException, x: np.ndarray) -> Outcome | None:
  """``unsupported`` where the candidate's mechanism lacks the capability (a host callback's derivative) or
  ``exc`` says so (:data:`GAP_MARKERS`, the fallback); None otherwise."""
  text = f"{type(exc).__name__}: {exc}"
  first = text.strip().splitlines()[0]
  if capability == "second" and gradient_calls_back(ctx, np.asarray(x)):
    return unsupported(capability, "second order (grad of grad) unsupported: the gradient is computed by a host "
                       f"callback (jax.pure_callback), which JAX cannot differentiate ({first})",
                       fix="compute g with jnp operations (a host callback has no derivative), or give the "
                           "callback's function a jax.custom_jvp whose rule is another callback",
                       mechanism="pure_callback", error=first)
  if not (isinstance(exc, NotImplementedError) or any(m in text.lower() for m in GAP_MARKERS[capability])):
    return None
  if capability in ("forward", "second") and built_with_custom_vjp(ctx, np.asarray(x)):
    reason, mechanism = "built with jax.custom_vjp, which has no forward mode; jax.custom_jvp gives both", "custom_vjp"
  else:
    reason, mechanism = f"its mechanism has no {_WHAT[capability]} rule", "other"
  return unsupported(capability, f"{_WHAT[capability]} unsupported: {reason} ({first})", fix=FIXES[capability],
                     mechanism=mechanism, error=first)


def raised(ctx: Context, capability: str, what: str, exc: BaseException, x: np.ndarray) -> Outcome:
  """A transform raised: ``unsupported`` where the capability is missing, else a defect."""
  return _gap(ctx, capability, exc, x) or failed(f"{what} raised {describe(exc)}")


def transform_points(ctx: Context, dtype: np.dtype, n: int = 64) -> np.ndarray:
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


def transform_dtype(ctx: Context) -> np.dtype:
  """One dtype for the jit and vmap comparisons (they test rules, not rounding): float32 where selected."""
  return next((d for d in ctx.dtypes if d.name == "float32"), max(ctx.dtypes, key=lambda d: d.itemsize))

