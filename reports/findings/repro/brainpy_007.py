# pip install brainpy==2.8.2 jax numpy
"""brainpy-007: sg returns float64 for a float16/bfloat16/float32/float64 input.

Check: edge (6 results, 6 calls); reference PiecewiseLeakyRelu(c=0.01, w=1.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import brainpy.math
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = 0.5, 'float16'
EXPECTED, TOLERANCE = None, None

def spike(x):
  return brainpy.math.surrogate.PiecewiseLeakyRelu(c=0.01, w=1.0)(x)


def array(v, dtype=DTYPE, many=False):
  return jnp.asarray(v if many else [v], dtype=dtype)


def values(a):
  return np.asarray(a, np.float64).reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  return brainpy.math.surrogate.PiecewiseLeakyRelu(c=0.01, w=1.0).surrogate_grad(x)

got = quantity(array(X))
print(f'expected dtype {DTYPE}, got {got.dtype}')
sys.exit(0 if str(got.dtype).removeprefix('torch.') == DTYPE else 1)
