"""Numerical oracles: finite differences, quadrature, sample points, platform facts."""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence

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
# Quadrature: adaptive Gauss–Kronrod (21 points), vectorised over panels
# ---------------------------------------------------------------------------------------------

#: Kronrod nodes on [-1, 1] (QUADPACK's qk21); the 10 Gauss nodes are the odd-indexed ones.
_XGK = np.array([0.995657163025808080735527280689003, 0.973906528517171720077964012084452,
                 0.930157491355708226001207180059508, 0.865063366688984510732096688423493,
                 0.780817726586416897063717578345042, 0.679409568299024406234327365114874,
                 0.562757134668604683339000099272694, 0.433395394129247190799265943165784,
                 0.294392862701460198131126603103866, 0.148874338981631210884826001129720, 0.0])
_WGK = np.array([0.011694638867371874278064396062192, 0.032558162307964727478818972459390,
                 0.054755896574351996031381300244580, 0.075039674810919952767043140916190,
                 0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
                 0.123491976262065851077958109831074, 0.134709217311473325928054001771707,
                 0.142775938577060080797094273138717, 0.147739104901338491374841515972068,
                 0.149445554002916905664936468389821])
_WG = np.array([0.066671344308688137593568809893332, 0.149451349150580593145776339657697,
                0.219086362515982043995534934228163, 0.269266719309996355091226921569469,
                0.295524224714752870173892994651338])
XGK21 = np.concatenate([-_XGK[:-1], _XGK[::-1]])  # ascending, 21 nodes
WGK21 = np.concatenate([_WGK[:-1], _WGK[::-1]])
WG10 = np.concatenate([_WG, _WG[::-1]])  # at XGK21[1::2]
EPSABS, EPSREL = 1e-13, 1e-10
#: The most evaluations of the integrand one integral may take (2^17 nodes: 1 MiB of float64 on the record).
MAX_EVALS = 1 << 17


class QuadratureLimit(Exception):
  """An adaptive integral that did not reach its target within :data:`MAX_EVALS` evaluations."""


def gauss_kronrod(f: Callable[[np.ndarray], np.ndarray], lo: np.ndarray,
                  hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """∫ f over each panel [lo_i, hi_i] by the 21-point Kronrod rule, QUADPACK's error estimate, and
  the rounding floor of that estimate.

  One call of f on all 21·n nodes. With K, G the Kronrod and 10-point Gauss sums, h the half-width,
  resasc = h·Σ w_k |f_k - K/2|: err = resasc·min(1, (200·|K - G|·h / resasc)^1.5), and at least
  50·eps·h·Σ w_k |f_k| (the rounding floor), as in QUADPACK's qk21.
  """
  c, h = (lo + hi) / 2, (hi - lo) / 2
  fx = np.asarray(f((c[:, None] + h[:, None] * XGK21).reshape(-1)), np.float64).reshape(len(lo), 21)
  k = fx @ WGK21
  g = fx[:, 1::2] @ WG10
  resabs = np.abs(fx) @ WGK21 * np.abs(h)
  resasc = np.abs(fx - k[:, None] / 2) @ WGK21 * np.abs(h)
  err = np.abs((k - g) * h)
  with np.errstate(all="ignore"):
    scaled = resasc * np.minimum(1.0, (200 * err / resasc) ** 1.5)
  err = np.where((resasc != 0) & (err != 0), scaled, err)
  floor = 50 * F64_EPS * resabs
  return k * h, np.maximum(err, floor), floor


def adaptive_quad(f: Callable[[np.ndarray], np.ndarray], edges: Sequence[float], epsabs: float = EPSABS,
                  epsrel: float = EPSREL, max_rounds: int = 60, max_panels: int = 1 << 14,
                  max_evals: int = MAX_EVALS) -> tuple[float, float]:
  """∫ f from edges[0] to edges[-1] (finite, ascending; the inner edges are breakpoints).

  Each round evaluates every open panel at once; a panel whose error estimate is within its share of
  the target max(epsabs, epsrel·|I|) (in proportion to its width) or at the rounding floor is closed,
  the others are bisected. Returns (value, error estimate): the estimate is the sum of the panels'
  estimates, also when the target is not reached (after max_rounds or max_panels). Raises
  :class:`QuadratureLimit` where the next round would take the evaluations past ``max_evals`` (an integrand
  rough everywhere, a step function at some resolution, would otherwise be evaluated at millions of points).
  """
  edges = np.asarray(edges, np.float64)
  grid = np.concatenate([np.linspace(a, b, 5)[:-1] for a, b in itertools.pairwise(edges)] + [edges[-1:]])
  lo, hi = grid[:-1], grid[1:]  # four panels between breakpoints to start with
  width = edges[-1] - edges[0]
  closed_value = closed_err = 0.0
  evals = 0
  for _ in range(max_rounds):
    evals += 21 * len(lo)
    if evals > max_evals:
      raise QuadratureLimit(f"the adaptive quadrature over [{edges[0]!r}, {edges[-1]!r}] did not reach its target "
                            f"within {max_evals:,} evaluations of the integrand ({len(lo):,} panels still open)")
    value, err, floor = gauss_kronrod(f, lo, hi)
    total, total_err = closed_value + value.sum(), closed_err + err.sum()
    target = max(epsabs, epsrel * abs(total))
    if not np.isfinite(total_err) or total_err <= target or 2 * len(lo) > max_panels:
      return float(total), float(total_err)
    done = (err <= target * (hi - lo) / width) | (err <= floor)
    closed_value += value[done].sum()
    closed_err += err[done].sum()
    lo, hi = lo[~done], hi[~done]
    mid = (lo + hi) / 2
    lo, hi = np.concatenate([lo, mid]), np.concatenate([mid, hi])
  if evals + 21 * len(lo) > max_evals:
    raise QuadratureLimit(f"the adaptive quadrature over [{edges[0]!r}, {edges[-1]!r}] did not reach its target "
                          f"within {max_evals:,} evaluations of the integrand ({len(lo):,} panels still open)")
  value, err, _ = gauss_kronrod(f, lo, hi)
  return float(closed_value + value.sum()), float(closed_err + err.sum())


def integrate_between(g: Callable[[np.ndarray], np.ndarray], a: float, b: float, breakpoints: Sequence[float],
                      ) -> tuple[float, float]:
  """∫_a^b g (g vectorised over float64 arrays), kinks and 0 as breakpoints. Returns (value, abserr)."""
  lo, hi = min(a, b), max(a, b)
  pts = sorted({p for p in breakpoints if lo < p < hi})
  value, err = adaptive_quad(g, [lo, *pts, hi])
  sign = 1.0 if b >= a else -1.0
  return sign * value, err


def integrate_tail(g: Callable[[np.ndarray], np.ndarray], start: float, direction: float) -> tuple[float, float]:
  """∫ g from ``start`` to ``direction``·inf with ``scipy.integrate.quad`` (QUADPACK's qagi: the map
  t -> start + direction·(1-t)/t onto (0, 1] plus the epsilon-algorithm extrapolation).

  The extrapolation matters: a tail like |x|^(-1.0001) maps to an integrable singularity t^(-0.9999)
  at t = 0 that plain adaptive Gauss–Kronrod cannot resolve (it returns a far smaller value with an
  error estimate that does not cover the difference). quad asks for g one point at a time; each of its
  15-point rules is evaluated in one call of g instead (:class:`_Qk15iRules`), and any other point on its own.
  Where quad reports a failure its estimate is widened to the value itself.
  """
  rules = _Qk15iRules(start, direction)
  known: dict[float, float] = {}

  def scalar(x: float) -> float:
    if x not in known:
      nodes = rules.rule_centred_at(x) or [x]
      known.update(zip(nodes, np.asarray(g(np.array(nodes, np.float64)), np.float64).reshape(-1).tolist(),
                       strict=True))
    return known[x]

  lo, hi = (start, np.inf) if direction > 0 else (-np.inf, start)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", integrate.IntegrationWarning)
    value, err, _info, *warning = integrate.quad(scalar, lo, hi, limit=200, epsabs=1e-13, epsrel=1e-10,
                                                 full_output=1)
  if warning:  # quad's message: it did not converge (subdivisions, roundoff, divergence)
    err = max(err, abs(value))
  return value, err


#: QUADPACK's 15-point Kronrod nodes on [-1, 1], the positive ones largest first (qk15i's ``xgk``).
_XGK15 = (0.991455371120812639206854697526329, 0.949107912342758524526189684047851, 0.864864423359769072789712788640926,
          0.741531185599394439863864773280788, 0.586087235467691130294144838258730, 0.405845151377397166906606412076961,
          0.207784955007898467600689403773245)


class _Qk15iRules:
  """The points at which QUADPACK's qagi evaluates one 15-point rule, known from its first.

  qagi integrates over t in (0, 1] with x = boun + dinf·(1 - t)/t, bisecting: every interval is [k/2^m, (k+1)/2^m],
  and its rule (qk15i) asks for the centre first, then for centre ∓ half-width·xgk[j], j = 0..6, each mapped to x
  with the same floating-point operations as here. So the x of a centre names its interval, found exactly by
  trying each level m; the rule's 15 points follow. A point that is no centre (or a QUADPACK that computes
  otherwise) gives None, and is evaluated on its own: the values are g's either way, only the calls differ.
  """

  def __init__(self, boun: float, dinf: float):
    self.boun, self.dinf = float(boun), float(dinf)

  def _x(self, t: float) -> float:
    return self.boun + self.dinf * (1.0 - t) / t

  def rule_centred_at(self, x: float) -> list[float] | None:
    y = (x - self.boun) * self.dinf  # (1 - t)/t
    if not (math.isfinite(y) and y >= 0):
      return None
    t = 1.0 / (1.0 + y)
    for m in range(1, 64):
      k = math.floor(t * 2.0**m / 2)  # centre (2k + 1)/2^m
      for j in (k - 1, k, k + 1):
        centre, half = (2 * j + 1) / 2.0**m, 1 / 2.0**m
        if 0 < centre < 1 and self._x(centre) == x:
          nodes = [x]
          for xg in _XGK15:
            absc = half * xg
            nodes += [self._x(centre - absc), self._x(centre + absc)]
          return nodes
    return None


def integrate_real_line(g: Callable[[np.ndarray], np.ndarray], cut: float,
                        breakpoints: Sequence[float]) -> tuple[float, float]:
  """∫ g over the real line: (-inf, -cut] + [-cut, cut] with breakpoints + [cut, inf)."""
  left, e1 = integrate_tail(g, -cut, -1.0)
  right, e3 = integrate_tail(g, cut, 1.0)
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


@contextlib.contextmanager
def _without_local_constants() -> Iterator[None]:
  """Hypothesis (6.131 and later) mixes numbers it finds in the local modules imported so far into what it
  draws, so the same seed would draw other values in a process that imported other code (the worker
  imports the target, the judge does not, and both must choose the same inputs). Within this, it finds
  none: the draws are a function of (dtype, examples, seed) alone. Versions without the feature are
  left as they are."""
  try:
    from hypothesis.internal.conjecture import providers
  except ImportError:  # pragma: no cover (a layout of hypothesis without it)
    yield
    return
  found, cache = getattr(providers, "_get_local_constants", None), getattr(providers, "CONSTANTS_CACHE", None)
  if found is None or not hasattr(providers, "Constants"):
    yield
    return
  none = providers.Constants()
  providers._get_local_constants = lambda: none
  if cache is not None:
    cache.cache.clear()
  try:
    yield
  finally:
    providers._get_local_constants = found
    if cache is not None:
      cache.cache.clear()


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

  with _HYPOTHESIS_LOCK, _without_local_constants():  # hypothesis keeps global state: one draw at a time
    draw()
  return tuple(draws)
