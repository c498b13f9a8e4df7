# pip install spikingjelly==2.0.0 torch numpy
"""spikingjelly-002: P (the primitive) is nan for SoftSign (float16/bfloat16/float32/float64).

Check: edge (4 results, 4 calls); reference SoftSign(alpha=100.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import torch
import spikingjelly.activation_based.surrogate

X, DTYPE = 655.5, 'float16'
EXPECTED, TOLERANCE = None, None

def spike(x):
  return spikingjelly.activation_based.surrogate.SoftSign(alpha=100.0)(x)


def array(v, dtype=DTYPE, many=False):
  return torch.tensor(np.asarray(v if many else [v], np.float64), dtype=getattr(torch, dtype))


def values(a):
  return a.detach().double().numpy().reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  return spikingjelly.activation_based.surrogate.SoftSign.primitive_function(x, alpha=100.0)

got = value(quantity(array(X)))
print(f'expected {EXPECTED!r} (tolerance {TOLERANCE!r}), got {got!r}')
if EXPECTED is None:
  sys.exit(0 if math.isfinite(got) else 1)
sys.exit(0 if abs(got - EXPECTED) <= (TOLERANCE or 0.0) else 1)
