"""Independent closed forms of every surrogate in mpmath, written from the specification.

Each entry maps a surrogate name to ``(g, P)``: functions of (x, **params) returning mpmath
numbers. They share no code with the package under test.
"""

from __future__ import annotations

import functools

import mpmath as mp

mp.mp.dps = 40


def _sgn(x):
  return 1 if x >= 0 else -1


def _npdf(x, mu, s):
  return mp.exp(-((x - mu) ** 2) / (2 * s * s)) / (s * mp.sqrt(2 * mp.pi))


def _ncdf(z):
  return mp.ncdf(z)


def _sig(z):
  return 1 / (1 + mp.exp(-z))


def _qps_integral(u, a):
  v = 1 + 2 * u / (a + 1)
  if a == 1:
    return (a + 1) / 2 * mp.log(v)
  return (a + 1) / (2 * (1 - a)) * (v ** (1 - a) - 1)


ORACLES = {
    "Sigmoid": (
        lambda x, alpha=4.0: alpha * _sig(alpha * x) * (1 - _sig(alpha * x)),
        lambda x, alpha=4.0: _sig(alpha * x),
    ),
    "PiecewiseQuadratic": (
        lambda x, alpha=1.0: alpha - alpha**2 * abs(x) if abs(x) <= 1 / alpha else mp.mpf(0),
        lambda x, alpha=1.0: (
            mp.mpf(0) if x < -1 / alpha else mp.mpf(1) if x > 1 / alpha
            else -(alpha**2) * x * abs(x) / 2 + alpha * x + mp.mpf(1) / 2
        ),
    ),
    "PiecewiseExp": (
        lambda x, alpha=1.0: alpha / 2 * mp.exp(-alpha * abs(x)),
        lambda x, alpha=1.0: mp.exp(alpha * x) / 2 if x < 0 else 1 - mp.exp(-alpha * x) / 2,
    ),
    "SoftSign": (
        lambda x, alpha=1.0: alpha / (2 * (1 + alpha * abs(x)) ** 2),
        lambda x, alpha=1.0: mp.mpf(1) / 2 + x / (2 * (1 / alpha + abs(x))),
    ),
    "Arctan": (
        lambda x, alpha=1.0: (alpha / 2) / (1 + (mp.pi * alpha * x / 2) ** 2),
        lambda x, alpha=1.0: mp.atan(mp.pi * alpha * x / 2) / mp.pi + mp.mpf(1) / 2,
    ),
    "NonzeroSignLog": (
        lambda x, alpha=1.0: 1 / (1 / alpha + abs(x)),
        lambda x, alpha=1.0: _sgn(x) * mp.log(alpha * abs(x) + 1),
    ),
    "ERF": (
        lambda x, alpha=1.0: alpha / mp.sqrt(mp.pi) * mp.exp(-(alpha**2) * x * x),
        lambda x, alpha=1.0: (1 + mp.erf(alpha * x)) / 2,
    ),
    "PiecewiseLeakyRelu": (
        lambda x, c=0.01, w=1.0: 1 / (2 * w) if abs(x) <= w else mp.mpf(c),
        lambda x, c=0.01, w=1.0: (
            c * x + c * w if x < -w else c * x - c * w + 1 if x > w else x / (2 * w) + mp.mpf(1) / 2
        ),
    ),
    "SquarewaveFourierSeries": (
        lambda x, n=2, t_period=8.0: 4 / t_period * mp.fsum(
            mp.cos((2 * i - 1) * 2 * mp.pi / t_period * x) for i in range(1, n + 1)
        ),
        lambda x, n=2, t_period=8.0: mp.mpf(1) / 2 + 2 / mp.pi * mp.fsum(
            mp.sin((2 * i - 1) * 2 * mp.pi / t_period * x) / (2 * i - 1) for i in range(1, n + 1)
        ),
    ),
    "S2NN": (
        lambda x, alpha=4.0, beta=1.0, epsilon=1e-8: (
            alpha * _sig(alpha * x) * (1 - _sig(alpha * x)) if x < 0 else beta / (x + 1)
        ),
        lambda x, alpha=4.0, beta=1.0, epsilon=1e-8: (
            _sig(alpha * x) if x < 0 else beta * mp.log(x + 1 + epsilon) + mp.mpf(1) / 2
        ),
    ),
    "QPseudoSpike": (
        lambda x, alpha=2.0: (1 + 2 * abs(x) / (alpha + 1)) ** (-alpha),
        lambda x, alpha=2.0: mp.mpf(1) / 2 + _sgn(x) * _qps_integral(abs(x), alpha),
    ),
    "LeakyRelu": (
        lambda x, alpha=0.1, beta=1.0: mp.mpf(alpha) if x < 0 else mp.mpf(beta),
        lambda x, alpha=0.1, beta=1.0: alpha * x if x < 0 else beta * x,
    ),
    "LogTailedRelu": (
        lambda x, alpha=0.0: mp.mpf(alpha) if x <= 0 else mp.mpf(1) if x <= 1 else 1 / x,
        lambda x, alpha=0.0: alpha * x if x <= 0 else x if x <= 1 else 1 + mp.log(x),
    ),
    "ReluGrad": (
        lambda x, alpha=0.3, width=1.0: max(alpha * width - alpha * abs(x), 0),
        lambda x, alpha=0.3, width=1.0: (
            mp.mpf(0) if x < -width
            else alpha * (x + width) ** 2 / 2 if x <= 0
            else alpha * width**2 - alpha * (width - x) ** 2 / 2 if x <= width
            else alpha * width**2
        ),
    ),
    "GaussianGrad": (
        lambda x, sigma=0.5, alpha=0.5: alpha * _npdf(x, 0, sigma),
        lambda x, sigma=0.5, alpha=0.5: alpha * _ncdf(x / sigma),
    ),
    "InvSquareGrad": (
        lambda x, alpha=100.0: 1 / (alpha * abs(x) + 1) ** 2,
        lambda x, alpha=100.0: x / (alpha * abs(x) + 1),
    ),
    "MultiGaussianGrad": (
        lambda x, h=0.15, s=6.0, sigma=0.5, scale=0.5: scale * (
            (1 + h) * _npdf(x, 0, sigma) - h * _npdf(x, sigma, s * sigma) - h * _npdf(x, -sigma, s * sigma)
        ),
        lambda x, h=0.15, s=6.0, sigma=0.5, scale=0.5: scale * (
            (1 + h) * _ncdf(x / sigma) - h * _ncdf((x - sigma) / (s * sigma)) - h * _ncdf((x + sigma) / (s * sigma))
        ),
    ),
    "SlayerGrad": (
        lambda x, alpha=1.0: mp.exp(-alpha * abs(x)),
        lambda x, alpha=1.0: _sgn(x) * (1 - mp.exp(-alpha * abs(x))) / alpha,
    ),
    "Boxcar": (
        lambda x, width=2.0, height=0.5: mp.mpf(height) if abs(x) <= width / 2 else mp.mpf(0),
        lambda x, width=2.0, height=0.5: height * min(max(x + width / 2, 0), width),
    ),
    "Tanh": (
        lambda x, k=1.0: 4 / (mp.exp(-k * x) + mp.exp(k * x)) ** 2,
        lambda x, k=1.0: mp.tanh(k * x) / k,
    ),
    "StraightThrough": (lambda x: mp.mpf(1), lambda x: mp.mpf(x)),
    "SpikeRateEscape": (
        lambda x, beta=1.0, slope=25.0: slope * mp.exp(-beta * abs(x - 1)),
        lambda x, beta=1.0, slope=25.0: (
            slope / beta * mp.exp(beta * (x - 1)) if x < 1 else slope / beta * (2 - mp.exp(-beta * (x - 1)))
        ),
    ),
    "SparseFastSigmoid": (
        lambda x, slope=25.0, b=1.0: 1 / (1 + slope * abs(x)) ** 2 if x > b else mp.mpf(0),
        lambda x, slope=25.0, b=1.0: (
            x / (1 + slope * abs(x)) - b / (1 + slope * abs(b)) if x > b else mp.mpf(0)
        ),
    ),
    "FakeNumericalGradient": (
        lambda x, alpha=0.3: mp.mpf(alpha) if abs(x) <= 1 / alpha else 1 / abs(x),
        lambda x, alpha=0.3: alpha * x if abs(x) <= 1 / alpha else _sgn(x) * (1 + mp.log(alpha * abs(x))),
    ),
    "NormalisedQPseudoSpike": (
        lambda x, nu=1.0: (1 + 2 * abs(x) / nu) ** (-(nu + 1)),
        lambda x, nu=1.0: (
            (1 + 2 * abs(x) / nu) ** (-nu) / 2 if x < 0 else 1 - (1 + 2 * x / nu) ** (-nu) / 2
        ),
    ),
}


@functools.cache
def _pe_period_mass(width, threshold):
  """∫ g over one period above the threshold, by quadrature split at its kinks."""
  return mp.quad(lambda t: _pe_grad(t, width, threshold), [threshold / 2, threshold, 3 * threshold / 2])


def _pe_grad(x, width=0.5, threshold=1.0):
  if x < 0:
    return mp.exp(-abs(x) / width)
  k = mp.nint(x / threshold)
  return mp.exp(-2 * abs(x - k * threshold) / width)


ORACLES.update({
    "Circ": (
        lambda x, alpha=1.0: alpha**3 / (x * x + alpha * alpha) ** mp.mpf(1.5),
        lambda x, alpha=1.0: alpha * x / mp.sqrt(x * x + alpha * alpha),
    ),
    "ShiftedStep": (
        lambda x, window=1.0: mp.mpf(1) if x >= -window else mp.mpf(0),
        lambda x, window=1.0: max(x + window, mp.mpf(0)),
    ),
    "PeriodicExponential": (
        _pe_grad,
        # x >= 0: P(0) = ∫ e^(t/w) over t < 0 = w, then k whole periods (by quadrature over one
        # centred period) and the part from kθ to x
        lambda x, width=0.5, threshold=1.0: width * mp.exp(x / width) if x < 0 else (
            width + mp.nint(x / threshold) * _pe_period_mass(width, threshold)
            + mp.quad(lambda t: _pe_grad(t, width, threshold), sorted({mp.nint(x / threshold) * threshold, mp.mpf(x)}))
            * (1 if x >= mp.nint(x / threshold) * threshold else -1)
        ),
    ),
})
