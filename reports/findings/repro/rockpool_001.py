# pip install rockpool==3.1.0 torch numpy
"""rockpool-001: the forward (H) returns float32 for a float16/bfloat16/float32/float64 input.

Check: forward, autodiff (10 results, 5 calls); reference ShiftedStep(window=0.5) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import torch
import rockpool.nn.modules.torch.lif_torch

X, DTYPE = 0.5, 'float16'
EXPECTED, TOLERANCE = None, None

def spike(x):
  return rockpool.nn.modules.torch.lif_torch.StepPWL.apply(x + 1.0, torch.tensor(1.0), torch.tensor(0.5), torch.tensor(1.0))


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
