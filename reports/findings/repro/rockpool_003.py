# pip install rockpool==3.1.0 jax numpy
"""rockpool-003: forward is not H(x): H(-inf) = nan in DTYPE, expected N (the library receives x = -inf: v = x + N in DTYPE).

Check: forward (3 results, 3 calls); reference ShiftedStep(window=0.5) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import jax
import jax.numpy as jnp
import rockpool.nn.modules.jax.lif_jax
jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off

X, DTYPE = float('-inf'), 'bfloat16'
EXPECTED, TOLERANCE = 0.0, 0.0

def spike(x):
  return rockpool.nn.modules.jax.lif_jax.step_pwl(x + 1.0, 1.0, 0.5, 1.0)


def array(v, dtype=DTYPE, many=False):
  return jnp.asarray(v if many else [v], dtype=dtype)


def values(a):
  return np.asarray(a, np.float64).reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  return spike(x)

got = value(quantity(array(X)))
print(f'expected {EXPECTED!r} (tolerance {TOLERANCE!r}), got {got!r}')
if EXPECTED is None:
  sys.exit(0 if math.isfinite(got) else 1)
sys.exit(0 if abs(got - EXPECTED) <= (TOLERANCE or 0.0) else 1)
