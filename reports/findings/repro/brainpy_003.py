# pip install brainpy==2.8.2 jax numpy
"""brainpy-003: the autodiff derivative of P is nan for PiecewiseQuadratic (float16/bfloat16/float32/float64).

Check: edge (1 results, 1 calls); reference PiecewiseQuadratic(alpha=50.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import brainpy.math
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = 52.46875, 'float16'
EXPECTED, TOLERANCE = None, None

def spike(x):
  return brainpy.math.surrogate.PiecewiseQuadratic(alpha=50.0)(x)


def array(v, dtype=DTYPE, many=False):
  return jnp.asarray(v if many else [v], dtype=dtype)


def values(a):
  return np.asarray(a, np.float64).reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  return jax.grad(lambda v: brainpy.math.surrogate.PiecewiseQuadratic(alpha=50.0).surrogate_fun(v).sum())(x)

got = value(quantity(array(X)))
print(f'expected {EXPECTED!r} (tolerance {TOLERANCE!r}), got {got!r}')
if EXPECTED is None:
  sys.exit(0 if math.isfinite(got) else 1)
sys.exit(0 if abs(got - EXPECTED) <= (TOLERANCE or 0.0) else 1)
