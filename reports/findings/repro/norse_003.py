# pip install norse==1.1.0 torch numpy
"""norse-003: the double backward is not g'(x) (central differences of g).

Check: second_order (1 results, 1 calls); reference InvSquareGrad(alpha=0.1) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import torch
import norse.torch.functional.superspike

X, DTYPE = -0.6207784992969062, 'float64'
EXPECTED, TOLERANCE = 0.470091019249665, 5.70091019249665e-05

def spike(x):
  return norse.torch.functional.superspike.super_fn(x, alpha=0.1)


def array(v, dtype=DTYPE, many=False):
  return torch.tensor(np.asarray(v if many else [v], np.float64), dtype=getattr(torch, dtype))


def values(a):
  return a.detach().double().numpy().reshape(-1)


def value(a):
  return float(values(a)[0])


GRAD = 'def quantity(x):\n  x = x.clone().requires_grad_(True)\n  (gx,) = torch.autograd.grad(spike(x).sum(), x)\n  return gx\n'

def quantity(x):
  x = x.clone().requires_grad_(True)
  (gx,) = torch.autograd.grad(spike(x).sum(), x, create_graph=True)
  (g2,) = torch.autograd.grad(gx.sum(), x)
  return g2

h = 1e-6 * max(1.0, abs(X))
g = {}
exec(GRAD, globals(), g)
expected = (value(g['quantity'](array(X + h))) - value(g['quantity'](array(X - h)))) / (2 * h)
got = value(quantity(array(X)))
print(f'expected {expected!r} (central differences of g; tolerance {TOLERANCE!r}), '
      f'got {got!r}')
sys.exit(0 if abs(got - expected) <= TOLERANCE else 1)
