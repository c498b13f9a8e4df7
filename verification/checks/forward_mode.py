"""The forward_mode check (a capability): ``jax.jvp`` gives H as the primal and g·t as the tangent;
``jax.jacfwd`` is diag(g), in float64.

The primal of ``jax.jvp`` is the forward also at ±0, ±subnormal, ±tiny, ±eps, ±max and ±inf (exact).

Tolerance: ``K_WIRING·eps(float64)·peak·(1 + |t|)``, as for the VJP. A mechanism without forward mode
(``jax.custom_vjp``, a primitive without a JVP rule) is ``unsupported`` with the fix; a rule that gives
wrong numbers is a ``fail``.

Torch form (:func:`check_torch`): ``torch.autograd.forward_ad`` gives H as the primal and g·t as the
tangent. An ``autograd.Function`` without ``jvp`` is ``unsupported``; so is a tangent torch drops
without an error (a ``torch.library`` custom op has no forward-mode formula), with the fix for that
mechanism.
"""

from __future__ import annotations

from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np

from verification.checks import _torch as T
from verification.checks._context import (
  F64,
  Comparisons,
  Context,
  cotangent,
  needs_jax,
  wiring_points,
  wiring_tolerance,
)
from verification.checks._jax import raised, transformed
from verification.core import tolerances
from verification.core.evaluate import describe
from verification.results import Outcome


def check(ctx: Context) -> Outcome:
  """Forward mode (a capability): ``jax.jvp`` gives H as the primal and g·t as the tangent;
  ``jax.jacfwd`` is diag(g) (float64)."""
  if (skip := needs_jax(ctx)) is not None:
    return skip
  x = wiring_points(ctx, F64)
  t = cotangent(ctx, x)
  out = transformed(ctx, "forward_mode")
  if isinstance(out["jvp"], Exception):
    return raised(ctx, "forward", "forward mode (jax.jvp)", out["jvp"], jnp.asarray(x))
  g, H = ctx.quantity(x, "g").astype(F64), ctx.quantity(x, "H").astype(F64)
  tol = wiring_tolerance(ctx, F64, t)
  c = Comparisons()
  primal, tangent = out["jvp"]
  c.compare("the primal output of jax.jvp is not H(x)", x, H, primal, 0.0, dtype="float64")
  c.compare("the JVP is not g(x)·t", x, g * t, tangent, tol, dtype="float64")
  special = ctx.memo["transform_args"]["forward_mode"]["special"]
  if not isinstance(out["jvp_special"], Exception):  # ±0, ±subnormal, ±tiny, ±eps, ±max, ±inf: the primal is H
    c.compare("the primal output of jax.jvp is not the spike function's forward at ±0, ±tiny, ±subnormal, ±inf "
              "(the primal of a transform tests another threshold)", special, ctx.quantity(special, "H"),
              out["jvp_special"], 0.0, dtype=special.dtype.name)
  if isinstance(out["jacfwd"], Exception):
    c.note(f"jax.jacfwd raised {describe(out['jacfwd'])}", dtype="float64")
  else:
    c.compare("jacfwd is not diag(g)", np.repeat(x[:16], 16), np.diag(g[:16]).reshape(-1),
              out["jacfwd"].reshape(-1), tolerances.K_WIRING * tolerances.eps(F64) * ctx.peak, dtype="float64")
  return c.outcome("jax.jvp: primal = H, tangent = g·t; jacfwd = diag(g) (float64)",
                   tolerance=f"{tolerances.K_WIRING:g}·eps·peak·(1 + |t|)")



def check_torch(ctx: Context) -> Outcome:
  """The torch form: ``torch.autograd.forward_ad`` gives H as the primal and g·t as the tangent (float64)."""
  prep = T.prepare(ctx)
  if not isinstance(prep, SimpleNamespace):
    return prep
  j = T.Judge(ctx)
  T.forward_mode(j, prep.x, prep.ct, prep.g, prep.tol)
  return T.outcome(j, "torch.autograd.forward_ad: primal = H, tangent = g·t (float64)", tolerance=T.TOLERANCE)
