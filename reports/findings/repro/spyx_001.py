# pip install spyx==1.0.0 jax numpy
"""spyx-001: ∫g over [N, N] = N but P(b) - P(a) = N (the reference's primitive × scale).

Check: quadrature (1 results, 1 calls); reference StraightThrough() x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import spyx.axn
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = 1.0, 'float64'
EXPECTED, TOLERANCE = 2.0, 5.001110223024625e-10

def spike(x):
  return spyx.axn.custom()(x)

A, B = -1.0, 1.0


def array(v, dtype=DTYPE, many=False):
  return jnp.asarray(v if many else [v], dtype=dtype)


def values(a):
  return np.asarray(a, np.float64).reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  return jax.grad(lambda v: spike(v).sum())(x)

nodes, weights = np.polynomial.legendre.leggauss(20)
edges = np.linspace(A, B, 257)
half = (edges[1:] - edges[:-1])[:, None] / 2
points = (edges[:-1] + edges[1:])[:, None] / 2 + nodes[None, :] * half
g = values(quantity(array(points.ravel(), DTYPE, many=True))).reshape(points.shape)
got = float((weights[None, :] * half * g).sum())
print(f'integral of g over [{A}, {B}]: expected {EXPECTED!r} (tolerance {TOLERANCE!r}), '
      f'got {got!r}')
sys.exit(0 if abs(got - EXPECTED) <= TOLERANCE else 1)
