# pip install norse==1.1.0 torch numpy
"""norse-003: ∫g over [N, N] = N but P(b) - P(a) = N (the reference's primitive × scale).

Check: quadrature (3 results, 3 calls); reference ERF(alpha=100.0) x 0.02.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import torch
import norse.torch.functional.threshold

X, DTYPE = 0.01, 'float64'
EXPECTED, TOLERANCE = 0.016854015858994296, 5.387008576985702e-12

def spike(x):
  return norse.torch.functional.threshold.heavi_erfc_fn(x, k=100.0)

A, B = -0.01, 0.01


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

nodes, weights = np.polynomial.legendre.leggauss(20)
edges = np.linspace(A, B, 257)
half = (edges[1:] - edges[:-1])[:, None] / 2
points = (edges[:-1] + edges[1:])[:, None] / 2 + nodes[None, :] * half
g = values(quantity(array(points.ravel(), DTYPE, many=True))).reshape(points.shape)
got = float((weights[None, :] * half * g).sum())
print(f'integral of g over [{A}, {B}]: expected {EXPECTED!r} (tolerance {TOLERANCE!r}), '
      f'got {got!r}')
sys.exit(0 if abs(got - EXPECTED) <= TOLERANCE else 1)
