# pip install braintools==0.3.0 jax numpy
"""braintools-001: the second derivative of the spike function is not g'(x).

Check: second_order (68 results, 68 calls); reference InvSquareGrad(alpha=1000.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import braintools.surrogate
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = -6.207784992969061e-05, 'float64'
EXPECTED, TOLERANCE = 1669.4451176322764, 0.26694451176322764

def spike(x):
  return braintools.surrogate.InvSquareGrad(alpha=1000.0)(x)


def array(v, dtype=DTYPE, many=False):
  return jnp.asarray(v if many else [v], dtype=dtype)


def values(a):
  return np.asarray(a, np.float64).reshape(-1)


def value(a):
  return float(values(a)[0])


GRAD = 'def quantity(x):\n  return jax.grad(lambda v: spike(v).sum())(x)\n'

def quantity(x):
  return jax.grad(lambda v: jax.grad(lambda u: spike(u).sum())(v).sum())(x)

h = 1e-6 * max(1.0, abs(X))
g = {}
exec(GRAD, globals(), g)
expected = (value(g['quantity'](array(X + h))) - value(g['quantity'](array(X - h)))) / (2 * h)
got = value(quantity(array(X)))
print(f'expected {expected!r} (central differences of g; tolerance {TOLERANCE!r}), '
      f'got {got!r}')
sys.exit(0 if abs(got - expected) <= TOLERANCE else 1)
