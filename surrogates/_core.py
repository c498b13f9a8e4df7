"""Core machinery: the Heaviside forward, the custom JVP, parameter domains, the base class.

Every surrogate is a frozen dataclass deriving from :class:`Surrogate`. A subclass declares its
parameters as fields, and implements ``_grad`` (g) and ``_fun`` (the primitive P) on an array in
the *compute dtype* (float32 for the 16-bit types, the input's dtype otherwise). The base class
handles dtype promotion, the spike function with its custom JVP, validation and the registry.
"""

from __future__ import annotations

import dataclasses
import functools
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
  """A parameter domain: a predicate and its description (used in error messages).

  ``integer`` domains are static: the value is a Python ``int`` fixed at trace time (it sets a
  number of terms), never a traced JAX value.
  """

  description: str
  predicate: Callable[[Any], Any]
  integer: bool = False

  def contains(self, value: Any) -> bool:
    """Whether every element of a concrete value (a number or an array) lies in the domain."""
    v = np.asarray(value, np.float64)
    return bool(np.all(np.isfinite(v)) and np.all(self.predicate(v)))


POSITIVE = Domain("> 0", lambda v: v > 0)
NON_NEGATIVE = Domain(">= 0", lambda v: v >= 0)
REAL = Domain("a finite real", lambda v: np.ones(np.shape(v), bool))
POSITIVE_INT = Domain("an integer >= 1", lambda v: (v >= 1) & (v == np.floor(v)), integer=True)

#: The metadata keys :func:`param` writes; any other key on a surrogate's field is an error at registration.
PARAM_KEYS = frozenset({"domain"})


def param(default: Any, domain: Domain = REAL) -> Any:
  """A surrogate parameter: ``alpha: float = param(4.0, POSITIVE)``.

  The domain lives next to the field it constrains (``dataclasses.field`` metadata); concrete
  values are checked against it at construction. Integer domains make the parameter static.
  """
  if not isinstance(domain, Domain):
    raise TypeError(f"param(): the domain must be a Domain, got {domain!r}")
  return dataclasses.field(default=default, metadata={"domain": domain})


class ParamSpec(NamedTuple):
  """A declared parameter: its default, its domain, and whether it is static (not a pytree leaf)."""

  default: Any
  domain: Domain

  @property
  def static(self) -> bool:
    return self.domain.integer


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
  """σ(z)(1 - σ(z)) = e/(1 + e)² with e = exp(-|z|) <= 1 by :func:`exp_product` (float32 and narrower:
  a polynomial 2^y, no call to exp; float64: ``jnp.exp``): no overflow, 0 at ±inf."""
  e = exp_product(-1.0, jnp.abs(z))
  d = 1.0 + e
  return e / (d * d)


def is_number(value: Any) -> bool:
  """A concrete Python real number (not a bool): the values that allow Python branches and fast paths."""
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def inverse_power(v: Array, p: Any) -> Array:
  """(1 + v)^(-p) for v >= 0: a product of reciprocals for a small integer Python number p (no
  transcendental function), else exp(-p·log1p(v)). Both are 0 at v = inf and finite, with their
  derivatives (also in p), for every finite v."""
  if is_number(p) and float(p).is_integer() and 1 <= p <= 8:
    return lax.integer_pow(1.0 / (1.0 + v), int(p))
  if is_number(p):
    return jnp.exp(-p * jnp.log1p(v))
  # Traced p: d/dp = -log1p(v)·(1 + v)^(-p) is inf·0 at v = inf; keep the log finite there.
  inf = jnp.isinf(v)
  return jnp.where(inf, 0.0, jnp.exp(-p * jnp.log1p(jnp.where(inf, 0.0, v))))


def expm1_over(c: Any, v: Array) -> Array:
  """expm1(c·v)/c for v >= 0 (v = inf included), with its limit v at c = 0, smooth in c (c may be traced).

  For |c·v| < 1/64 the Taylor polynomial v·(1 + z/2 + ... + z⁶/7!) with z = c·v (truncation z⁷/8! <
  1e-17 relative), else expm1(c·v)/c: at v = inf that is inf for c > 0 and -1/c for c < 0. c·v is
  formed with :func:`scaled`, so c = 0 with v = inf gives z = 0, not NaN.
  """
  z = scaled(c, v)
  small = jnp.abs(z) < 1.0 / 64
  zs, cs = jnp.where(small, 0.0, z), jnp.where(small, 1.0, c)
  taylor = v * (1.0 + z * (1 / 2 + z * (1 / 6 + z * (1 / 24 + z * (1 / 120 + z * (1 / 720 + z / 5040))))))
  return jnp.where(small, taylor, jnp.expm1(zs) / cs)


def log1p_scaled(a: Any, u: Array) -> Array:
  """log(1 + a·u) for u >= 0 and a > 0, finite for every finite u even where a·u overflows.

  Where a·u is finite this is log1p(a·u) (accurate near 0); where it overflows it is
  log(a) + log(u + 1/a), which is then well conditioned. ``a`` may be traced.
  """
  au = a * u
  safe_u = jnp.where(jnp.isfinite(au), jnp.zeros_like(u), u)
  large = (math.log(a) if is_number(a) else jnp.log(a)) + jnp.log(safe_u + 1.0 / a)
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


def scaled(c: Any, v: Array) -> Array:
  """``c * v``, but exactly 0 when c == 0 (so that 0 * inf does not give NaN); ``c`` may be traced."""
  if is_number(c):
    return jnp.zeros_like(v) if c == 0 else c * v
  # traced c: the product itself (so d/dc = v also at c = 0), with v = ±inf replaced where c == 0
  return c * jnp.where(jnp.isinf(v) & (c == 0), 0.0, v)


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


@jax.custom_jvp
def _spike(s: Surrogate, x: Array) -> Array:
  """H(x), with derivative g(x; θ) in x and exactly 0 in the parameters θ of ``s`` (H does not
  depend on them). The derivative of the VJP ct·g(x; θ) in θ is ct·∂g/∂θ, by autodiff of g."""
  return heaviside(x)


@_spike.defjvp
def _spike_jvp(primals, tangents):
  (s, x), (_, t) = primals, tangents
  return _spike(s, x), s.surrogate_grad(x) * t


# --------------------------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------------------------


def snake_case(name: str) -> str:
  """'PiecewiseLeakyRelu' -> 'piecewise_leaky_relu', 'QPseudoSpike' -> 'q_pseudo_spike', 'S2NN' -> 's2nn'."""
  return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def is_traced(value: Any) -> bool:
  """A JAX tracer (under jit, grad, vmap...): its value is not known when the surrogate is built."""
  return isinstance(value, jax.core.Tracer)


def check_value(owner: str, name: str, value: Any, domain: Domain) -> Any:
  """A parameter value, validated: a real number, a real array (per element) or a JAX value.

  Strings, booleans, complex numbers and other objects are a ``ValueError`` naming ``owner`` and
  the parameter. Concrete values must lie in the domain; a concrete 0-d array becomes a Python
  number. Traced values cannot be checked here and are returned as they are: outside the domain the
  formulas are evaluated as written (NaN, inf or a mirrored shape), so a caller tracing parameters
  owns their domain (build the surrogate once with the concrete batch to validate it). Static
  (integer) parameters must be concrete.
  """

  def bad(what: str) -> ValueError:
    return ValueError(f"{owner}: parameter {name!r} must be {what}, got {value!r}")

  if isinstance(value, (bool, np.bool_, str, bytes)):
    raise bad("a real number")
  if is_traced(value):
    if domain.integer:
      raise bad(f"{domain.description}, a concrete Python int (it is static: it sets the number of terms)")
    if not (jnp.issubdtype(value.dtype, jnp.floating) or jnp.issubdtype(value.dtype, jnp.integer)):
      raise bad("a real number")
    return value
  if is_number(value):
    number = value
  elif not isinstance(value, (np.ndarray, np.generic, jax.Array)):
    raise bad("a real number or a NumPy/JAX array of them")
  else:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
      raise bad("a real number")
    if arr.ndim == 0:
      number = arr.item()
    elif domain.integer:
      raise bad(f"{domain.description} (a single static value, not an array)")
    else:
      if not domain.contains(arr):
        raise bad(f"{domain.description} in every element")
      return value
  if not domain.contains(number):
    raise bad(domain.description)
  return int(number) if domain.integer else float(number)


def bind_parameters(owner: str, names: Sequence[str], args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
  """Parameters given by position (in the declared order ``names``) and by keyword, as one mapping.

  More positional values than parameters, or a parameter given both ways, is a ``TypeError`` naming
  ``owner`` and the declared order. Keywords are passed through as they are (unknown names are the
  caller's to reject).
  """
  if len(args) > len(names):
    takes = f"at most {len(names)} parameter(s) by position ({', '.join(names)})" if names else "no parameters"
    raise TypeError(f"{owner}: takes {takes}, got {len(args)} by position")
  both = [n for n in names[:len(args)] if n in kwargs]
  if both:
    raise TypeError(f"{owner}: parameter {both[0]!r} given both by position and by keyword "
                    f"(positional order: {', '.join(names)})")
  return {**dict(zip(names, args, strict=False)), **kwargs}


class ConcreteParametersRequired(TypeError):
  """Metadata (kinks, mass, limits, length scale, peak...) was asked of a surrogate whose parameters
  are traced or per-element arrays: it describes one surrogate with concrete numbers."""


#: Methods that describe the surrogate with Python numbers: they need concrete scalar parameters.
METADATA = ("kinks", "jumps", "mass", "limits", "length_scale", "peak", "period", "argument_condition",
            "primitive_rtol")

#: Members every registered surrogate declares itself (the base class has no sensible default).
REQUIRED = ("_grad", "_fun", "mass", "limits", "length_scale")

SMOOTHNESS = ("analytic", "continuous", "discontinuous")


def _needs_concrete(method: Callable[..., Any]) -> Callable[..., Any]:
  @functools.wraps(method)
  def guarded(self: Surrogate, *args: Any, **kwargs: Any) -> Any:
    self.require_concrete(method.__name__)
    return method(self, *args, **kwargs)

  guarded.__needs_concrete__ = True  # type: ignore[attr-defined]
  return guarded


@dataclasses.dataclass(frozen=True)
class Surrogate:
  """Base class. An instance is the spike function: ``Sigmoid(alpha=4.0)(x)``.

  Subclasses declare:
    * fields: the parameters, ``alpha: float = param(4.0, POSITIVE)`` (default and domain);
    * ``examples``: representative parameter sets (overrides of the defaults, the first ``{}``);
    * ``_grad(x)``, ``_fun(x)``: g and P on an array in the compute dtype;
    * ``mass()``, ``limits()``, ``length_scale()`` and, where they apply, ``kinks()``, ``jumps()``,
      ``period()``, ``argument_condition()``, ``primitive_rtol()``;
    * ``smoothness``: one of :data:`SMOOTHNESS`.
  ``surrogates.register`` checks all of this when the class is defined.

  Parameters are data: an instance is a JAX pytree whose leaves are its non-static parameters
  (static ones, like a number of terms, are part of its structure), so ``jax.jit(f)(s, x)``,
  ``jax.vmap`` over a batch of parameters and ``jax.grad`` with respect to them work. The forward
  H does not depend on the parameters (derivative exactly 0); g and P are differentiable in them.
  Metadata (the methods in :data:`METADATA`) needs concrete scalar parameters and raises
  :class:`ConcreteParametersRequired` otherwise.
  """

  examples: ClassVar[Sequence[Mapping[str, Any]]] = ()
  smoothness: ClassVar[str] = "analytic"

  def __init_subclass__(cls, **kwargs: Any) -> None:
    super().__init_subclass__(**kwargs)
    for name in METADATA:
      method = cls.__dict__.get(name)
      if callable(method) and not getattr(method, "__needs_concrete__", False):
        setattr(cls, name, _needs_concrete(method))
    jax.tree_util.register_pytree_node(cls, _flatten, functools.partial(_unflatten, cls))

  def __new__(cls, *args: Any, **kwargs: Any) -> Surrogate:
    accepted = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
      raise UnknownParameterError(
          f"{cls.__name__}: unknown parameter {unknown[0]!r}; accepted: {', '.join(accepted) or 'none'}"
      )
    bind_parameters(cls.__name__, accepted, args, kwargs)
    return super().__new__(cls)

  def __post_init__(self) -> None:
    for name, spec in self.parameter_specs().items():
      object.__setattr__(self, name, check_value(type(self).__name__, name, getattr(self, name), spec.domain))

  # ---- declarations ----------------------------------------------------------------------
  @classmethod
  def parameter_specs(cls) -> dict[str, ParamSpec]:
    """The declared parameters (fields made with :func:`param`): name -> default and domain."""
    return {
        f.name: ParamSpec(f.default, f.metadata["domain"])
        for f in dataclasses.fields(cls)
        if "domain" in f.metadata
    }

  @classmethod
  def dynamic_parameters(cls) -> tuple[str, ...]:
    """The parameters that may be traced (every one that is not static)."""
    return tuple(n for n, p in cls.parameter_specs().items() if not p.static)

  # ---- identity --------------------------------------------------------------------------
  @property
  def name(self) -> str:
    return type(self).__name__

  @property
  def params(self) -> dict[str, Any]:
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

  def _fields(self) -> dict[str, Any]:
    """Every field's value (``params`` may present them differently, e.g. a scaled surrogate's base's)."""
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

  def is_concrete(self) -> bool:
    """Every parameter is a concrete Python number (neither traced nor a per-element array)."""
    return all(is_number(v) or (isinstance(v, Surrogate) and v.is_concrete()) for v in self._fields().values())

  def require_concrete(self, what: str) -> None:
    """Raises :class:`ConcreteParametersRequired` unless :meth:`is_concrete`."""
    if not self.is_concrete():
      kinds = {k: "traced" if is_traced(v) else f"an array of shape {np.shape(v)}"
               for k, v in self._fields().items() if not (is_number(v) or isinstance(v, Surrogate))}
      described = ", ".join(f"{k!r} is {v}" for k, v in kinds.items()) or "a parameter is not concrete"
      raise ConcreteParametersRequired(
          f"{self.name}.{what}() needs concrete scalar parameters ({described}); metadata is computed "
          "from the Python numbers outside jit/vmap/grad"
      )

  def _key(self) -> tuple[Any, ...]:
    """The parameters as a hashable tuple (concrete arrays by dtype, shape and bytes)."""

    def key(name: str, v: Any) -> Any:
      if isinstance(v, Surrogate):
        return (type(v), v._key())
      if is_traced(v):
        raise TypeError(f"{self.name}: parameter {name!r} is traced: the surrogate is not hashable")
      if is_number(v):
        return v
      a = np.asarray(v)
      return (a.dtype.str, a.shape, a.tobytes())

    return tuple(key(k, v) for k, v in self._fields().items())

  def __eq__(self, other: object) -> bool:
    if type(other) is not type(self):
      return NotImplemented
    return self._key() == other._key()  # type: ignore[attr-defined]

  def __hash__(self) -> int:
    return hash((type(self), self._key()))

  # ---- the public numerical interface -----------------------------------------------------
  def __call__(self, x: Any) -> Array:
    """The spike function: H(x) forward, g(x) as derivative in x, 0 in the parameters."""
    return _spike(self, as_float_array(x))

  def surrogate_grad(self, x: Any) -> Array:
    """g(x), the pseudo-derivative of the spike function, in the input's dtype."""
    return self._in_compute_dtype("_grad", x)

  def surrogate_fun(self, x: Any) -> Array:
    """P(x), the primitive of g, in the input's dtype."""
    return self._in_compute_dtype("_fun", x)

  def _in_compute_dtype(self, method: str, x: Any) -> Array:
    """``method`` on x in the compute dtype, rounded once to x's dtype. Array and traced parameters
    are cast to the compute dtype first (Python numbers are weakly typed already), so the dtype of
    the computation is the input's, whatever the parameters' dtype."""
    x = as_float_array(x)
    cd = compute_dtype(x.dtype)
    s, xc = self, x.astype(cd)
    if not self.is_concrete():
      s = jax.tree_util.tree_map(lambda v: v if is_number(v) else jnp.asarray(v).astype(cd), self)
      bound = s.saturation()
      if bound is not None:  # finite inputs beyond it: same values, finite derivatives in the parameters
        xc = jnp.where(jnp.isinf(xc), xc, jnp.clip(xc, -bound, bound))
    return getattr(s, method)(xc).astype(x.dtype)

  def _grad(self, x: Array) -> Array:
    raise NotImplementedError

  def _fun(self, x: Array) -> Array:
    raise NotImplementedError

  # ---- metadata ---------------------------------------------------------------------------
  def kinks(self) -> tuple[float, ...]:
    """Points where g is not differentiable (or not continuous)."""
    return ()

  def jumps(self) -> tuple[float, ...]:
    """The subset of the kinks where g is discontinuous."""
    return ()

  def period(self) -> float | None:
    """The period of g for periodic surrogates, None otherwise."""
    return None

  @property
  def periodic(self) -> bool:
    """Whether g is periodic (:meth:`period` is not None)."""
    return self.period() is not None

  def argument_condition(self, x: np.ndarray) -> np.ndarray | None:
    """How much g can move when its argument is rounded, per unit of relative rounding: |dg/d(log x)|.

    None means |x·g'(x)| (computed by the harness). A sum of oscillating terms overrides it with the
    sum of the terms' own sensitivities, since each term's argument is rounded on its own.
    """
    return None

  def primitive_rtol(self) -> float:
    """Relative amount by which the declared P' may differ from g (S2NN's ε); 0 for most."""
    return 0.0

  def saturation(self) -> Any:
    """|x| beyond which g and P are at their limits to every dtype's precision, or None.

    Used only when parameters are traced: finite inputs are clipped to ±saturation() first. Values
    do not change; derivatives in the parameters stay finite (a product c·α·x has tangent c·x·α̇,
    which overflows at huge x, and inf·0 = NaN downstream). Computed from the (traced) parameters,
    so not metadata.
    """
    return None

  def mass(self) -> float:
    """∫ g over the real line (math.inf when it diverges, math.nan for periodic surrogates)."""
    raise NotImplementedError

  def limits(self) -> Limits | None:
    """g and P at ±inf, or None for periodic surrogates (no limit)."""
    raise NotImplementedError

  def length_scale(self) -> float:
    """Characteristic width of g (about 1/alpha): the scale for steps and sample ranges."""
    raise NotImplementedError

  def peak_points(self, width: float | None = None) -> np.ndarray:
    """The float32 points where :meth:`peak` looks for max |g|: ±8 widths (``width``, by default
    :meth:`length_scale`) and the kinks."""
    w = self.length_scale() if width is None else width
    return np.concatenate([np.linspace(-8, 8, 4001) * w, np.asarray(self.kinks(), np.float64)]).astype(np.float32)

  def peak(self) -> float:
    """max |g|, used to express tolerances relative to the size of g."""
    xs = np.resize(self.peak_points(), 4096)  # one length for every surrogate: the eager operations compile once
    with jax.default_device(jax.devices("cpu")[0]):
      return float(np.max(np.abs(np.asarray(self._grad(jnp.asarray(xs, jnp.float32))))))

  def __repr__(self) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
    return f"{self.name}({args})"


class UnknownParameterError(ValueError, TypeError):
  """A parameter name a surrogate does not declare (a ``TypeError`` too, like any unknown keyword)."""


for _name in METADATA:
  setattr(Surrogate, _name, _needs_concrete(Surrogate.__dict__[_name]))
del _name


def _flatten(s: Surrogate) -> tuple[tuple[Any, ...], tuple[tuple[str, ...], tuple[Any, ...]]]:
  """Leaves: the non-static fields (nested surrogates are pytrees too); aux: the static ones."""
  specs = s.parameter_specs()
  static = tuple(f.name for f in dataclasses.fields(s) if f.name in specs and specs[f.name].static)
  dynamic = tuple(f.name for f in dataclasses.fields(s) if f.name not in static)
  return tuple(getattr(s, n) for n in dynamic), (dynamic, tuple((n, getattr(s, n)) for n in static))


def _unflatten(cls: type[Surrogate], aux: tuple[tuple[str, ...], tuple[Any, ...]], children: Any) -> Surrogate:
  """Rebuilds without validation (JAX passes tracers and placeholders as leaves)."""
  dynamic, static = aux
  s = object.__new__(cls)
  for n, v in (*zip(dynamic, children, strict=True), *static):
    object.__setattr__(s, n, v)
  return s


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
  "bind_parameters",
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


#: 2^f - 1 on f ∈ [-1/2, 1/2], degree 6 without the constant term (near-minimax in relative error, fitted
#: in float64 by Lawson's iteration): within 2.0e-9 of 2^f; evaluated by Horner in float32 the total
#: error is 1.0e-7 relative (rounding). The constant term is exactly 1, so 2^0 = 1 exactly.
_EXP2_M1 = (0.6931472028552519, 0.24022647913611142, 0.055503324707015765, 0.009618437358478563,
            0.0013398874588711565, 0.00015353362067102263)
_LOG2_E = 1.0 / math.log(2.0)


def exp2_nonpositive(y: Array, k: Any = 1.0) -> Array:
  """k·2^y for y <= 0 (and y = -inf), float32 and narrower, with add/mul, a rounding and one shift (no
  call to exp).

  y is first raised to -127 where lower (a select, so a NaN passes). Then y = n + f with n = round(y)
  and f = y - n ∈ [-1/2, 1/2] (exact); 2^n from the bits of t = n + 1.5·2^23 + 127 (exact), whose low
  mantissa bits hold n + 127: shifted left by 23 they are the bits of 2^n, +0 for n = -127 (results
  below the smallest normal float32 are 0, as XLA:CPU flushes them anyway). No float-to-int
  conversion, whose saturation XLA spells out in several instructions. 2^f is the polynomial
  :data:`_EXP2_M1`, with a Python number k folded into its coefficients (else one multiply).
  Relative error about 1e-7 plus the rounding of y. y > 128 (outside the domain) gives garbage, not inf.
  """
  y = jnp.where(y < -127.0, jnp.asarray(-127.0, y.dtype), y)
  n = jnp.round(y)
  f = y - n
  fold = is_number(k)
  coeffs = [c * k for c in _EXP2_M1] if fold else _EXP2_M1
  p = jnp.asarray(coeffs[-1], y.dtype)
  for c in coeffs[-2::-1]:
    p = p * f + c
  p = p * f + (k if fold else 1.0)
  t = lax.bitcast_convert_type(n + (1.5 * 2.0**23 + 127.0), jnp.uint32)
  out = p * lax.bitcast_convert_type(t << 23, y.dtype)
  return out if fold else out * k


#: exp(-800) is 0 in float64 (and every narrower type): a Gaussian's exponent is bounded there, like
#: clipping its standardised argument to ±40, so the exponent and its derivatives stay finite.
_GAUSS_EXPONENT_FLOOR = -800.0


def exp_product(c: Any, v: Array, k: Any = 1.0) -> Array:
  """k·exp(c·v) for c·v <= 0 (c a scalar or traced value, v an array), the exponent raised by a select
  to a floor where the value is 0 already (so an infinite exponent, or its infinite tangent, is dropped
  there, not multiplied by 0). Two paths, by dtype:

  - float32 (and narrower): :func:`exp2_nonpositive` of (c·log2 e)·v (floor -127), with log2 e folded
    into c and a Python number k into the polynomial: no call to exp;
  - float64: ``k·jnp.exp(c·v)``, floor -800.
  """
  if v.dtype == jnp.float64:
    y = c * v
    return k * jnp.exp(jnp.where(y < _GAUSS_EXPONENT_FLOOR, jnp.asarray(_GAUSS_EXPONENT_FLOOR, v.dtype), y))
  return exp2_nonpositive((_LOG2_E * c) * v, k)


def gaussian_sum(x: Array, *terms: tuple[Any, Any, Any]) -> Array:
  """Σ k·exp(-a·(x - m)²) over the ``terms`` (k, a, m), a > 0, by :func:`exp_product`; k, a and m may
  be traced.

  x is clipped once, to the widest |m| + b of the terms, b the distance beyond which a term is 0
  already (b = √(127/(a·log2 e)) in float32 and narrower, where 2^-127 gives 0; √(800/a) in float64),
  so that (x - m)², the exponents and every derivative stay finite for every input (an unclipped
  x = ±inf gives 0·inf = NaN in reverse mode).
  """
  floor = _GAUSS_EXPONENT_FLOOR if x.dtype == jnp.float64 else -127.0 / _LOG2_E
  bounds = [jnp.sqrt(-floor / jnp.asarray(a, x.dtype)) + abs(m) for _, a, m in terms]
  bound = functools.reduce(jnp.maximum, bounds)
  xc = jnp.clip(x, -bound, bound)
  total = None
  for k, a, m in terms:
    d = xc if is_number(m) and m == 0 else xc - m
    term = exp_product(-jnp.asarray(a, x.dtype), d * d, k)
    total = term if total is None else total + term
  return total


def is_negative_bits(x: Array) -> Array:
  """The same predicate as :func:`is_negative` (x < 0 decided on the bits: -0.0 and NaN are not
  negative, negative subnormals are), in one integer subtraction and one unsigned comparison: the bits
  of a negative non-NaN x, minus those of the smallest negative subnormal, are below those of +inf."""
  utype = _UINT[x.dtype.itemsize]
  bits = lax.bitcast_convert_type(x, utype)
  nbits = 8 * x.dtype.itemsize
  inf_bits = lax.bitcast_convert_type(jnp.asarray(jnp.inf, x.dtype), utype)
  return bits - jnp.asarray((1 << (nbits - 1)) + 1, utype) < inf_bits
