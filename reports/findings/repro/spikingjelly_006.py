# pip install spikingjelly==2.0.0 torch numpy
"""spikingjelly-006: P (the primitive) is nan for LeakyRelu (float16/bfloat16/float32/float64).

Check: edge (1 results, 1 calls); reference LeakyRelu(alpha=0.0, beta=1.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import torch
import spikingjelly.activation_based.surrogate

X, DTYPE = float('-inf'), 'float16'
EXPECTED, TOLERANCE = -0.3701171875, 0.005352020263671875

def spike(x):
  return spikingjelly.activation_based.surrogate.LeakyKReLU(leak=0.0, k=1.0)(x)

OTHER = 0.370117


def array(v, dtype=DTYPE, many=False):
  return torch.tensor(np.asarray(v if many else [v], np.float64), dtype=getattr(torch, dtype))


def values(a):
  return a.detach().double().numpy().reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  return spikingjelly.activation_based.surrogate.LeakyKReLU.primitive_function(x, leak=0.0, k=1.0)

got = value(quantity(array(X))) - value(quantity(array(OTHER)))
print(f'expected {EXPECTED!r} (tolerance {TOLERANCE!r}), got {got!r}')
sys.exit(0 if abs(got - EXPECTED) <= (TOLERANCE or 0.0) else 1)
