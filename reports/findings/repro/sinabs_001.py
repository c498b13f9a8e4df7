# pip install sinabs==3.1.3 torch numpy
"""sinabs-001: the forward (H) returns float32 for a float16/bfloat16/float64 input.

Check: forward, autodiff (36 results, 18 calls); reference ShiftedStep(window=1.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import torch
import sinabs.activation.spike_generation
import sinabs.activation.surrogate_gradient_fn

X, DTYPE = 0.5, 'float16'
EXPECTED, TOLERANCE = None, None

def spike(x):
  return sinabs.activation.spike_generation.SingleSpike.apply((x + 1.0), 1.0, sinabs.activation.surrogate_gradient_fn.Heaviside(window=1.0))


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
