"""Numerical oracles: finite differences, quadrature, sample points, platform facts."""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy import integrate

F64_EPS = float(np.finfo(np.float64).eps)


# ---------------------------------------------------------------------------------------------
# Steps and sample points
# ---------------------------------------------------------------------------------------------


def fd_step(length_scale: float, c: float = 4e-3) -> float:
  """h = c·width rounded down to a power of two (so x ± h is exact for the grid points)."""
  return 2.0 ** math.floor(math.log2(c * length_scale))


def away_from(x: np.ndarray, points: Sequence[float], margin: float) -> np.ndarray:
  """The elements of x at least ``margin`` from every point."""
  keep = np.ones(x.shape, bool)
  for p in points:
    keep &= np.abs(x - p) >= margin
  return x[keep]


def sample_points(length_scale: float, kinks: Sequence[float], margin: float, n: int = 401,
                  seed: int = 0, span: float = 8.0) -> np.ndarray:
  """A grid and random points over ±span·width, plus a few far points, kept off the kinks."""
  rng = np.random.default_rng(seed)
  grid = np.linspace(-span, span, n) * length_scale
  rand = rng.uniform(-span, span, n // 2) * length_scale
  far = np.array([-60.0, -25.0, -12.0, 12.0, 25.0, 60.0]) * length_scale
  x = np.concatenate([grid, rand, far])
  # Shift grid points by an irrational fraction so no point sits on a symmetric kink by design.
  x = x + length_scale * 1e-3 * math.sqrt(2)
  return np.sort(away_from(x, kinks, margin))


# ---------------------------------------------------------------------------------------------
# Finite differences (float64, Richardson on central differences)
# ---------------------------------------------------------------------------------------------


def central(fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float) -> np.ndarray:
  return (fun(x + h) - fun(x - h)) / (2 * h)


def richardson(fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
  """(4·D(h/2) - D(h))/3 and an error estimate (its change against the same at 2h, /15 + rounding).

  Truncation error is O(h⁴); rounding error is ~eps·|P|/h per evaluation.
  """
  d_h, d_h2, d_2h = central(fun, x, h), central(fun, x, h / 2), central(fun, x, 2 * h)
  r_h = (4 * d_h2 - d_h) / 3
  r_2h = (4 * d_h - d_2h) / 3
  scale = np.maximum.reduce([np.abs(fun(x + s)) for s in (-2 * h, 2 * h)] + [np.abs(fun(x))])
  rounding = 8 * F64_EPS * scale / h
  return r_h, np.abs(r_h - r_2h) / 15 + rounding


# ---------------------------------------------------------------------------------------------
# Quadrature
# ---------------------------------------------------------------------------------------------


def integrate_between(g: Callable[[float], float], a: float, b: float, breakpoints: Sequence[float],
                      limit: int = 200) -> tuple[float, float]:
  """∫_a^b g with ``scipy.integrate.quad``, kinks and 0 as breakpoints. Returns (value, abserr)."""
  lo, hi = min(a, b), max(a, b)
  pts = sorted({p for p in breakpoints if lo < p < hi})
  with warnings.catch_warnings():  # quad's warnings are reflected in its error estimate and messages
    warnings.simplefilter("ignore", integrate.IntegrationWarning)
    value, err, *rest = integrate.quad(g, lo, hi, points=pts or None, limit=limit, epsabs=1e-13, epsrel=1e-10,
                                       full_output=1)
  if len(rest) >= 2 and isinstance(rest[-1], str) and "maximum number of subdivisions" in rest[-1]:
    err = max(err, abs(value) * 1e-6)
  sign = 1.0 if b >= a else -1.0
  return sign * value, err


def integrate_real_line(g: Callable[[float], float], cut: float, breakpoints: Sequence[float]) -> tuple[float, float]:
  """∫ g over the real line: (-inf, -cut] + [-cut, cut] with breakpoints + [cut, inf)."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", integrate.IntegrationWarning)
    left, e1 = integrate.quad(g, -np.inf, -cut, limit=200, epsabs=1e-13, epsrel=1e-10)
    right, e3 = integrate.quad(g, cut, np.inf, limit=200, epsabs=1e-13, epsrel=1e-10)
  mid, e2 = integrate_between(g, -cut, cut, breakpoints)
  return left + mid + right, e1 + e2 + e3


# ---------------------------------------------------------------------------------------------
# Platform facts
# ---------------------------------------------------------------------------------------------


@functools.cache
def flushes_subnormals() -> dict[str, bool]:
  """Per float dtype: does compiled code on the default backend treat -subnormal as -0.0?"""
  out = {}
  for name in ("float16", "bfloat16", "float32", "float64"):
    dtype = jnp.dtype(name)
    tiny = np.asarray(-float(jnp.finfo(dtype).smallest_subnormal), np.float64).astype(dtype)
    out[name] = not bool(jax.jit(lambda v: v < 0)(jnp.asarray(tiny)))
  return out


def all_bit_patterns(dtype) -> np.ndarray:
  """Every value of a 16-bit float dtype (65,536 of them, NaNs included)."""
  return np.arange(65536, dtype=np.uint16).view(jnp.dtype(dtype))


def edge_values(dtype) -> np.ndarray:
  """Explicit edge inputs of a dtype: zeros, subnormals, tiny, eps, powers of ten, max, inf."""
  fi = jnp.finfo(jnp.dtype(dtype))
  mags = [0.0, float(fi.smallest_subnormal), float(fi.tiny), float(fi.eps), 0.5, 1.0, 2.0, 10.0]
  mags += [10.0**k for k in range(2, 309) if 10.0**k < float(fi.max)]
  mags += [float(fi.max) / 4, float(fi.max) / 2, float(fi.max), np.inf]
  v = np.array(mags, np.float64)
  return np.concatenate([v, -v]).astype(jnp.dtype(dtype))


_HYPOTHESIS_LOCK = threading.Lock()


@functools.cache
def hypothesis_draws(dtype_name: str, examples: int, seed: int = 0,
                     size: int = 512) -> tuple[tuple[np.ndarray, float], ...]:
  """``examples`` hypothesis draws of (``size`` values of the dtype, a width in [1e-3, 1e3]).

  Values: any finite value of the dtype, subnormals included (hypothesis favours extremes and
  boundaries). A pure function of its arguments (seeded, no example database), computed once per
  process and shared by every candidate; the arrays are read-only.
  """
  from hypothesis import HealthCheck, given, settings
  from hypothesis import seed as hypothesis_seed
  from hypothesis import strategies as st
  from hypothesis.extra import numpy as hnp

  dtype = jnp.dtype(dtype_name)
  strategy = hnp.arrays(dtype, size, elements=hnp.from_dtype(dtype, allow_nan=False, allow_infinity=False,
                                                             allow_subnormal=True))
  draws: list[tuple[np.ndarray, float]] = []

  @hypothesis_seed(seed)
  @settings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck))
  @given(strategy, st.floats(1e-3, 1e3))
  def draw(values: np.ndarray, width: float) -> None:
    values = np.array(values)
    values.flags.writeable = False
    draws.append((values, float(width)))

  with _HYPOTHESIS_LOCK:  # hypothesis keeps global state: one draw at a time
    draw()
  return tuple(draws)
