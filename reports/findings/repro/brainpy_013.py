# pip install brainpy==2.8.2 jax numpy
"""brainpy-013: P (the primitive) is nan for LogTailedRelu (float16/bfloat16/float32/float64).

Check: edge (1 results, 1 calls); reference LogTailedRelu(alpha=0.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import brainpy.math
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = float('-inf'), 'float16'
EXPECTED, TOLERANCE = -0.3701171875, 0.005352020263671875

def spike(x):
  return brainpy.math.surrogate.LogTailedRelu(alpha=0.0)(x)

OTHER = 0.370117


def array(v, dtype=DTYPE, many=False):
  return jnp.asarray(v if many else [v], dtype=dtype)


def values(a):
  return np.asarray(a, np.float64).reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  return brainpy.math.surrogate.LogTailedRelu(alpha=0.0).surrogate_fun(x)

got = value(quantity(array(X))) - value(quantity(array(OTHER)))
print(f'expected {EXPECTED!r} (tolerance {TOLERANCE!r}), got {got!r}')
sys.exit(0 if abs(got - EXPECTED) <= (TOLERANCE or 0.0) else 1)
