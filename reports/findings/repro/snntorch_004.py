# pip install snntorch==1.0.0 torch numpy
"""snntorch-004: forward is not H(x): H raised TypeError: StochasticSpikeOperator.forward() missing N required positional argument: 'variance'.

Check: forward, autodiff, forward_mode, second_order, transforms, quadrature, edge, low_precision, differential (18 results, 2 calls); reference LeakyRelu(alpha=0.1, beta=1.0) x 1.0.
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
  return snntorch.surrogate.LSO(slope=0.1)(x)


def array(v, dtype=DTYPE, many=False):
  return torch.tensor(np.asarray(v if many else [v], np.float64), dtype=getattr(torch, dtype))


def values(a):
  return a.detach().double().numpy().reshape(-1)


def value(a):
  return float(values(a)[0])


def quantity(x):
  with torch.no_grad():
    return spike(x)

try:
  got = quantity(array(X))
except Exception as exc:  # the defect
  print(f'expected: no exception; got {type(exc).__name__}: {exc}')
  sys.exit(1)
print(f'expected: no exception; got {value(got)!r}')
sys.exit(0)
