# pip install rockpool==3.1.0 torch numpy
"""rockpool-004: H (the forward) is nan for PiecewiseExp (float16/bfloat16/float32/float64).

Check: edge (2 results, 2 calls); reference PiecewiseExp(alpha=2.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import torch
import rockpool.nn.modules.torch.lif_torch

X, DTYPE = 1e+39, 'float64'
EXPECTED, TOLERANCE = None, None

def spike(x):
  return rockpool.nn.modules.torch.lif_torch.PeriodicExponential.apply(x + 1.0, torch.tensor(1.0), torch.tensor(0.5), torch.tensor(1.0))


def array(v, dtype=DTYPE, many=False):
  return torch.tensor(np.asarray(v if many else [v], np.float64), dtype=getattr(torch, dtype))


def values(a):
  return a.detach().double().numpy().reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  with torch.no_grad():
    return spike(x)

got = value(quantity(array(X)))
print(f'expected {EXPECTED!r} (tolerance {TOLERANCE!r}), got {got!r}')
if EXPECTED is None:
  sys.exit(0 if math.isfinite(got) else 1)
sys.exit(0 if abs(got - EXPECTED) <= (TOLERANCE or 0.0) else 1)
