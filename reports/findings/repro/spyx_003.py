# pip install spyx==1.0.0 jax numpy
"""spyx-003: g differs from the reference × N in float16/bfloat16/float32/float64: at x = N expected N, got N (ratio N, tolerance N).

Check: differential (1 results, 1 calls); reference StraightThrough() x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import spyx.axn
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = -16.0, 'float16'
EXPECTED, TOLERANCE = 1.0, 0.01568603515625

def spike(x):
  return spyx.axn.custom()(x)


def array(v, dtype=DTYPE, many=False):
  return jnp.asarray(v if many else [v], dtype=dtype)


def values(a):
  return np.asarray(a, np.float64).reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  return jax.grad(lambda v: spike(v).sum())(x)

got = value(quantity(array(X)))
print(f'expected {EXPECTED!r} (tolerance {TOLERANCE!r}), got {got!r}')
if EXPECTED is None:
  sys.exit(0 if math.isfinite(got) else 1)
sys.exit(0 if abs(got - EXPECTED) <= (TOLERANCE or 0.0) else 1)
