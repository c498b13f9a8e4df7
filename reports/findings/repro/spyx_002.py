# pip install spyx==1.0.0 jax numpy
"""spyx-002: g (the VJP) is -inf for StraightThrough (float16/bfloat16/float32/float64).

Check: edge (1 results, 1 calls); reference StraightThrough() x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import spyx.axn
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = float('-inf'), 'float16'
EXPECTED, TOLERANCE = 1.0, 0.00390625

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
