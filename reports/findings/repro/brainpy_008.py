# pip install brainpy==2.8.2 jax numpy
"""brainpy-008: the output H depends on 'c': dH/dc = N at x = N, c = N (jit); H(x) is a step that does not depend on the parameters, so this leaks the parameter's tangent into the forward and into every derivative through it.

Check: parameters (4 results, 4 calls); reference PiecewiseLeakyRelu(c=0.0, w=0.01) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import brainpy.math
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = -0.5999858578643762, 'float64'
EXPECTED, TOLERANCE = 0.0, 0.0

PARAMETER, VALUE = 'c', 0.0

def spike_p(x, p):
  return brainpy.math.surrogate.PiecewiseLeakyRelu(c=p, w=0.01)(x)


def array(v, dtype=DTYPE, many=False):
  return jnp.asarray(v if many else [v], dtype=dtype)


def values(a):
  return np.asarray(a, np.float64).reshape(-1)


def value(a):
  return float(values(a)[0])


got = value(jax.jit(jax.grad(lambda p: spike_p(array(X), p).sum()))(VALUE))
print(f'expected dH/d{PARAMETER} = 0 (H is a step), got {got!r}')
sys.exit(0 if got == 0 else 1)
