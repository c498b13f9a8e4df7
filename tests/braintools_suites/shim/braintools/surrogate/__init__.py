"""``braintools.surrogate``'s names, resolved to the reference's classes and functional forms.

braintools keeps the reference's names and parameter names, so every name maps to itself.
"""

# ruff: noqa: F401  (re-exports)

from surrogates import (
  ERF,
  S2NN,
  Arctan,
  GaussianGrad,
  InvSquareGrad,
  LeakyRelu,
  LogTailedRelu,
  MultiGaussianGrad,
  NonzeroSignLog,
  PiecewiseExp,
  PiecewiseLeakyRelu,
  PiecewiseQuadratic,
  QPseudoSpike,
  ReluGrad,
  Sigmoid,
  SlayerGrad,
  SoftSign,
  SquarewaveFourierSeries,
  Surrogate,
  arctan,
  erf,
  gaussian_grad,
  inv_square_grad,
  leaky_relu,
  log_tailed_relu,
  multi_gaussian_grad,
  nonzero_sign_log,
  piecewise_exp,
  piecewise_leaky_relu,
  piecewise_quadratic,
  q_pseudo_spike,
  relu_grad,
  s2nn,
  sigmoid,
  slayer_grad,
  soft_sign,
  squarewave_fourier_series,
)
