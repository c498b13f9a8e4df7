# ruff: noqa
from .spike_generation import MultiSpike, SingleSpike
from .surrogate_gradient_fn import Gaussian, Heaviside, MultiGaussian, PeriodicExponential, SingleExponential
