"""Inputs as training has them, judged by the autodiff check for JAX, torch and NumPy-bridged candidates.

**A large input.** One float32 input of :data:`LARGE` elements (more than 2^20, and a tail that no
power-of-two chunk divides), through the spike function and its VJP with a cotangent of ones in one call:
its spikes and gradient must equal, elementwise, the candidate's own outputs at the same values evaluated
as a small block. The values are the transforms' base points (both signs, ±0, ±tiny, ±eps, the kinks and
either side of them, random values), placed by a seeded generator that both processes run
(:func:`large_positions`), so the judge knows the value at every position without the input crossing
between them. The worker records the outputs packed against the block's outputs at the same positions
(:func:`verification.core.tape.packed_against`: nothing where they agree, every differing element where
they do not), so the judge restores them exactly and compares them itself. Tolerance: H exact; g
``K_WIRING·eps(float32)·peak·2`` (the same formula at another size may round its last products
differently). A chunked implementation that drops or repeats a tail, or one that reads a stale buffer at
large sizes, fails with the first index where it differs.

**The calls of a training loop** (:data:`STEPS` calls of the spike function on different inputs, one
backward of the sum of their cotangent-weighted outputs): each step's gradient is ct·g at that step's own
input. JAX: ``lax.scan`` over the steps (a piece of the transformed program). torch
(:func:`torch_training_loop`): one leaf per step, the backward run twice with the graph retained (the
gradients accumulate: 2·ct·g), and the whole iteration run again with the same spike function (a module
that keeps state between iterations shows).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from verification.checks import _torch as T
from verification.checks._context import F64, STEPS, Comparisons, Context, loop_inputs, wiring_tolerance
from verification.checks._jax import transform_points
from verification.core.errors import CandidateError, describe
from verification.core.tape import TapeError, packed_against, recorded, unpacked_against

#: The large input's size: 2^20 + 12,345 elements (odd: no chunk of a power of two divides it).
LARGE = (1 << 20) + 12_345
F32 = np.dtype(np.float32)


@functools.lru_cache(maxsize=4)
def large_positions(base_size: int, n: int, seed: int) -> np.ndarray:
  """Which base point each element of the large input holds (the same in every process; read-only, drawn once per
  process for each size of the base)."""
  idx = np.random.default_rng(seed + 5).integers(0, base_size, n, dtype=np.int32)
  idx.flags.writeable = False
  return idx


def _large_program(c: Any, x: Any) -> Any:
  import jax
  import jax.numpy as jnp

  h, pullback = jax.vjp(c.fn, x)
  return h, pullback(jnp.ones_like(h))[0]


def _run_large(ctx: Context, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The spike function and its VJP (a cotangent of ones) at x, in one call of the candidate's mechanism."""
  c = ctx.candidate
  if c.backend == "jax":
    h, g = ctx.evaluator.program(_large_program)(x)
    return np.asarray(h), np.asarray(g)
  if c.backend == "torch":
    torch = T.import_torch()
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    with torch.enable_grad():
      y = c.fn(xt)
      (g,) = torch.autograd.grad(y, xt, grad_outputs=torch.ones_like(y), allow_unused=True)
    return y.detach().numpy(), (torch.zeros_like(xt) if g is None else g).numpy()
  return np.asarray(c.forward(x)), np.asarray(c.vjp(x, np.ones_like(x)))


@recorded
def _large_outputs(ctx: Context, base: np.ndarray, n: int, seed: int, h_base: np.ndarray,
                   g_base: np.ndarray) -> dict[str, Any] | Exception:
  """H and g at the large input, each packed against the block's outputs at the same positions (or, where
  it came back with another dtype or shape, what it came back as); or what the call raised."""
  idx = large_positions(base.size, n, seed)
  x = base[idx]
  try:
    h, g = _run_large(ctx, x)
  except Exception as exc:
    return exc
  out: dict[str, Any] = {}
  for q, v, block in (("H", h, h_base), ("g", g, g_base)):
    if v.shape != x.shape or v.dtype != x.dtype:
      out[q] = CandidateError(f"came back as {v.dtype} of shape {v.shape}")
    else:
      out[q] = packed_against(v, block[idx])
  return out


_WHAT = {"H": "the spike function", "g": "its gradient (a cotangent of ones)"}


def large_input(ctx: Context, c: Comparisons) -> None:
  """The large input against the same values as a small block (see the module); failures noted on ``c``."""
  base = transform_points(ctx, F32)
  block = ctx.evaluator.evaluate(base, ("H", "g"))
  if any(isinstance(block[q], Exception) for q in ("H", "g")):
    return  # the small block itself fails: the forward check and the comparisons above say why
  h_base, g_base = (np.asarray(block[q]) for q in ("H", "g"))
  if h_base.dtype != F32 or g_base.dtype != F32:
    return  # a dtype the forward and edge checks report
  out = _large_outputs(ctx, base, LARGE, ctx.seed, h_base, g_base)
  where = f"a {LARGE:,}-element float32 input"
  if isinstance(out, Exception):
    c.note(f"the spike function or its VJP raised {describe(out)} on {where} (the same values as a block of "
           f"{base.size} did not)", dtype="float32", size=LARGE)
    return
  idx = large_positions(base.size, LARGE, ctx.seed)
  tol = float(wiring_tolerance(ctx, F32, np.ones(1))[0])
  for q, block_q, bound in (("H", h_base, 0.0), ("g", g_base, tol)):
    packed = out.get(q) if isinstance(out, dict) else None
    if isinstance(packed, Exception):
      c.note(f"on {where}, {_WHAT[q]} {describe(packed)}", dtype="float32", size=LARGE)
      continue
    if not isinstance(packed, np.ndarray):
      raise TapeError(f"the large input's {q} is not on the record as a packed array")
    if packed.dtype == np.uint8 and packed.size == 0:  # no element differs from the block's: bit-identical
      continue
    expected = block_q[idx]
    got = unpacked_against(packed, expected)
    if np.array_equal(got.view(np.uint32), expected.view(np.uint32)):  # the common case: bit-identical
      continue
    e, v = expected.astype(F64), got.astype(F64)
    err = np.where((np.isnan(e) & np.isnan(v)) | (e == v), 0.0, np.abs(v - e))
    bad = ~(err <= bound)  # NaN on one side only fails
    if bad.any():
      i = int(np.argmax(bad))
      c.note(f"on {where}, {_WHAT[q]} differs from the same values evaluated as a small block at "
             f"{int(bad.sum()):,} elements, the first at index {i:,} of {LARGE:,} (x = {float(base[idx[i]])!r}: "
             f"got {float(v[i])!r}, the block gives {float(e[i])!r}); a chunked or size-dependent path loses or "
             "reorders elements", worst_input=float(base[idx[i]]), expected=float(e[i]), got=float(v[i]),
             tolerance=bound, failing_points=int(bad.sum()), points=LARGE, first_index=i, dtype="float32",
             size=LARGE)


def compare_loop(ctx: Context, c: Comparisons, x: np.ndarray, g: np.ndarray, ct: np.ndarray, what: str, got: Any,
                 factor: float = 1.0, **extra: Any) -> None:
  """``got`` (STEPS rows) against factor·ct_t·g(x_t) for each step's own input (g at x given)."""
  xs, cts = loop_inputs(x, ct)
  gs = loop_inputs(g, ct)[0]
  c.compare(f"{what}: a step's gradient is not ct·g at that step's own input (the backward uses another "
            "step's input or state)", xs.reshape(-1), (factor * cts * gs).reshape(-1), np.reshape(got, -1),
            factor * wiring_tolerance(ctx, F64, cts).reshape(-1), steps=STEPS, **extra)


@recorded
def torch_training_loop(ctx: Context, xs: np.ndarray, cts: np.ndarray) -> dict[str, Any]:
  """A training iteration, twice with the same spike function: STEPS calls on one leaf each and one backward of
  Σ ct_t·fn(x_t); and the same with the graph retained and a second backward (the leaves' gradients
  accumulate). Per iteration, the gradients of each, or what it raised."""
  torch = T.import_torch()
  fn = ctx.candidate.fn
  out: dict[str, Any] = {}
  for iteration in ("first", "again"):
    for key, backwards in ((iteration, 1), (f"{iteration}_retained", 2)):
      leaves = [torch.from_numpy(row.copy()).requires_grad_(True) for row in xs]
      try:
        with torch.enable_grad():
          loss = sum((fn(v) * torch.from_numpy(w.copy())).sum() for v, w in zip(leaves, cts, strict=True))
          for k in range(backwards):
            loss.backward(retain_graph=k + 1 < backwards)
        out[key] = np.stack([T.as_numpy(v.grad).copy() if v.grad is not None else np.zeros(v.shape)
                             for v in leaves])
      except Exception as exc:
        out[key] = exc
  return out


def torch_loop(ctx: Context, j: Any, x: np.ndarray, ct: np.ndarray, g: np.ndarray) -> None:
  """The training loop (:func:`torch_training_loop`) judged on ``j`` (a :class:`verification.checks._torch.Judge`):
  each step's gradient ct·g at its own input, twice that with the graph retained. A mechanism without a
  retained graph (torch.compile's donated buffers) is noted, not failed."""
  out = torch_training_loop(ctx, *loop_inputs(x, ct))
  for key, what, factor in (("first", "the training loop", 1.0),
                            ("first_retained", "the training loop, backward twice with the graph retained", 2.0),
                            ("again", "the training loop's second iteration with the same spike function", 1.0),
                            ("again_retained", "the second iteration, backward twice with the graph retained", 2.0)):
    got = out[key]
    if isinstance(got, Exception):
      if key.endswith("retained") and j.mechanism == "torch.compile":
        j.not_checked.append(f"{what}: {describe(got)}")
        continue
      j.fail(f"{what} ({STEPS} calls, one backward of their sum) raised {describe(got)}", dtype="float64")
      continue
    compare_loop(ctx, j, x, g, ct, what, got, factor, dtype="float64")


__all__ = ["LARGE", "STEPS", "compare_loop", "large_input", "large_positions", "loop_inputs", "torch_loop"]
