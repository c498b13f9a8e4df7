# pip install snntorch==1.0.0 torch numpy
"""snntorch-001: the forward (H) returns float32 for a float16/bfloat16/float64 input.

Check: forward, autodiff (48 results, 25 calls); reference StraightThrough() x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import torch
import snntorch.surrogate

X, DTYPE = 0.5, 'float16'
EXPECTED, TOLERANCE = None, None

def spike(x):
  return snntorch.surrogate.straight_through_estimator()(x)


def array(v, dtype=DTYPE, many=False):
  return torch.tensor(np.asarray(v if many else [v], np.float64), dtype=getattr(torch, dtype))


def values(a):
  return a.detach().double().numpy().reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  with torch.no_grad():
    return spike(x)

got = quantity(array(X))
print(f'expected dtype {DTYPE}, got {got.dtype}')
sys.exit(0 if str(got.dtype).removeprefix('torch.') == DTYPE else 1)
