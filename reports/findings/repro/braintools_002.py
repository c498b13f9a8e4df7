# pip install braintools==0.3.0 jax numpy
"""braintools-002: the output H depends on 'alpha': dH/dalpha = N at x = N, alpha = N (jit); H(x) is a step that does not depend on the parameters, so this leaks the parameter's tangent into the forward and into every derivative through it.

Check: parameters (58 results, 58 calls); reference ReluGrad(alpha=100.0, width=0.01) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import braintools.surrogate
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = -0.009347559992035844, 'float64'
EXPECTED, TOLERANCE = 0.0, 0.0

PARAMETER, VALUE = 'alpha', 100.0

def spike_p(x, p):
  return braintools.surrogate.ReluGrad(alpha=p, width=0.01)(x)


def array(v, dtype=DTYPE, many=False):
  return jnp.asarray(v if many else [v], dtype=dtype)


def values(a):
  return np.asarray(a, np.float64).reshape(-1)


def value(a):
  return float(values(a)[0])


got = value(jax.jit(jax.grad(lambda p: spike_p(array(X), p).sum()))(VALUE))
print(f'expected dH/d{PARAMETER} = 0 (H is a step), got {got!r}')
sys.exit(0 if got == 0 else 1)
