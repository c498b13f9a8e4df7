"""Core machinery: the Heaviside forward, the custom JVP, parameter domains, the base class.

Every surrogate is a frozen dataclass deriving from :class:`Surrogate`. A subclass declares its
parameters as fields, and implements ``_grad`` (g) and ``_fun`` (the primitive P) on an array in
the *compute dtype* (float32 for the 16-bit types, the input's dtype otherwise). The base class
handles dtype promotion, the spike function with its custom JVP, validation and the registry.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array

# --------------------------------------------------------------------------------------------
# Parameter domains
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Domain:
  """A parameter domain: a predicate and its description (used in error messages)."""

  description: str
  predicate: Callable[[float], bool]
  integer: bool = False

  def contains(self, value: float) -> bool:
    return bool(math.isfinite(value) and self.predicate(value))


POSITIVE = Domain("> 0", lambda v: v > 0)
NON_NEGATIVE = Domain(">= 0", lambda v: v >= 0)
REAL = Domain("a finite real", lambda v: True)
POSITIVE_INT = Domain("an integer >= 1", lambda v: v >= 1 and float(v).is_integer(), integer=True)


class Limits(NamedTuple):
  """Values of g and P at -inf and +inf."""

  g_minus: float
  g_plus: float
  p_minus: float
  p_plus: float


# --------------------------------------------------------------------------------------------
# Dtype handling and exact sign tests
# --------------------------------------------------------------------------------------------

FLOAT_DTYPES: tuple[jnp.dtype, ...] = tuple(
    jnp.dtype(d) for d in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)
)
_UINT = {2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}


def as_float_array(x: Any) -> Array:
  """Converts the input to a JAX array of a floating dtype (integers become the default float)."""
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.result_type(float))
  return x


def compute_dtype(dtype: Any) -> jnp.dtype:
  """float32 for the 16-bit types (they are evaluated in float32 and rounded once), else dtype."""
  dtype = jnp.dtype(dtype)
  return jnp.dtype(jnp.float32) if dtype.itemsize < 4 else dtype


def _sign_and_magnitude(x: Array) -> tuple[Array, Array, Array]:
  """Sign bit, magnitude bits, and the magnitude bits of +inf (larger magnitudes are NaN).

  Only integer operations: a float comparison in the same fused kernel may see a flushed value.
  """
  nbits = 8 * x.dtype.itemsize
  utype = _UINT[x.dtype.itemsize]
  bits = lax.bitcast_convert_type(x, utype)
  sign = bits >> (nbits - 1)
  magnitude = bits & ((1 << (nbits - 1)) - 1)
  inf_bits = lax.bitcast_convert_type(jnp.asarray(jnp.inf, x.dtype), utype)
  return sign, magnitude, inf_bits


def is_negative(x: Array) -> Array:
  """``x < 0`` decided on the bits, so exact for subnormals even where the platform flushes them.

  -0.0 is not negative; NaN is not negative.
  """
  sign, magnitude, inf_bits = _sign_and_magnitude(x)
  return (sign == 1) & (magnitude != 0) & (magnitude <= inf_bits)


def is_positive(x: Array) -> Array:
  """``x > 0`` decided on the bits (exact for subnormals); NaN is not positive."""
  sign, magnitude, inf_bits = _sign_and_magnitude(x)
  return (sign == 0) & (magnitude != 0) & (magnitude <= inf_bits)


def is_nan(x: Array) -> Array:
  """``isnan`` on the bits (so it can be fused with the tests above)."""
  _, magnitude, inf_bits = _sign_and_magnitude(x)
  return magnitude > inf_bits


def heaviside(x: Array) -> Array:
  """H(x) = 1 for x >= 0 (including -0.0 and positive subnormals), 0 for x < 0, NaN for NaN."""
  x = as_float_array(x)
  one, zero = jnp.ones((), x.dtype), jnp.zeros((), x.dtype)
  out = jnp.where(is_negative(x), zero, one)
  return jnp.where(is_nan(x), x, out)


# --------------------------------------------------------------------------------------------
# Small numerically careful building blocks shared by several surrogates
# --------------------------------------------------------------------------------------------


def odd(x: Array, magnitude: Array) -> Array:
  """``sgn(x) * magnitude`` with sgn(x) = -1 for x < 0, +1 otherwise (exact at subnormals)."""
  return jnp.where(is_negative(x), -magnitude, magnitude)


def logistic_density(z: Array) -> Array:
  """σ(z)(1 - σ(z)) = e/(1 + e)² with e = exp(-|z|) <= 1: one exp, no overflow, 0 at ±inf."""
  e = jnp.exp(-jnp.abs(z))
  d = 1.0 + e
  return e / (d * d)


def inverse_power(v: Array, p: float) -> Array:
  """(1 + v)^(-p) for v >= 0: a product of reciprocals for a small integer p (no transcendental
  function), else exp(-p·log1p(v)). Both are 0 at v = inf and finite, with their derivatives,
  for every finite v."""
  if float(p).is_integer() and 1 <= p <= 8:
    return lax.integer_pow(1.0 / (1.0 + v), int(p))
  return jnp.exp(-p * jnp.log1p(v))


def log1p_scaled(a: float, u: Array) -> Array:
  """log(1 + a·u) for u >= 0, finite for every finite u even where a·u overflows.

  Where a·u is finite this is log1p(a·u) (accurate near 0); where it overflows it is
  log(a) + log(u + 1/a), which is then well conditioned.
  """
  au = a * u
  safe_u = jnp.where(jnp.isfinite(au), jnp.zeros_like(u), u)
  large = math.log(a) + jnp.log(safe_u + 1.0 / a)
  return jnp.where(jnp.isfinite(au) | jnp.isinf(u), jnp.log1p(au), large)


def gaussian(z: Array) -> Array:
  """exp(-z²/2)/√(2π) with z clipped to ±40, where it is exactly 0 in float64 already.

  The clip keeps z² and its derivative finite for every finite input.
  """
  z = jnp.clip(z, -40.0, 40.0)
  return jnp.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def normal_cdf(z: Array) -> Array:
  """Φ(z) = erfc(-z/√2)/2, accurate in both tails; z clipped to ±40 (Φ is exactly 0/1 there)."""
  z = jnp.clip(z, -40.0, 40.0)
  return 0.5 * jax.scipy.special.erfc(-z / math.sqrt(2.0))


def scaled(c: float, v: Array) -> Array:
  """``c * v``, but exactly 0 when c == 0 (so that 0 * inf does not give NaN)."""
  return jnp.zeros_like(v) if c == 0 else c * v


# --------------------------------------------------------------------------------------------
# The spike function: Heaviside forward, g(x) as its derivative (custom JVP)
# --------------------------------------------------------------------------------------------


def make_spike_function(grad_fn: Callable[[Array], Array]) -> Callable[[Array], Array]:
  """Returns H with derivative ``grad_fn``: JVP g(x)·t, VJP ct·g(x), higher order through g'."""

  @jax.custom_jvp
  def spike(x: Array) -> Array:
    return heaviside(x)

  @spike.defjvp
  def _jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return spike(x), grad_fn(x) * t

  return spike


# --------------------------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------------------------


def snake_case(name: str) -> str:
  """'PiecewiseLeakyRelu' -> 'piecewise_leaky_relu', 'QPseudoSpike' -> 'q_pseudo_spike', 'S2NN' -> 's2nn'."""
  return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


@dataclasses.dataclass(frozen=True)
class Surrogate:
  """Base class. An instance is the spike function: ``Sigmoid(alpha=4.0)(x)``.

  Subclasses declare:
    * fields: the parameters, with their defaults;
    * ``domains``: parameter name -> :class:`Domain`;
    * ``examples``: representative parameter sets (overrides of the defaults);
    * ``_grad(x)``, ``_fun(x)``: g and P on an array in the compute dtype;
    * ``kinks()``, ``jumps()``, ``mass()``, ``limits()``, ``length_scale()``;
    * ``smoothness`` (a short word) and ``periodic``.
  """

  domains: ClassVar[Mapping[str, Domain]] = {}
  examples: ClassVar[Sequence[Mapping[str, float]]] = ()
  smoothness: ClassVar[str] = "analytic"
  periodic: ClassVar[bool] = False

  def __post_init__(self) -> None:
    for f in dataclasses.fields(self):
      value = getattr(self, f.name)
      domain = self.domains.get(f.name, REAL)
      try:
        number = float(value)
      except (TypeError, ValueError):
        raise ValueError(
            f"{type(self).__name__}: parameter {f.name!r} must be a number, got {value!r}"
        ) from None
      if not domain.contains(number):
        raise ValueError(
            f"{type(self).__name__}: parameter {f.name!r} must be {domain.description}, got {value!r}"
        )
      object.__setattr__(self, f.name, int(number) if domain.integer else number)

  # ---- identity --------------------------------------------------------------------------
  @property
  def name(self) -> str:
    return type(self).__name__

  @property
  def params(self) -> dict[str, float]:
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

  # ---- the public numerical interface -----------------------------------------------------
  def __call__(self, x: Any) -> Array:
    """The spike function: H(x) forward, g(x) as derivative."""
    return self._spike(as_float_array(x))

  @property
  def _spike(self) -> Callable[[Array], Array]:
    fn = self.__dict__.get("_spike_fn")
    if fn is None:
      fn = make_spike_function(self.surrogate_grad)
      object.__setattr__(self, "_spike_fn", fn)
    return fn

  def surrogate_grad(self, x: Any) -> Array:
    """g(x), the pseudo-derivative of the spike function, in the input's dtype."""
    return self._in_compute_dtype(self._grad, x)

  def surrogate_fun(self, x: Any) -> Array:
    """P(x), the primitive of g, in the input's dtype."""
    return self._in_compute_dtype(self._fun, x)

  @staticmethod
  def _in_compute_dtype(fn: Callable[[Array], Array], x: Any) -> Array:
    x = as_float_array(x)
    return fn(x.astype(compute_dtype(x.dtype))).astype(x.dtype)

  # ---- metadata ---------------------------------------------------------------------------
  def kinks(self) -> tuple[float, ...]:
    """Points where g is not differentiable (or not continuous)."""
    return ()

  def jumps(self) -> tuple[float, ...]:
    """The subset of the kinks where g is discontinuous."""
    return ()

  def argument_condition(self, x: np.ndarray) -> np.ndarray | None:
    """How much g can move when its argument is rounded, per unit of relative rounding: |dg/d(log x)|.

    None means |x·g'(x)| (computed by the harness). A sum of oscillating terms overrides it with the
    sum of the terms' own sensitivities, since each term's argument is rounded on its own.
    """
    return None

  def primitive_rtol(self) -> float:
    """Relative amount by which the declared P' may differ from g (S2NN's ε); 0 for most."""
    return 0.0

  def mass(self) -> float:
    """∫ g over the real line (math.inf when it diverges, math.nan for periodic surrogates)."""
    raise NotImplementedError

  def limits(self) -> Limits | None:
    """g and P at ±inf, or None for periodic surrogates (no limit)."""
    raise NotImplementedError

  def length_scale(self) -> float:
    """Characteristic width of g (about 1/alpha): the scale for steps and sample ranges."""
    return 1.0

  def peak(self) -> float:
    """max |g|, used to express tolerances relative to the size of g."""
    xs = np.concatenate([np.linspace(-8, 8, 4001) * self.length_scale(), np.asarray(self.kinks())])
    with jax.default_device(jax.devices("cpu")[0]):
      return float(np.max(np.abs(np.asarray(self._grad(jnp.asarray(xs, jnp.float32))))))

  def __repr__(self) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
    return f"{self.name}({args})"


__all__ = [
  "FLOAT_DTYPES",
  "NON_NEGATIVE",
  "POSITIVE",
  "POSITIVE_INT",
  "REAL",
  "Array",
  "Domain",
  "Limits",
  "Surrogate",
  "as_float_array",
  "compute_dtype",
  "gaussian",
  "heaviside",
  "is_negative",
  "is_positive",
  "log1p_scaled",
  "logistic_density",
  "make_spike_function",
  "normal_cdf",
  "odd",
  "scaled",
  "snake_case",
]


# --------------------------------------------------------------------------------------------
# Vectorisable replacements for transcendental functions (XLA:CPU lowers sin/cos to a scalar call)
# --------------------------------------------------------------------------------------------

#: cos(2π√z) - 1 on z ∈ [0, 1/16] (a quarter period), near-minimax degree 5 in z, without the constant
#: term: within 2.2e-10 of cos - 1; evaluated in float32 the total error of cos is 1.2e-7 (rounding).
_COS_TURNS_M1 = (-19.739208548908707, 64.93934662886922, -85.45357159905242, 60.144014584482925, -24.982234549694343)


def _cos_turns_folded(u: Array) -> tuple[Array, Array]:
  """(flip, q) with cos(2πu) = ±(1 + q), minus where ``flip``; q = cos(2πb) - 1 ∈ [-1, 0] for the folded
  b ∈ [0, 1/4], computed without cancellation (q = z·poly(z), z = b²).

  Reduction: r = u - round(u) ∈ [-1/2, 1/2] (exact, Sterbenz); fold a = |r| to b = min(a, 1/2 - a)
  (exact), using cos(2πa) = -cos(2πb) when a > 1/4. A non-finite u gives NaN: callers bound u first
  (every float32 with |u| >= 2^24 is an integer).
  """
  r = u - jnp.round(u)
  a = jnp.abs(r)
  flip = a > 0.25
  b = jnp.where(flip, 0.5 - a, a)
  z = b * b
  p = jnp.asarray(_COS_TURNS_M1[-1], u.dtype)
  for c in _COS_TURNS_M1[-2::-1]:
    p = p * z + c
  return flip, z * p


def odd_cos_sum_turns(u: Array, n: int) -> Array:
  """Σ_{i=1..n} cos((2i-1)θ), θ = 2πu, with mul/add/select only (float32 and narrower; ``n`` static).

  c_1 = cos θ from the fold and polynomial of :func:`_cos_turns_folded` (~1.2e-7 absolute in float32);
  then Reinsch's form of the Chebyshev recurrence
  cos((k+2)θ) = 2 cos 2θ cos kθ - cos((k-2)θ): with D_k = c_{k+2} - c_k and μ = 2(cos 2θ - 1) = -4 sin²θ,
  D_k = D_{k-2} + μ c_k (D_{-1} = 0, since c_{-1} = c_1) and c_{k+2} = c_k + D_k. The plain recurrence
  multiplies the error of c_1 by about k² where cos 2θ ≈ 1 (θ near 0 or π); here μ is computed without
  cancellation, sin²θ = (1 - c_1)(1 + c_1) = -q(2 + q) with q = cos(2πb) - 1 of the fold.
  """
  flip, q = _cos_turns_folded(u)
  c = jnp.where(flip, -(1.0 + q), 1.0 + q)
  mu = 4.0 * q * (2.0 + q)
  d = mu * c
  total = c
  for _ in range(n - 1):
    c = c + d
    total = total + c
    d = d + mu * c
  return total


#: exp(-800) is 0 in float64 (and every narrower type): a Gaussian's exponent is bounded there, like
#: clipping its standardised argument to ±40, so the exponent and its derivatives stay finite.
_GAUSS_EXPONENT_FLOOR = -800.0


def exp_neg_square(x: Array, a: Array | float) -> Array:
  """exp(-a·x²) for a > 0, with x clipped to ±√(800/a) first, where exp is 0 in float64 already.

  One clip and the constants folded: clip, x·x, one multiply, exp. Clipping x (not the exponent)
  keeps x² and every derivative finite for every finite input (2x overflows near the largest float).
  ``a`` may be a traced value.
  """
  bound = jnp.sqrt(-_GAUSS_EXPONENT_FLOOR / jnp.asarray(a, x.dtype))
  xc = jnp.clip(x, -bound, bound)
  return jnp.exp((xc * xc) * -a)


def is_negative_bits(x: Array) -> Array:
  """The same predicate as :func:`is_negative` (x < 0 decided on the bits: -0.0 and NaN are not
  negative, negative subnormals are), in one integer subtraction and one unsigned comparison: the bits
  of a negative non-NaN x, minus those of the smallest negative subnormal, are below those of +inf."""
  utype = _UINT[x.dtype.itemsize]
  bits = lax.bitcast_convert_type(x, utype)
  nbits = 8 * x.dtype.itemsize
  inf_bits = lax.bitcast_convert_type(jnp.asarray(jnp.inf, x.dtype), utype)
  return bits - jnp.asarray((1 << (nbits - 1)) + 1, utype) < inf_bits
