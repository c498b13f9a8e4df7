# pip install braintools==0.3.0 jax numpy
"""braintools-004: the autodiff derivative of P is nan for PiecewiseExp (float16/bfloat16/float32/float64).

Check: edge (3 results, 3 calls); reference PiecewiseExp(alpha=100.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import braintools.surrogate
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = 0.11090087890625, 'float16'
EXPECTED, TOLERANCE = None, None

def spike(x):
  return braintools.surrogate.PiecewiseExp(alpha=100.0)(x)


def array(v, dtype=DTYPE, many=False):
  return jnp.asarray(v if many else [v], dtype=dtype)


def values(a):
  return np.asarray(a, np.float64).reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  return jax.grad(lambda v: braintools.surrogate.PiecewiseExp(alpha=100.0).surrogate_fun(v).sum())(x)

got = value(quantity(array(X)))
print(f'expected {EXPECTED!r} (tolerance {TOLERANCE!r}), got {got!r}')
if EXPECTED is None:
  sys.exit(0 if math.isfinite(got) else 1)
sys.exit(0 if abs(got - EXPECTED) <= (TOLERANCE or 0.0) else 1)
