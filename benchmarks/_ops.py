"""The benchmarked operations, one declaration each (in the style of torch's OpInfo).

An :class:`Op` is everything the suite, the report and the options need to know about one
operation on a spike function (``x -> H(x)`` with a custom gradient: a reference surrogate or a
peer library's activation): the timed kernel, a same-bytes baseline kernel with the least possible
arithmetic, the arrays read and written per element, and how its inputs are drawn. Adding an
operation is one entry in :data:`OPS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Spike = Callable[[jax.Array], jax.Array]
Kernel = Callable[..., Any]


class Unsupported(Exception):
  """The operation cannot be built for this spike function (the reason is the message)."""


@dataclasses.dataclass(frozen=True)
class Op:
  """One benchmarked operation.

  ``kernel(spike)`` returns the timed function of the op's inputs; ``baseline`` is a function of the
  same inputs that reads and writes the same arrays; ``reads``/``writes`` count the arrays of
  ``n`` elements moved per call (``bytes = (reads + writes) * n * itemsize``); ``inputs(rng, n,
  dtype, scale)`` draws the host inputs (``scale``: the surrogate's length scale).
  """

  name: str
  kernel: Callable[[Spike], Kernel]
  baseline: Kernel
  baseline_text: str
  reads: int
  writes: int
  inputs: Callable[[np.random.Generator, int, str, float], tuple[np.ndarray, ...]]
  doc: str = ""

  def bytes_per_element(self, dtype: str) -> int:
    """Bytes the op must move per element of ``dtype``."""
    return (self.reads + self.writes) * jnp.dtype(dtype).itemsize

  def bytes_moved(self, n: int, dtype: str) -> int:
    return n * self.bytes_per_element(dtype)

  def make_inputs(self, n: int, dtype: str, scale: float = 1.0, seed: int = 0) -> tuple[np.ndarray, ...]:
    return self.inputs(np.random.default_rng(seed), n, dtype, scale)

  def record(self, dtypes: tuple[str, ...]) -> dict[str, Any]:
    """The op as written into the benchmark JSON (``surrogate_bench.ops``)."""
    return {
        "name": self.name,
        "baseline": self.baseline_text,
        "bytes_per_element": {d: self.bytes_per_element(d) for d in dtypes},
        "reads": self.reads,
        "writes": self.writes,
        "doc": self.doc,
    }


def cast(a: np.ndarray, dtype: str) -> np.ndarray:
  """Host array in ``dtype`` with exact zeros replaced by a small non-zero value."""
  out = np.asarray(a, np.float32).astype(jnp.dtype(dtype))
  out[out == 0] = 2.0**-10
  return out


def _x(rng: np.random.Generator, n: int, dtype: str, scale: float) -> np.ndarray:
  """x uniform on ±4·scale."""
  return cast(rng.uniform(-4.0, 4.0, n) * scale, dtype)


def _x_only(rng, n, dtype, scale):
  return (_x(rng, n, dtype, scale),)


def _x_and_normal(rng, n, dtype, scale):
  """x, and a standard normal cotangent or tangent."""
  return _x(rng, n, dtype, scale), cast(rng.standard_normal(n), dtype)


def _x_normal_alpha(rng, n, dtype, scale):
  """x, a standard normal cotangent, and one alpha per element near 1 (scaled onto the default below)."""
  return (*_x_and_normal(rng, n, dtype, scale), cast(rng.uniform(0.5, 1.5, n), dtype))


def _half(x: jax.Array) -> jax.Array:
  return x * jnp.asarray(0.5, x.dtype)


def _vjp(spike: Spike) -> Kernel:
  return lambda x, ct: jax.vjp(spike, x)[1](ct)[0]


def traced_alpha(spike: Spike) -> Kernel:
  """VJP at one traced ``alpha`` per element: ``alpha = default * a`` with ``a`` an input array, so the
  surrogate is rebuilt from data inside the jitted function (what a learnable, per-neuron alpha costs)."""
  fields = getattr(spike, "params", None)
  if not isinstance(fields, dict) or "alpha" not in fields:
    raise Unsupported("no parameter 'alpha'")
  default = fields["alpha"]

  def kernel(x: jax.Array, ct: jax.Array, a: jax.Array) -> jax.Array:
    traced = dataclasses.replace(spike, alpha=a * jnp.asarray(default, a.dtype))
    return jax.vjp(traced, x)[1](ct)[0]

  try:  # parameters as data: a surrogate built from a traced array
    args = (jnp.ones(2, jnp.float32),) * 3
    jax.eval_shape(kernel, *args)
  except Exception as exc:
    why = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    raise Unsupported(f"alpha cannot be a traced array yet ({why})") from None
  return kernel


OPS: tuple[Op, ...] = (
    Op("fwd", lambda s: lambda x: s(x), _half, "x * 0.5", 1, 1, _x_only, "forward H(x)"),
    Op("vjp", _vjp, lambda x, ct: ct * x, "ct * x", 2, 1, _x_and_normal, "ct * g(x)"),
    Op(
        "jvp", lambda s: lambda x, t: jax.jvp(s, (x,), (t,)), lambda x, t: (_half(x), x * t), "(x * 0.5, x * t)",
        2, 2, _x_and_normal, "(H(x), t * g(x))",
    ),
    Op("vmap_grad", lambda s: lambda x: jax.vmap(jax.grad(s))(x), _half, "x * 0.5", 1, 1, _x_only, "vmap(grad(H))"),
    Op(
        "vjp_alpha", traced_alpha, lambda x, ct, a: ct * x * a, "ct * x * a", 3, 1, _x_normal_alpha,
        "ct * g(x) with a traced per-element alpha",
    ),
)
BY_NAME: dict[str, Op] = {op.name: op for op in OPS}
NAMES: tuple[str, ...] = tuple(BY_NAME)


TRANSCENDENTAL = frozenset(
    "exp exp2 log log1p expm1 logistic tanh sin cos tan asin acos atan atan2 sinh cosh asinh acosh atanh"
    " erf erfc erf_inv lgamma digamma pow cbrt".split()
)


def primitives(fn: Callable[..., Any], *args: Any) -> frozenset[str]:
  """Names of every primitive in the jaxpr of ``fn(*args)``, sub-jaxprs included."""
  return frozenset(_walk(jax.make_jaxpr(fn)(*args).jaxpr))


def _walk(jaxpr: Any) -> set[str]:
  names: set[str] = set()
  for eqn in jaxpr.eqns:
    names.add(eqn.primitive.name)
    for value in eqn.params.values():
      for sub in value if isinstance(value, tuple | list) else (value,):
        inner = getattr(sub, "jaxpr", sub)
        if hasattr(inner, "eqns"):
          names |= _walk(inner)
  return names


def arithmetic_class(spike: Spike) -> tuple[str, tuple[str, ...]]:
  """'transcendental' if the VJP calls exp, log, a trigonometric or similar function, else
  'polynomial' (polynomial, rational and piecewise forms); and the transcendental primitives."""
  x = jnp.ones(8, jnp.float32)
  found = primitives(_vjp(spike), x, x) & TRANSCENDENTAL
  return ("transcendental" if found else "polynomial"), tuple(sorted(found))
