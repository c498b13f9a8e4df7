# pip install sinabs==3.1.3 torch numpy
"""sinabs-004: ∫g over [N, N] = N but P(b) - P(a) = N (the reference's primitive × scale).

Check: quadrature (4 results, 4 calls); reference MultiGaussianGrad(h=0.15, s=2.0, sigma=0.05, scale=0.5) x 1.0.
Exits 1 while the defect is present, 0 once it is fixed.
"""
import math
import sys

import numpy as np
import torch
import sinabs.activation.spike_generation
import sinabs.activation.surrogate_gradient_fn

X, DTYPE = 0.05, 'float64'
EXPECTED, TOLERANCE = 0.3413447460685429, 1.0343396211387448e-10

def spike(x):
  return sinabs.activation.spike_generation.SingleSpike.apply((x + 1.0), 1.0, sinabs.activation.surrogate_gradient_fn.MultiGaussian(mu=0.0, sigma=0.05, h=0.15, s=2.0, grad_scale=0.5))

A, B = -0.05, 0.05


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
