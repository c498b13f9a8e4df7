# pip install norse==1.1.0 torch numpy
"""norse-005: g (the VJP) is nan for Circ (float16/bfloat16/float32/float64).

Check: edge, low_precision, differential (6 results, 4 calls); reference Circ(alpha=100.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import torch
import norse.torch.functional.threshold

X, DTYPE = 256.0, 'float16'
EXPECTED, TOLERANCE = None, None

def spike(x):
  return norse.torch.functional.threshold.heavi_circ_fn(x, k=100.0)


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
