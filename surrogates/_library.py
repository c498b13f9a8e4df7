"""The surrogates: one declaration each (parameters, g, P, metadata).

Formulas follow the project's specification; see each class's docstring. ``x`` in ``_grad`` and
``_fun`` is already in the compute dtype (float32 or float64).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
from jax import lax

from surrogates._core import (
  NON_NEGATIVE,
  POSITIVE,
  POSITIVE_INT,
  REAL,
  Array,
  Limits,
  Surrogate,
  exp_product,
  expm1_over,
  gaussian_sum,
  inverse_power,
  is_negative,
  is_negative_bits,
  is_number,
  is_positive,
  log1p_scaled,
  logistic_density,
  normal_cdf,
  odd,
  odd_cos_sum_turns,
  param,
  scaled,
)
from surrogates._registry import functional, register

_INF = math.inf
_NORMALISED = Limits(0.0, 0.0, 0.0, 1.0)
_SQRT_2PI = math.sqrt(2 * math.pi)


def _divergent_mass(*tail_values: float) -> float:
  """Mass of a surrogate whose tails tend to the given constants: inf unless all are zero."""
  if any(v > 0 for v in tail_values) and not any(v < 0 for v in tail_values):
    return _INF
  if any(v < 0 for v in tail_values) and not any(v > 0 for v in tail_values):
    return -_INF
  return math.nan


def _linear_limit(c: float, sign: float) -> float:
  """lim c·x for x -> sign·inf."""
  return 0.0 if c == 0 else math.copysign(_INF, c * sign)


# ------------------------------------------------------------------------------------------
# braintools.surrogate
# ------------------------------------------------------------------------------------------


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Sigmoid(Surrogate):
  """g = α σ(αx)(1 - σ(αx)),  P = σ(αx).

  Paths: g by :func:`logistic_density` (float32 and narrower: a polynomial 2^y, no call to exp; float64:
  ``jnp.exp``); P by ``lax.logistic`` in every dtype.
  """

  alpha: float = param(4.0, POSITIVE)
  examples = ({}, {"alpha": 0.5}, {"alpha": 100.0})

  def _grad(self, x: Array) -> Array:
    return self.alpha * logistic_density(self.alpha * x)

  def _fun(self, x: Array) -> Array:
    return lax.logistic(self.alpha * x)

  def mass(self) -> float:
    return 1.0

  def limits(self) -> Limits:
    return _NORMALISED

  def length_scale(self) -> float:
    return 1.0 / self.alpha


@register
@dataclasses.dataclass(frozen=True, repr=False)
class PiecewiseQuadratic(Surrogate):
  """g = α - α²|x| for |x| <= 1/α, else 0;  P = -u|u|/2 + u + 1/2 with u = clip(αx, -1, 1)."""

  alpha: float = param(1.0, POSITIVE)
  examples = ({}, {"alpha": 0.05}, {"alpha": 50.0})
  smoothness = "continuous"

  def _grad(self, x: Array) -> Array:
    # α - α²|x| as one fused multiply-add, then 0 where negative: abs, fma, max. A select, not jnp.maximum,
    # so a traced α's tangent α̇(1 - 2α|x|), infinite at huge |x|, is dropped there instead of giving inf·0.
    t = self.alpha - (self.alpha * self.alpha) * jnp.abs(x)
    return jnp.where(t < 0.0, 0.0, t)

  def _fun(self, x: Array) -> Array:
    u = jnp.clip(self.alpha * x, -1.0, 1.0)
    return -0.5 * u * jnp.abs(u) + u + 0.5

  def kinks(self) -> tuple[float, ...]:
    return (-1.0 / self.alpha, 0.0, 1.0 / self.alpha)

  def mass(self) -> float:
    return 1.0

  def limits(self) -> Limits:
    return _NORMALISED

  def length_scale(self) -> float:
    return 1.0 / self.alpha


@register
@dataclasses.dataclass(frozen=True, repr=False)
class PiecewiseExp(Surrogate):
  """g = (α/2) e^(-α|x|);  P = e^(αx)/2 for x < 0, 1 - e^(-αx)/2 for x >= 0."""

  alpha: float = param(1.0, POSITIVE)
  examples = ({}, {"alpha": 0.1}, {"alpha": 100.0})
  smoothness = "continuous"

  def _grad(self, x: Array) -> Array:
    return 0.5 * self.alpha * jnp.exp(-self.alpha * jnp.abs(x))

  def _fun(self, x: Array) -> Array:
    return 0.5 + odd(x, -0.5 * jnp.expm1(-self.alpha * jnp.abs(x)))

  def kinks(self) -> tuple[float, ...]:
    return (0.0,)

  def mass(self) -> float:
    return 1.0

  def limits(self) -> Limits:
    return _NORMALISED

  def length_scale(self) -> float:
    return 1.0 / self.alpha


@register
@dataclasses.dataclass(frozen=True, repr=False)
class SoftSign(Surrogate):
  """g = α / (2(1 + α|x|)²);  P = 1/2 + x / (2(1/α + |x|)), written as 1/2 + sgn(x)(1 - r)/2."""

  alpha: float = param(1.0, POSITIVE)
  examples = ({}, {"alpha": 0.1}, {"alpha": 100.0})
  smoothness = "continuous"

  def _grad(self, x: Array) -> Array:
    r = 1.0 / (1.0 + self.alpha * jnp.abs(x))
    return 0.5 * self.alpha * r * r

  def _fun(self, x: Array) -> Array:
    r = 1.0 / (1.0 + self.alpha * jnp.abs(x))
    return 0.5 + odd(x, 0.5 * (1.0 - r))

  def kinks(self) -> tuple[float, ...]:
    return (0.0,)

  def mass(self) -> float:
    return 1.0

  def limits(self) -> Limits:
    return _NORMALISED

  def length_scale(self) -> float:
    return 1.0 / self.alpha


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Arctan(Surrogate):
  """g = (α/2) / (1 + (παx/2)²);  P = arctan(παx/2)/π + 1/2."""

  alpha: float = param(1.0, POSITIVE)
  examples = ({}, {"alpha": 0.1}, {"alpha": 100.0})

  def _grad(self, x: Array) -> Array:
    # 1/(1 + z²) as r²/(r² + q²) with q = min(1, 1/|z|)-style scaling would also work; here the
    # product z·z can overflow only where g is far below the smallest normal number, and the
    # clip keeps its derivative finite there.
    z = jnp.clip(0.5 * math.pi * self.alpha * x, -1e18, 1e18)
    g = 0.5 * self.alpha / (1.0 + z * z)
    return jnp.where(jnp.isinf(x), 0.0, g)

  def _fun(self, x: Array) -> Array:
    return jnp.arctan(0.5 * math.pi * self.alpha * x) / math.pi + 0.5

  def mass(self) -> float:
    return 1.0

  def limits(self) -> Limits:
    return _NORMALISED

  def length_scale(self) -> float:
    return 1.0 / self.alpha

  def saturation(self) -> float:
    # |παx/2| = 1e18: z is clipped there in g, and arctan(z) rounds to ±π/2 (1/z < half an ulp)
    return 1e18 / (0.5 * math.pi * self.alpha)


@register
@dataclasses.dataclass(frozen=True, repr=False)
class NonzeroSignLog(Surrogate):
  """g = 1 / (1/α + |x|);  P = sgn(x) log(α|x| + 1)."""

  alpha: float = param(1.0, POSITIVE)
  examples = ({}, {"alpha": 0.1}, {"alpha": 100.0})
  smoothness = "continuous"

  def _grad(self, x: Array) -> Array:
    return 1.0 / (1.0 / self.alpha + jnp.abs(x))

  def _fun(self, x: Array) -> Array:
    return odd(x, log1p_scaled(self.alpha, jnp.abs(x)))

  def kinks(self) -> tuple[float, ...]:
    return (0.0,)

  def mass(self) -> float:
    return _INF

  def limits(self) -> Limits:
    return Limits(0.0, 0.0, -_INF, _INF)

  def length_scale(self) -> float:
    return 1.0 / self.alpha


@register
@dataclasses.dataclass(frozen=True, repr=False)
class ERF(Surrogate):
  """g = (α/√π) e^(-α²x²);  P = (1 + erf(αx))/2 = Φ(√2 αx).

  Paths: g by :func:`gaussian_sum` (float32 and narrower: a polynomial 2^y, no call to exp; float64:
  ``jnp.exp``); P by ``erfc`` (:func:`normal_cdf`) in every dtype.
  """

  alpha: float = param(1.0, POSITIVE)
  examples = ({}, {"alpha": 0.1}, {"alpha": 100.0})

  def _grad(self, x: Array) -> Array:
    return gaussian_sum(x, (self.alpha / math.sqrt(math.pi), self.alpha * self.alpha, 0.0))

  def _fun(self, x: Array) -> Array:
    return normal_cdf(math.sqrt(2.0) * self.alpha * x)

  def mass(self) -> float:
    return 1.0

  def limits(self) -> Limits:
    return _NORMALISED

  def length_scale(self) -> float:
    return 1.0 / self.alpha

  def saturation(self) -> float:
    return 40.0 / (math.sqrt(2.0) * self.alpha)  # gaussian's and normal_cdf's own clip at ±40


@register
@dataclasses.dataclass(frozen=True, repr=False)
class PiecewiseLeakyRelu(Surrogate):
  """g = 1/(2w) for |x| <= w, else c;  P = clip(x, -w, w)/(2w) + 1/2 + c(x - clip(x, -w, w)).

  braintools' docstring says 1/w inside the window; its code and primitive give 1/(2w).
  """

  c: float = param(0.01, NON_NEGATIVE)
  w: float = param(1.0, POSITIVE)
  examples = ({}, {"c": 0.0, "w": 0.01}, {"c": 0.5, "w": 10.0})
  smoothness = "discontinuous"

  def _grad(self, x: Array) -> Array:
    return jnp.where(jnp.abs(x) <= self.w, 0.5 / self.w, self.c).astype(x.dtype)

  def _fun(self, x: Array) -> Array:
    inner = jnp.clip(x, -self.w, self.w)
    return inner / (2 * self.w) + 0.5 + scaled(self.c, x - inner)

  def kinks(self) -> tuple[float, ...]:
    return (-self.w, self.w)

  def jumps(self) -> tuple[float, ...]:
    return self.kinks() if self.c != 0.5 / self.w else ()

  def mass(self) -> float:
    return _INF if self.c > 0 else 1.0

  def limits(self) -> Limits:
    return Limits(self.c, self.c, -_INF if self.c else 0.0, _INF if self.c else 1.0)

  def length_scale(self) -> float:
    return self.w


@register
@dataclasses.dataclass(frozen=True, repr=False)
class SquarewaveFourierSeries(Surrogate):
  """g = (4/T) Σ_{i=1..n} cos((2i-1)ωx);  P = 1/2 + (2/π) Σ sin((2i-1)ωx)/(2i-1);  ω = 2π/T.

  Two paths, by quantity:

  - g in float32 and narrower (the VJP's hot path): ``odd_cos_sum_turns(x/T, n)``: range reduction by
    the period, a quarter-period fold and a degree-5 polynomial for cos ωx (mul/add/select only), then
    the odd harmonics by the Chebyshev recurrence in Reinsch's stable form. x/T is clipped
    to ±2^24, beyond which every float32 x/T is an integer (so g = (4/T)·n there, as for the exact
    reduction), keeping every finite input finite.
  - P, and g in float64: x is first reduced exactly modulo the period (``lax.rem``), then one
    ``jnp.cos`` and one ``jnp.sin`` and rotations by 2θ give the harmonics; exact at huge arguments.
  """

  n: int = param(2, POSITIVE_INT)
  t_period: float = param(8.0, POSITIVE)
  examples = ({}, {"n": 8}, {"n": 1, "t_period": 0.5}, {"n": 5, "t_period": 4.0})

  def _harmonics(self, x: Array) -> list[tuple[int, Array, Array]]:
    """(k, cos kθ, sin kθ) for k = 1, 3, ..., 2n-1, θ = ωx: one cos and one sin of θ, then
    rotations by 2θ (cos and sin dominate the cost; the rotations add an ulp or so per step)."""
    xr = jnp.fmod(x, jnp.asarray(self.t_period, x.dtype))  # lax.rem, broadcast (a per-neuron period)
    theta = (2 * math.pi / self.t_period) * xr
    c, s = jnp.cos(theta), jnp.sin(theta)
    c2, s2 = 1.0 - 2.0 * s * s, 2.0 * s * c
    out = [(1, c, s)]
    for k in range(3, 2 * self.n, 2):
      c, s = c * c2 - s * s2, s * c2 + c * s2
      out.append((k, c, s))
    return out

  def _grad(self, x: Array) -> Array:
    if x.dtype == jnp.float64:
      return (4.0 / self.t_period) * sum(c for _, c, _ in self._harmonics(x))
    u = jnp.clip(x * (1.0 / jnp.asarray(self.t_period, x.dtype)), -(2.0**24), 2.0**24)
    return (4.0 / self.t_period) * odd_cos_sum_turns(u, int(self.n))

  def _fun(self, x: Array) -> Array:
    return 0.5 + (2.0 / math.pi) * sum(s / k for k, _, s in self._harmonics(x))

  def mass(self) -> float:
    return math.nan

  def limits(self) -> None:
    return None

  def length_scale(self) -> float:
    return self.t_period / (4 * self.n)

  def period(self) -> float:
    return self.t_period

  def argument_condition(self, x):
    # Σ_i |x|·(2i-1)ω·(4/T): every term's argument (2i-1)ωx is rounded separately.
    return abs(x) * (4.0 / self.t_period) * (2 * math.pi / self.t_period) * self.n**2


@register
@dataclasses.dataclass(frozen=True, repr=False)
class S2NN(Surrogate):
  """g = α σ(αx)(1-σ(αx)) for x < 0, β/(x+1) for x >= 0;  P = σ(αx) | β log(x+1+ε) + 1/2.

  The right branch is evaluated at max(x, 0), so its log and 1/(x+1) never see x <= -1.

  Paths: g with one division for both branches, the sign decided on the bits (exact for subnormals),
  e = exp(-α|x|) by :func:`exp_product` (float32 and narrower: a polynomial 2^y, no call to exp;
  float64: ``jnp.exp``); P by ``lax.logistic`` and ``log1p`` in every dtype.
  """

  alpha: float = param(4.0, POSITIVE)
  beta: float = param(1.0, POSITIVE)
  epsilon: float = param(1e-8, NON_NEGATIVE)
  examples = ({}, {"alpha": 100.0, "beta": 0.1, "epsilon": 0.0}, {"alpha": 0.5, "beta": 10.0})
  smoothness = "discontinuous"

  def _grad(self, x: Array) -> Array:
    # One division for both branches: α·e/(1 + e)² (e = exp(-α|x|), the logistic density) or β/(1 + x⁺).
    neg = is_negative_bits(x)
    e = exp_product(-self.alpha, jnp.abs(x))
    d = 1.0 + e
    return jnp.where(neg, self.alpha * e, self.beta) / jnp.where(neg, d * d, jnp.maximum(x, 0.0) + 1.0)

  def _fun(self, x: Array) -> Array:
    xp = jnp.maximum(x, 0.0)
    right = self.beta * jnp.log1p(xp + self.epsilon) + 0.5
    return jnp.where(is_negative(x), lax.logistic(self.alpha * x), right)

  def kinks(self) -> tuple[float, ...]:
    return (0.0,)

  def jumps(self) -> tuple[float, ...]:
    return (0.0,) if self.alpha / 4 != self.beta else ()

  def primitive_rtol(self) -> float:
    return self.epsilon

  def mass(self) -> float:
    return _INF

  def limits(self) -> Limits:
    return Limits(0.0, 0.0, 0.0, _INF)

  def length_scale(self) -> float:
    return min(1.0 / self.alpha, 1.0)


@register
@dataclasses.dataclass(frozen=True, repr=False)
class QPseudoSpike(Surrogate):
  """g = (1 + 2|x|/(α+1))^(-α);  P = 1/2 + sgn(x) I(|x|).

  I(u) = (α+1)/2 · ((1+v)^(1-α) - 1)/(1-α) with v = 2u/(α+1), evaluated as
  (α+1)/2 · expm1((1-α) L)/(1-α) with L = log1p(v) (:func:`expm1_over`): exact limit (α+1)/2 · L at
  α = 1, and smooth there in α too.
  """

  alpha: float = param(2.0, POSITIVE)
  examples = ({}, {"alpha": 1.0}, {"alpha": 0.5}, {"alpha": 10.0})
  smoothness = "continuous"

  def _log_base(self, x: Array) -> Array:
    return log1p_scaled(2.0 / (self.alpha + 1.0), jnp.abs(x))

  def _grad(self, x: Array) -> Array:
    return inverse_power(2.0 / (self.alpha + 1.0) * jnp.abs(x), self.alpha)

  def _fun(self, x: Array) -> Array:
    a = self.alpha
    log_base = self._log_base(x)
    return 0.5 + odd(x, 0.5 * (a + 1.0) * expm1_over(1.0 - a, log_base))

  def kinks(self) -> tuple[float, ...]:
    return (0.0,)

  def mass(self) -> float:
    return (self.alpha + 1) / (self.alpha - 1) if self.alpha > 1 else _INF

  def limits(self) -> Limits:
    half = 0.5 * self.mass()
    return Limits(0.0, 0.0, 0.5 - half, 0.5 + half)

  def length_scale(self) -> float:
    return 0.5 * (self.alpha + 1.0) / max(self.alpha, 1.0)


@register
@dataclasses.dataclass(frozen=True, repr=False)
class LeakyRelu(Surrogate):
  """g = α for x < 0, β for x >= 0;  P = αx for x < 0, βx for x >= 0."""

  alpha: float = param(0.1, REAL)
  beta: float = param(1.0, REAL)
  examples = ({}, {"alpha": 0.0, "beta": 1.0}, {"alpha": -0.5, "beta": 2.0})
  smoothness = "discontinuous"

  def _grad(self, x: Array) -> Array:
    return jnp.where(is_negative(x), self.alpha, self.beta).astype(x.dtype)

  def _fun(self, x: Array) -> Array:
    return scaled(self.alpha, jnp.minimum(x, 0.0)) + scaled(self.beta, jnp.maximum(x, 0.0))

  def kinks(self) -> tuple[float, ...]:
    return (0.0,)

  def jumps(self) -> tuple[float, ...]:
    return (0.0,) if self.alpha != self.beta else ()

  def mass(self) -> float:
    return _divergent_mass(self.alpha, self.beta)

  def limits(self) -> Limits:
    return Limits(self.alpha, self.beta, _linear_limit(self.alpha, -1), _linear_limit(self.beta, 1))

  def length_scale(self) -> float:
    return 1.0  # piecewise constant: no width of its own


@register
@dataclasses.dataclass(frozen=True, repr=False)
class LogTailedRelu(Surrogate):
  """g = α for x <= 0, 1 for 0 < x <= 1, 1/x for x > 1;  P = αx | x | 1 + log x.

  Written as P = α min(x, 0) + clip(x, 0, 1) + log(max(x, 1)), with no dead branch.
  """

  alpha: float = param(0.0, REAL)
  examples = ({}, {"alpha": 0.1}, {"alpha": -1.0})
  smoothness = "discontinuous"

  def _grad(self, x: Array) -> Array:
    tail = 1.0 / jnp.maximum(x, 1.0)
    return jnp.where(is_positive(x), tail, self.alpha).astype(x.dtype)

  def _fun(self, x: Array) -> Array:
    return scaled(self.alpha, jnp.minimum(x, 0.0)) + jnp.clip(x, 0.0, 1.0) + jnp.log(jnp.maximum(x, 1.0))

  def kinks(self) -> tuple[float, ...]:
    return (0.0, 1.0)

  def jumps(self) -> tuple[float, ...]:
    return (0.0,) if self.alpha != 1.0 else ()

  def mass(self) -> float:
    return _INF if self.alpha >= 0 else math.nan

  def limits(self) -> Limits:
    return Limits(self.alpha, 0.0, _linear_limit(self.alpha, -1), _INF)

  def length_scale(self) -> float:
    return 1.0  # the kinks are at 0 and 1


@register
@dataclasses.dataclass(frozen=True, repr=False)
class ReluGrad(Surrogate):
  """g = max(αw - α|x|, 0);  P = α(w²/2 + uw - u|u|/2) with u = clip(x, -w, w)."""

  alpha: float = param(0.3, POSITIVE)
  width: float = param(1.0, POSITIVE)
  examples = ({}, {"alpha": 100.0, "width": 0.01}, {"alpha": 0.01, "width": 10.0})
  smoothness = "continuous"

  def _grad(self, x: Array) -> Array:
    # αw - α|x| as one fused multiply-add, then the clamp at 0: abs, fma, max.
    return jnp.maximum(self.alpha * self.width - self.alpha * jnp.abs(x), 0.0)

  def _fun(self, x: Array) -> Array:
    w = self.width
    u = jnp.clip(x, -w, w)
    return self.alpha * (0.5 * w * w + u * w - 0.5 * u * jnp.abs(u))

  def kinks(self) -> tuple[float, ...]:
    return (-self.width, 0.0, self.width)

  def mass(self) -> float:
    return self.alpha * self.width**2

  def limits(self) -> Limits:
    return Limits(0.0, 0.0, 0.0, self.mass())

  def length_scale(self) -> float:
    return self.width


@register
@dataclasses.dataclass(frozen=True, repr=False)
class GaussianGrad(Surrogate):
  """g = α N(x; 0, σ);  P = α Φ(x/σ).

  Paths: g by :func:`gaussian_sum` (float32 and narrower: a polynomial 2^y, no call to exp; float64:
  ``jnp.exp``); P by ``erfc`` (:func:`normal_cdf`) in every dtype.
  """

  sigma: float = param(0.5, POSITIVE)
  alpha: float = param(0.5, POSITIVE)
  examples = ({}, {"sigma": 0.05}, {"sigma": 5.0, "alpha": 2.0})

  def _grad(self, x: Array) -> Array:
    return gaussian_sum(x, (self.alpha / (self.sigma * _SQRT_2PI), 0.5 / (self.sigma * self.sigma), 0.0))

  def _fun(self, x: Array) -> Array:
    return self.alpha * normal_cdf(x / self.sigma)

  def mass(self) -> float:
    return self.alpha

  def limits(self) -> Limits:
    return Limits(0.0, 0.0, 0.0, self.alpha)

  def length_scale(self) -> float:
    return self.sigma

  def saturation(self) -> float:
    return 40.0 * self.sigma  # gaussian's and normal_cdf's own clip at ±40


@register
@dataclasses.dataclass(frozen=True, repr=False)
class InvSquareGrad(Surrogate):
  """g = 1/(α|x| + 1)²;  P = x/(α|x| + 1), written as sgn(x)(1 - r)/α with r = 1/(1 + α|x|)."""

  alpha: float = param(100.0, POSITIVE)
  examples = ({}, {"alpha": 1000.0}, {"alpha": 1.0}, {"alpha": 0.1})
  smoothness = "continuous"

  def _grad(self, x: Array) -> Array:
    r = 1.0 / (1.0 + self.alpha * jnp.abs(x))
    return r * r

  def _fun(self, x: Array) -> Array:
    r = 1.0 / (1.0 + self.alpha * jnp.abs(x))
    return odd(x, (1.0 - r) / self.alpha)

  def kinks(self) -> tuple[float, ...]:
    return (0.0,)

  def mass(self) -> float:
    return 2.0 / self.alpha

  def limits(self) -> Limits:
    return Limits(0.0, 0.0, -1.0 / self.alpha, 1.0 / self.alpha)

  def length_scale(self) -> float:
    return 1.0 / self.alpha


@register
@dataclasses.dataclass(frozen=True, repr=False)
class MultiGaussianGrad(Surrogate):
  """g = scale[(1+h)N(x;0,σ) - hN(x;σ,sσ) - hN(x;-σ,sσ)];  P = scale[(1+h)Φ(x/σ) - hΦ(.) - hΦ(.)].

  g is negative in the tails by design.

  Paths: g by :func:`gaussian_sum`, one clip of x for the three terms (float32 and narrower: a
  polynomial 2^y per term, no call to exp; float64: ``jnp.exp``); P by ``erfc`` (:func:`normal_cdf`).
  """

  h: float = param(0.15, NON_NEGATIVE)
  s: float = param(6.0, POSITIVE)
  sigma: float = param(0.5, POSITIVE)
  scale: float = param(0.5, POSITIVE)
  examples = ({}, {"h": 0.0}, {"sigma": 0.05, "s": 2.0}, {"h": 0.5, "s": 20.0, "sigma": 2.0, "scale": 2.0})

  def _grad(self, x: Array) -> Array:
    sg, wide = self.sigma, self.s * self.sigma
    k_centre = self.scale * (1.0 + self.h) / (sg * _SQRT_2PI)
    k_side = -self.scale * self.h / (wide * _SQRT_2PI)
    a_side = 0.5 / (wide * wide)
    return gaussian_sum(x, (k_centre, 0.5 / (sg * sg), 0.0), (k_side, a_side, sg), (k_side, a_side, -sg))

  def _fun(self, x: Array) -> Array:
    sg, wide = self.sigma, self.s * self.sigma
    centre = (1.0 + self.h) * normal_cdf(x / sg)
    sides = self.h * (normal_cdf((x - sg) / wide) + normal_cdf((x + sg) / wide))
    return self.scale * (centre - sides)

  def mass(self) -> float:
    return self.scale * (1.0 - self.h)

  def limits(self) -> Limits:
    return Limits(0.0, 0.0, 0.0, self.mass())

  def length_scale(self) -> float:
    return self.sigma

  def saturation(self) -> float:
    return self.sigma * (40.0 * (1.0 + self.s) + 1.0)  # every term at gaussian's/normal_cdf's clip at ±40


@register
@dataclasses.dataclass(frozen=True, repr=False)
class SlayerGrad(Surrogate):
  """g = e^(-α|x|);  P = sgn(x)(1 - e^(-α|x|))/α."""

  alpha: float = param(1.0, POSITIVE)
  examples = ({}, {"alpha": 0.1}, {"alpha": 100.0})
  smoothness = "continuous"

  def _grad(self, x: Array) -> Array:
    return jnp.exp(-self.alpha * jnp.abs(x))

  def _fun(self, x: Array) -> Array:
    return odd(x, -jnp.expm1(-self.alpha * jnp.abs(x)) / self.alpha)

  def kinks(self) -> tuple[float, ...]:
    return (0.0,)

  def mass(self) -> float:
    return 2.0 / self.alpha

  def limits(self) -> Limits:
    return Limits(0.0, 0.0, -1.0 / self.alpha, 1.0 / self.alpha)

  def length_scale(self) -> float:
    return 1.0 / self.alpha


# ------------------------------------------------------------------------------------------
# spyx.axn
# ------------------------------------------------------------------------------------------


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Boxcar(Surrogate):
  """g = h for |x| <= w/2, else 0;  P = h (clip(x, -w/2, w/2) + w/2).

  spyx gives 0 at exactly |x| = w/2; the reference includes the end points.
  """

  width: float = param(2.0, POSITIVE)
  height: float = param(0.5, POSITIVE)
  examples = ({}, {"width": 0.02, "height": 50.0}, {"width": 20.0, "height": 0.05})
  smoothness = "discontinuous"

  def _grad(self, x: Array) -> Array:
    return jnp.where(jnp.abs(x) <= 0.5 * self.width, self.height, 0.0).astype(x.dtype)

  def _fun(self, x: Array) -> Array:
    half = 0.5 * self.width
    return self.height * (jnp.clip(x, -half, half) + half)

  def kinks(self) -> tuple[float, ...]:
    return (-0.5 * self.width, 0.5 * self.width)

  def jumps(self) -> tuple[float, ...]:
    return self.kinks()

  def mass(self) -> float:
    return self.height * self.width

  def limits(self) -> Limits:
    return Limits(0.0, 0.0, 0.0, self.mass())

  def length_scale(self) -> float:
    return self.width


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Tanh(Surrogate):
  """g = 4/(e^(-kx) + e^(kx))² = sech²(kx);  P = tanh(kx)/k.

  sech²(z) = 4σ(2z)σ(-2z), which neither overflows nor loses the tails.

  Paths: g by :func:`logistic_density` (float32 and narrower: a polynomial 2^y, no call to exp; float64:
  ``jnp.exp``); P by ``jnp.tanh`` in every dtype.
  """

  k: float = param(1.0, POSITIVE)
  examples = ({}, {"k": 0.1}, {"k": 100.0})

  def _grad(self, x: Array) -> Array:
    return 4.0 * logistic_density(2.0 * self.k * x)

  def _fun(self, x: Array) -> Array:
    return jnp.tanh(self.k * x) / self.k

  def mass(self) -> float:
    return 2.0 / self.k

  def limits(self) -> Limits:
    return Limits(0.0, 0.0, -1.0 / self.k, 1.0 / self.k)

  def length_scale(self) -> float:
    return 1.0 / self.k

  def saturation(self) -> float:
    return 400.0 / self.k  # e^(-800) = 0 and tanh(400) = 1 in every dtype


@register
@dataclasses.dataclass(frozen=True, repr=False)
class StraightThrough(Surrogate):
  """g = 1;  P = x."""

  examples = ({},)

  def _grad(self, x: Array) -> Array:
    return jnp.ones_like(x)

  def _fun(self, x: Array) -> Array:
    return x

  def mass(self) -> float:
    return _INF

  def limits(self) -> Limits:
    return Limits(1.0, 1.0, -_INF, _INF)

  def length_scale(self) -> float:
    return 1.0  # constant: no width


# ------------------------------------------------------------------------------------------
# Shapes of snntorch.surrogate and spikingjelly.activation_based.surrogate
# ------------------------------------------------------------------------------------------


@register
@dataclasses.dataclass(frozen=True, repr=False)
class SpikeRateEscape(Surrogate):
  """g = slope·e^(-β|x-1|), centred at x = 1 (snntorch ``spike_rate_escape``);
  P = (slope/β)·e^(β(x-1)) for x < 1, (slope/β)·(2 - e^(-β(x-1))) for x >= 1.
  """

  beta: float = param(1.0, POSITIVE)
  slope: float = param(25.0, POSITIVE)
  examples = ({}, {"beta": 0.5, "slope": 1.0}, {"beta": 10.0, "slope": 2.0})
  smoothness = "continuous"

  def _grad(self, x: Array) -> Array:
    return self.slope * jnp.exp(-self.beta * jnp.abs(x - 1.0))

  def _fun(self, x: Array) -> Array:
    d = x - 1.0
    e = jnp.exp(-self.beta * jnp.abs(d))
    return (self.slope / self.beta) * jnp.where(is_negative(d), e, 2.0 - e)

  def kinks(self) -> tuple[float, ...]:
    return (1.0,)

  def mass(self) -> float:
    return 2.0 * self.slope / self.beta

  def limits(self) -> Limits:
    return Limits(0.0, 0.0, 0.0, self.mass())

  def length_scale(self) -> float:
    return 1.0 / self.beta


@register
@dataclasses.dataclass(frozen=True, repr=False)
class SparseFastSigmoid(Surrogate):
  """g = 1/(1 + slope·|x|)² for x > b, else 0 (snntorch ``SFS``);  P = F(max(x, b)) - F(b), F(x) = x/(1 + slope|x|).

  With r = 1/(1 + slope|x|), F = sgn(x)(1 - r)/slope: finite at every input, and the difference
  is formed from the r's without cancellation.
  """

  slope: float = param(25.0, POSITIVE)
  b: float = param(1.0, REAL)
  examples = ({}, {"slope": 1.0, "b": -1.0}, {"slope": 100.0, "b": 0.0})
  smoothness = "discontinuous"

  def _above(self, x: Array) -> Array:
    if is_number(self.b):
      return is_positive(x) if self.b == 0 else x > self.b
    return jnp.where(self.b == 0, is_positive(x), x > self.b)

  def _r(self, x: Array) -> Array:
    return 1.0 / (1.0 + self.slope * jnp.abs(x))

  def _grad(self, x: Array) -> Array:
    r = self._r(x)
    return jnp.where(self._above(x), r * r, 0.0).astype(x.dtype)

  def _fun(self, x: Array) -> Array:
    # F(v) = sgn(v)(1 - r(v))/slope; F(x) - F(b) written without cancellation: on one side of 0 it
    # is the difference of the r's, across 0 the sum of two positive terms.
    b = jnp.asarray(self.b, x.dtype)
    xm = jnp.maximum(x, b)
    r_x, r_b = self._r(xm), self._r(b)
    right = (r_b - r_x) / self.slope
    if is_number(self.b) and self.b >= 0:
      return right
    across = jnp.where(xm < 0, r_x - r_b, (1.0 - r_x) + (1.0 - r_b)) / self.slope
    return across if is_number(self.b) else jnp.where(b >= 0, right, across)

  def kinks(self) -> tuple[float, ...]:
    return (self.b, 0.0) if self.b < 0 else (self.b,)

  def jumps(self) -> tuple[float, ...]:
    return (self.b,)

  def mass(self) -> float:
    r_b = 1.0 / (1.0 + self.slope * abs(self.b))  # 1/slope - b/(1 + slope|b|), without cancellation
    return (r_b if self.b >= 0 else 2.0 - r_b) / self.slope

  def limits(self) -> Limits:
    return Limits(0.0, 0.0, 0.0, self.mass())

  def length_scale(self) -> float:
    return max(1.0 / self.slope, 0.5 * abs(self.b))


@register
@dataclasses.dataclass(frozen=True, repr=False)
class FakeNumericalGradient(Surrogate):
  """g = min(α, 1/|x|) (spikingjelly ``FakeNumericalGradient``);  P = αx for |x| <= 1/α, sgn(x)(1 + log(α|x|)) beyond.

  P is written as sgn(x)·(min(α|x|, 1) + log1p(α·max(|x| - 1/α, 0))), finite at every finite input.
  """

  alpha: float = param(0.3, POSITIVE)
  examples = ({}, {"alpha": 0.01}, {"alpha": 10.0})
  smoothness = "continuous"

  def _grad(self, x: Array) -> Array:
    return 1.0 / jnp.maximum(jnp.abs(x), 1.0 / self.alpha)

  def _fun(self, x: Array) -> Array:
    u = jnp.abs(x)
    tail = log1p_scaled(self.alpha, jnp.maximum(u - 1.0 / self.alpha, 0.0))
    return odd(x, jnp.minimum(self.alpha * u, 1.0) + tail)

  def kinks(self) -> tuple[float, ...]:
    return (-1.0 / self.alpha, 1.0 / self.alpha)

  def mass(self) -> float:
    return _INF

  def limits(self) -> Limits:
    return Limits(0.0, 0.0, -_INF, _INF)

  def length_scale(self) -> float:
    return 1.0 / self.alpha


@register
@dataclasses.dataclass(frozen=True, repr=False)
class NormalisedQPseudoSpike(Surrogate):
  """g = (1 + 2|x|/ν)^(-(ν+1));  P = 1/2 + sgn(x)(1 - (1 + 2|x|/ν)^(-ν))/2;  mass 1 for every ν > 0.

  The q-PseudoSpike of spikingjelly, ``QPseudoSpike(alpha=q)`` with g = (1 + 2|x|/(q-1))^(-q),
  is this with ν = q - 1 (q > 1). Evaluated through L = log1p(2|x|/ν): g = e^(-(ν+1)L), and
  P = 1/2 - sgn(x)·expm1(-νL)/2.
  """

  nu: float = param(1.0, POSITIVE)
  examples = ({}, {"nu": 0.5}, {"nu": 9.0})
  smoothness = "continuous"

  def _log_base(self, x: Array) -> Array:
    return log1p_scaled(2.0 / self.nu, jnp.abs(x))

  def _grad(self, x: Array) -> Array:
    return inverse_power(2.0 / self.nu * jnp.abs(x), self.nu + 1.0)

  def _fun(self, x: Array) -> Array:
    return 0.5 + odd(x, -0.5 * jnp.expm1(-self.nu * self._log_base(x)))

  def kinks(self) -> tuple[float, ...]:
    return (0.0,)

  def mass(self) -> float:
    return 1.0

  def limits(self) -> Limits:
    return _NORMALISED

  def length_scale(self) -> float:
    return 0.5 * self.nu / (self.nu + 1.0)


# ------------------------------------------------------------------------------------------
# norse, sinabs and rockpool
# ------------------------------------------------------------------------------------------


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Circ(Surrogate):
  """g = α³/(x² + α²)^(3/2) (norse ``heavi_circ_fn``/``HeaviCirc``, method "circ");  P = αx/√(x² + α²).

  Mass 2α. norse documents the primitive h = 1/2 + x/(2√(x² + α²)) (mass 1) and its backward is
  2α·h'(x), which is this g. With u = x/α for |x| <= α: g = (1 + u²)^(-3/2), P = α·u/√(1 + u²); with
  r = α/x beyond: g = |r|³/(1 + r²)^(3/2), P = α·sgn(x)/√(1 + r²); finite, with finite derivatives, everywhere.

  Paths: g as 1/(z·√z), z = 1 + (x/α)², with |x|/α bounded where z·√z overflows (g = 0 there), in every
  dtype (a square root and a division, no pow); P by the split above.
  """

  alpha: float = param(1.0, POSITIVE)
  examples = ({}, {"alpha": 0.1}, {"alpha": 10.0})

  def _grad(self, x: Array) -> Array:
    # 1/(z·√z) with z = 1 + u², |u| = |x|/α lowered to 2^(e/3) where above (e = 128 in float32, 1024 in
    # float64): there z·√z overflows to inf and g is 0 (below the smallest normal already); within, z
    # and its square stay finite. A select, not a clip, so the tangent of |x|/α in α (infinite at huge
    # |x|) is dropped there, not multiplied by 0. A square root and a division, no pow.
    big = 2.0 ** (math.ceil((jnp.finfo(x.dtype).maxexp + 1) / 3))
    u = jnp.abs(x) * (1.0 / self.alpha)
    u = jnp.where(u > big, jnp.asarray(big, x.dtype), u)
    z = 1.0 + u * u
    return 1.0 / (z * jnp.sqrt(z))

  def _split(self, x: Array) -> tuple[Array, Array, Array]:
    """|x| <= α, u = x/α there (0 elsewhere), r = α/x beyond (1 elsewhere): neither overflows."""
    small = jnp.abs(x) <= self.alpha
    return small, jnp.where(small, x, 0.0) / self.alpha, self.alpha / jnp.where(small, self.alpha, x)

  def _fun(self, x: Array) -> Array:
    small, v, r = self._split(x)
    return self.alpha * jnp.where(small, v / jnp.sqrt(1.0 + v * v), jnp.sign(x) / jnp.sqrt(1.0 + r * r))

  def mass(self) -> float:
    return 2.0 * self.alpha

  def limits(self) -> Limits:
    return Limits(0.0, 0.0, -self.alpha, self.alpha)

  def length_scale(self) -> float:
    return self.alpha


@register
@dataclasses.dataclass(frozen=True, repr=False)
class ShiftedStep(Surrogate):
  """g = 1 for x >= -window, else 0 (sinabs ``Heaviside(window)``, rockpool ``StepPWL``);  P = max(x + window, 0).

  The one-sided window: every input above ``threshold - window`` passes the gradient. The
  libraries divide by the threshold (g = 1[x >= -window]/threshold with x = v - threshold), which
  is this shape at scale 1/threshold.
  """

  window: float = param(1.0, NON_NEGATIVE)
  examples = ({}, {"window": 0.5}, {"window": 0.0})
  smoothness = "discontinuous"

  def _grad(self, x: Array) -> Array:
    return (x >= -self.window).astype(x.dtype)

  def _fun(self, x: Array) -> Array:
    return jnp.maximum(x + self.window, 0.0)

  def kinks(self) -> tuple[float, ...]:
    return (-self.window,)

  def jumps(self) -> tuple[float, ...]:
    return (-self.window,)

  def mass(self) -> float:
    return _INF

  def limits(self) -> Limits:
    return Limits(0.0, 1.0, 0.0, _INF)

  def length_scale(self) -> float:
    return max(self.window, 0.5)


@register
@dataclasses.dataclass(frozen=True, repr=False)
class PeriodicExponential(Surrogate):
  """g = e^(-|x|/w) for x < 0, e^(-2d(x)/w) for x >= 0, d(x) = |x - θ·round(x/θ)| (sinabs ``PeriodicExponential``).

  Weidel and Sheik (2021): above the threshold the gradient repeats with the period θ, the
  threshold (x = v - θ), peaking at every multiple of θ, where a multi-spike neuron emits
  one more spike. sinabs 3.1.3 maps each period onto [-θ, θ), hence the factor 2 above threshold;
  rockpool's ``PeriodicExponential`` uses e^(-d(x)/w)/θ instead (and only with its multi-spike
  forward). P = w·e^(x/w) for x < 0; for x >= 0, with k = round(x/θ), u = x - kθ and the mass of
  one period M = w(1 - e^(-θ/w)): P = w + kM + sgn(u)(w/2)(1 - e^(-2|u|/w)), with kM = (x - u)M/θ. Kinks at 0 and at
  every multiple of θ/2 above (declared over the first 64 periods, the span the checks sample).

  Paths: g as one exponential of z/w (z = x below 0, -2|u| above) by :func:`exp_product` (float32 and
  narrower: a polynomial 2^y, no call to exp; float64: ``jnp.exp``), u by an exact remainder; P by
  ``jnp.exp``/``expm1`` and the same remainder in every dtype.
  """

  width: float = param(0.5, POSITIVE)
  threshold: float = param(1.0, POSITIVE)
  examples = ({}, {"threshold": 2.0}, {"width": 0.1, "threshold": 0.5})
  smoothness = "continuous"

  def _offset(self, x: Array) -> Array:
    """u = x - θ·round(x/θ) in [-θ/2, θ/2), by a remainder (no overflow of x/θ)."""
    half = 0.5 * self.threshold
    return jnp.remainder(x + half, self.threshold) - half

  def _grad(self, x: Array) -> Array:
    # One exponential for both branches, e^(z/w) with z = x or -2|u|, by exp_product (its floor drops
    # the overflowing z/w² of the width's derivative at huge |x|); u by a remainder of the positive
    # max(x, 0) + θ/2, so no sign correction.
    half = 0.5 * self.threshold
    u = jnp.fmod(jnp.maximum(x, 0.0) + half, jnp.asarray(self.threshold, x.dtype)) - half
    return exp_product(1.0 / self.width, jnp.where(x < 0, x, -2.0 * jnp.abs(u)))

  def _below(self, x: Array) -> Array:
    """min(x, 0) clipped at -200·width, where e^(x/w) < 1e-86 is 0 to every tolerance: keeps x/w² (the
    derivative in the width) finite at huge |x|, so d/dw is 0·finite there, not 0·inf."""
    return jnp.maximum(jnp.minimum(x, 0.0), -200.0 * self.width)

  def _fun(self, x: Array) -> Array:
    # kM = (x - u)·M/θ: the whole periods below x times the mass per unit length.
    w = self.width
    xp = jnp.maximum(x, 0.0)
    u = self._offset(xp)
    per_length = -w * jnp.expm1(-self.threshold / w) / self.threshold
    above = w + (xp - u) * per_length + jnp.sign(u) * (-0.5 * w) * jnp.expm1(-2.0 * jnp.abs(u) / w)
    return jnp.where(x < 0, w * jnp.exp(self._below(x) / w), above)

  def kinks(self) -> tuple[float, ...]:
    return tuple(0.5 * self.threshold * i for i in range(129))

  def mass(self) -> float:
    return math.nan

  def limits(self) -> None:
    return None

  def length_scale(self) -> float:
    return 0.5 * min(self.width, self.threshold)

  def period(self) -> float:
    return self.threshold


# ------------------------------------------------------------------------------------------
# Functional forms (explicit, so editors and type checkers see them) and the public names
# ------------------------------------------------------------------------------------------

sigmoid = functional(Sigmoid)
piecewise_quadratic = functional(PiecewiseQuadratic)
piecewise_exp = functional(PiecewiseExp)
soft_sign = functional(SoftSign)
arctan = functional(Arctan)
nonzero_sign_log = functional(NonzeroSignLog)
erf = functional(ERF)
piecewise_leaky_relu = functional(PiecewiseLeakyRelu)
squarewave_fourier_series = functional(SquarewaveFourierSeries)
s2nn = functional(S2NN)
q_pseudo_spike = functional(QPseudoSpike)
leaky_relu = functional(LeakyRelu)
log_tailed_relu = functional(LogTailedRelu)
relu_grad = functional(ReluGrad)
gaussian_grad = functional(GaussianGrad)
inv_square_grad = functional(InvSquareGrad)
multi_gaussian_grad = functional(MultiGaussianGrad)
slayer_grad = functional(SlayerGrad)
boxcar = functional(Boxcar)
tanh = functional(Tanh)
straight_through = functional(StraightThrough)
spike_rate_escape = functional(SpikeRateEscape)
sparse_fast_sigmoid = functional(SparseFastSigmoid)
fake_numerical_gradient = functional(FakeNumericalGradient)
normalised_q_pseudo_spike = functional(NormalisedQPseudoSpike)
circ = functional(Circ)
shifted_step = functional(ShiftedStep)
periodic_exponential = functional(PeriodicExponential)

__all__ = [
  "ERF",
  "S2NN",
  "Arctan",
  "Boxcar",
  "Circ",
  "FakeNumericalGradient",
  "GaussianGrad",
  "InvSquareGrad",
  "LeakyRelu",
  "LogTailedRelu",
  "MultiGaussianGrad",
  "NonzeroSignLog",
  "NormalisedQPseudoSpike",
  "PeriodicExponential",
  "PiecewiseExp",
  "PiecewiseLeakyRelu",
  "PiecewiseQuadratic",
  "QPseudoSpike",
  "ReluGrad",
  "ShiftedStep",
  "Sigmoid",
  "SlayerGrad",
  "SoftSign",
  "SparseFastSigmoid",
  "SpikeRateEscape",
  "SquarewaveFourierSeries",
  "StraightThrough",
  "Tanh",
  "arctan",
  "boxcar",
  "circ",
  "erf",
  "fake_numerical_gradient",
  "gaussian_grad",
  "inv_square_grad",
  "leaky_relu",
  "log_tailed_relu",
  "multi_gaussian_grad",
  "nonzero_sign_log",
  "normalised_q_pseudo_spike",
  "periodic_exponential",
  "piecewise_exp",
  "piecewise_leaky_relu",
  "piecewise_quadratic",
  "q_pseudo_spike",
  "relu_grad",
  "s2nn",
  "shifted_step",
  "sigmoid",
  "slayer_grad",
  "soft_sign",
  "sparse_fast_sigmoid",
  "spike_rate_escape",
  "squarewave_fourier_series",
  "straight_through",
  "tanh",
]
