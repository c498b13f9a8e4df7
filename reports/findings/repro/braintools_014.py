# pip install braintools==0.3.0 jax numpy
"""braintools-014: the output H depends on 'sigma': dH/dsigma = N at x = N, sigma = N (jit); H(x) is a step that does not depend on the parameters, so this leaks the parameter's tangent into the forward and into every derivative through it.

Check: parameters (4 results, 4 calls); reference GaussianGrad(sigma=0.05, alpha=0.5) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import braintools.surrogate
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = -1.2499292893218814, 'float64'
EXPECTED, TOLERANCE = 0.0, 0.0

PARAMETER, VALUE = 'sigma', 0.05

def spike_p(x, p):
  return braintools.surrogate.GaussianGrad(sigma=p, alpha=0.5)(x)


def array(v, dtype=DTYPE, many=False):
  return jnp.asarray(v if many else [v], dtype=dtype)


def values(a):
  return np.asarray(a, np.float64).reshape(-1)


def value(a):
  return float(values(a)[0])


got = value(jax.jit(jax.grad(lambda p: spike_p(array(X), p).sum()))(VALUE))
print(f'expected dH/d{PARAMETER} = 0 (H is a step), got {got!r}')
sys.exit(0 if got == 0 else 1)
