# pip install snntorch==1.0.0 torch numpy
"""snntorch-003: g (the VJP) is nan for Sigmoid (float16/bfloat16/float32/float64).

Check: quadrature, edge, low_precision, differential (16 results, 4 calls); reference Sigmoid(alpha=100.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import torch
import snntorch.surrogate

X, DTYPE = -0.11090087890625, 'float16'
EXPECTED, TOLERANCE = None, None

def spike(x):
  return snntorch.surrogate.sigmoid(slope=100.0)(x)


def array(v, dtype=DTYPE, many=False):
  return torch.tensor(np.asarray(v if many else [v], np.float64), dtype=getattr(torch, dtype))


def values(a):
  return a.detach().double().numpy().reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  x = x.clone().requires_grad_(True)
  (gx,) = torch.autograd.grad(spike(x).sum(), x)
  return gx

got = value(quantity(array(X)))
print(f'expected {EXPECTED!r} (tolerance {TOLERANCE!r}), got {got!r}')
if EXPECTED is None:
  sys.exit(0 if math.isfinite(got) else 1)
sys.exit(0 if abs(got - EXPECTED) <= (TOLERANCE or 0.0) else 1)
