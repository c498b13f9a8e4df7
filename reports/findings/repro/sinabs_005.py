# pip install sinabs==3.1.3 torch numpy
"""sinabs-005: g differs from the reference × N in float64: at x = N expected N, got N (ratio N, tolerance N).

Check: differential (5 results, 5 calls); reference MultiGaussianGrad(h=0.15, s=6.0, sigma=0.5, scale=1.0) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import torch
import sinabs.activation.spike_generation
import sinabs.activation.surrogate_gradient_fn

X, DTYPE = 0.0, 'float64'
EXPECTED, TOLERANCE = 0.8782232733131012, 3.120075930880843e-15

def spike(x):
  return sinabs.activation.spike_generation.SingleSpike.apply((x + 1.0), 1.0, sinabs.activation.surrogate_gradient_fn.MultiGaussian(mu=0.0, sigma=0.5, h=0.15, s=6.0, grad_scale=1.0))


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
