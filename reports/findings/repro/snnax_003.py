# pip install snnax==0.0.1 jax numpy
"""snnax-003: g raised TypeError: sigmoid() takes N positional argument but N were given.

Check: autodiff, forward_mode, second_order, transforms, quadrature, edge, low_precision, differential (32 results, 4 calls); reference Sigmoid(alpha=1.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import snnax.functional.surrogate
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = 0.5, 'float16'
EXPECTED, TOLERANCE = None, None

def spike(x):
  return snnax.functional.surrogate.sigmoid_surrogate(beta=1.0)(x)


def array(v, dtype=DTYPE, many=False):
  return jnp.asarray(v if many else [v], dtype=dtype)


def values(a):
  return np.asarray(a, np.float64).reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  return jax.grad(lambda v: spike(v).sum())(x)

try:
  got = quantity(array(X))
except Exception as exc:  # the defect
  print(f'expected: no exception; got {type(exc).__name__}: {exc}')
  sys.exit(1)
print(f'expected: no exception; got {value(got)!r}')
sys.exit(0)
