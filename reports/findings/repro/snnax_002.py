# pip install snnax==0.0.1 jax numpy
"""snnax-002: g differs from the reference × N in float16/bfloat16/float32/float64: at x = N expected N, got N (ratio N, tolerance N).

Check: differential (5 results, 5 calls); reference InvSquareGrad(alpha=1000.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import snnax.functional.surrogate
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = 0.0012826919555664062, 'float16'
EXPECTED, TOLERANCE = 0.19191343700486158, 0.019056039555153812

def spike(x):
  return snnax.functional.surrogate.superspike_surrogate(beta=1000.0)(x)


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
