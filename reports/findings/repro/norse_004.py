# pip install norse==1.1.0 torch numpy
"""norse-004: g differs from the reference × N in float64: at x = N expected N, got N (ratio N, tolerance N).

Check: differential (3 results, 3 calls); reference ERF(alpha=100.0) x 0.02.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import torch
import norse.torch.functional.threshold

X, DTYPE = 0.0, 'float64'
EXPECTED, TOLERANCE = 1.1283791670955126, 4.0088079882559525e-15

def spike(x):
  return norse.torch.functional.threshold.heavi_erfc_fn(x, k=100.0)


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
