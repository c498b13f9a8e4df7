"""Per-dtype tolerances, in one place, each with its reason.

Comparisons of g in a dtype d against a float64 value use

    |got - expected| <= K[d] · eps(d) · (peak + |x · g'(x)|) + abs_floor

``peak`` (max |g|) makes the bound relative to the size of g rather than to each value (a
surrogate's tails are tiny and their relative error is meaningless); ``|x · g'(x)|`` is the
condition term: rounding x (or a product α·x) to d moves the argument by eps(d)·|x|, which moves g
by that times |g'(x)|. Without it a correct Fourier surrogate fails at large ωx.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

#: Multiples of eps(d). Measured: correct textbook formulas stay within ~3 eps of the peak
#: (Sigmoid, Arctan, ERF, exp forms) and ~31 eps for a Fourier sum with the condition term
#: dropped; 16 eps with the condition term leaves a margin of ~5x on every reference surrogate,
#: and a missing factor, a wrong constant or a downcast is off by far more.
K_LOW_PRECISION = {"float16": 16.0, "bfloat16": 16.0, "float32": 16.0, "float64": 16.0}

#: The differential check compares against the reference in float64 at the rounded input, with
#: the same rule; a candidate computing in its own dtype has the same error budget.
K_DIFFERENTIAL = K_LOW_PRECISION

#: Autodiff wiring compares two evaluations of the same candidate in the same dtype (VJP vs
#: ct·g): only the final product's rounding differs, a few ulp.
K_WIRING = 4.0

#: Limits at ±inf: exact up to a few eps of the peak.
K_LIMIT = 4.0


def eps(dtype) -> float:
  return float(jnp.finfo(jnp.dtype(dtype)).eps)


def fmax(dtype) -> float:
  return float(jnp.finfo(jnp.dtype(dtype)).max)


def g_tolerance(dtype, k: float, peak: float, condition: np.ndarray) -> np.ndarray:
  """K·eps(d)·(peak + condition), plus the dtype's smallest normal (values below are flushable).

  ``condition`` is |x·g'(x)|, or a surrogate's declared ``argument_condition``.
  """
  cond = np.abs(np.asarray(condition, np.float64))
  cond = np.where(np.isfinite(cond), cond, 0.0)
  return k * eps(dtype) * (peak + cond) + float(jnp.finfo(jnp.dtype(dtype)).tiny)

#: jit against eager, vmap(grad) against grad: the same formula, fused by XLA in one case and
#: evaluated op by op in the other, so each intermediate may round differently in its last bit;
#: a few eps of the peak. 16 leaves a wide margin; a wrong branch or factor is off by far more.
K_TRANSFORM = 16.0
