# pip install jaxsnn==0.3.0 jax numpy
"""jaxsnn-002: the second derivative of H is nan for InvSquareGrad (float16/bfloat16/float32/float64).

Check: edge (4 results, 4 calls); reference InvSquareGrad(alpha=1000.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import jaxsnn.discrete.functional.threshold
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = 32.78125, 'float16'
EXPECTED, TOLERANCE = None, None

def spike(x):
  return jaxsnn.discrete.functional.threshold.superspike(x, 1000.0)


def array(v, dtype=DTYPE, many=False):
  return jnp.asarray(v if many else [v], dtype=dtype)


def values(a):
  return np.asarray(a, np.float64).reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  return jax.grad(lambda v: jax.grad(lambda u: spike(u).sum())(v).sum())(x)

got = value(quantity(array(X)))
print(f'expected {EXPECTED!r} (tolerance {TOLERANCE!r}), got {got!r}')
if EXPECTED is None:
  sys.exit(0 if math.isfinite(got) else 1)
sys.exit(0 if abs(got - EXPECTED) <= (TOLERANCE or 0.0) else 1)
