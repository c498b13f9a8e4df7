"""The layer checks: a spiking layer through time against the reference LIF at its documented settings.

A layer candidate (:mod:`verification.core.layer`) declares the point of the settings grid
(:class:`surrogates.LIFConfig`) its documentation states; the checks run it and the reference
(:func:`surrogates.lif_scan`, mirrored at that config) on the same problems and compare:

* ``layer_forward``: spikes exactly equal at every step; membrane within ``rtol = 16·T·eps·G^T`` and
  ``atol = rtol·‖ref‖∞`` per tensor, with a global ``‖Δ‖₂/‖ref‖₂ ≤ rtol`` (G = max(1, the per-step gain
  max|∂v_t/∂v_{t−1}|): rounding of the two op orders, ε·|v| a step, carried by the gain). The inputs are
  resampled until every pre-activation of the reference keeps a margin ``δ = 100·eps·max|v|/(1 − β)``
  from the threshold (and from every multiple of θ for a multi-spike forward), so rounding cannot flip a
  spike; a separate one-step case puts the membrane exactly on θ and pins ≥ against >.
* ``layer_gradient``: one VJP of ``L = Σ a·spikes + b·membrane`` (a, b fixed random) with respect to the
  input, the initial state and every parameter the layer returns a gradient for, against the reference's
  (β raw: in the library's parametrisation), within the membrane's rtol times the surrogate's condition
  ``1 + max|v|/(ℓ·min(1, θ))`` (ℓ its width: rounding v by ε|v| moves g by ε|v|·|g'| ≲ ε|v|·g/ℓ).
* ``layer_learnable``: the parameters the layer declares learnable receive a nonzero gradient wherever the
  reference's is nonzero; with ``gradients`` (the layer reads its own module's gradients) a parameter that
  receives one without being declared is reported too.
* ``layer_probes``: where the layer accepts a custom surrogate: g ≡ 0, g ≡ 0.37, g ≡ 0.61 and the asymmetric
  g = exp(−u²)(1 + 0.3u), the layer's VJP against the reference's with the same g (this separates wiring
  from the surrogate's shape: no catalogue mapping involved); and at g ≡ 0 the layer's gradient against
  central finite differences of its own hard forward with the spike pattern frozen (h = 1e-3 relative in
  float64 and h/2, Richardson-extrapolated; the pattern at both steps checked unchanged; the forward is
  then smooth along the direction, so the error is O(h^4) plus rounding eps·|L|/h: rtol 1e-5), which
  measures the library without the reference.

On a mismatch the settings grid is searched (each field varied alone, then pairs) for the configurations
that reproduce the layer's forward and gradients; every result's detail says ``documented`` (config),
``implemented`` (the nearest matching config, or None: "matches no setting"), ``differs`` (field ->
[documented, implemented]), ``reset_gain`` (max |∂v_t/∂v_{t−1}| of the reference at the implemented, else
documented, config) and ``dtype``.

Sizes: batch 3 × 5 neurons, T in {1, 2, 3, 20, 100}, θ in {0.5, 1, 2}, v_reset in {0, −0.3} (where the
layer takes them: ``varies``), three seeds. The reference runs with the settings as integer codes
(:class:`surrogates.lif.DynamicConfig`): one compiled program per surrogate class and length bucket
(:data:`T_BUCKETS`) serves every setting, vmapped over the cases; the settings search screens its candidate
settings by their forward, many settings to one call (:func:`_screen`), and compares forward and
gradient in full only for the settings whose forward reproduces the layer's.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import surrogates
from surrogates._lif_config import (
  FireFrom,
  Gain,
  Leak,
  LIFConfig,
  MembraneOut,
  ResetWhen,
  SpikeForward,
  Synapse,
)
from surrogates.lif import LIFParams, LIFState, config_codes, decay, lif_scan, reset_gain
from verification.checks import LAYER_CHECK_NAMES
from verification.core.errors import describe
from verification.core.layer import GRADIENT_NAMES, PROBES, LayerCandidate, LayerEvaluator
from verification.core.tape import Unrecorded
from verification.results import Outcome, Result, errored, failed, passed, skipped

T_VALUES = (1, 2, 3, 20, 100)
THETAS = (0.5, 1.0, 2.0)
V_RESETS = (0.0, -0.3)
SEEDS = (0, 1, 2)
SHAPE = (3, 5)
#: The lengths the settings search compares on (the forward and gradient of each case).
SEARCH_T = (3, 20)
#: The lengths the probes run at (T = 100 adds nothing the probe's wiring shows at 20).
PROBE_T = (1, 2, 3, 20)


@dataclasses.dataclass(frozen=True)
class Grid:
  """The problems a layer is checked on (the defaults are the documented sizes; tests may take fewer)."""

  t_values: tuple[int, ...] = T_VALUES
  thetas: tuple[float, ...] = THETAS
  v_resets: tuple[float, ...] = V_RESETS
  seeds: tuple[int, ...] = SEEDS

  def __post_init__(self) -> None:
    if max(self.t_values) > max(T_VALUES) or len(self.thetas) * len(self.v_resets) * len(self.seeds) > 18:
      raise ValueError(f"grid {self}: at most T = {max(T_VALUES)} and 18 cases per T")
FD_STEP = 1e-3
FD_RTOL = 1e-5
PROBE_NAMES = tuple(PROBES)


# -------------------------------------------------------------------------------------------------
# The reference, compiled once per (config, surrogate, T), vmapped over cases
# -------------------------------------------------------------------------------------------------


#: The probe surrogates as coefficients of one family g(u) = c0 + c1·exp(−u²)(1 + 0.3u) (one compiled
#: program for all of them); the layer receives the same g from :data:`verification.core.layer.PROBES`.
PROBE_COEFFICIENTS = {"zero": (0.0, 0.0), "const_0.37": (0.37, 0.0), "const_0.61": (0.61, 0.0), "asym": (0.0, 1.0)}


@jax.custom_jvp
def _probe_spike(c0, c1, u):
  return surrogates.heaviside(u)


@_probe_spike.defjvp
def _probe_spike_jvp(primals, tangents):
  c0, c1, u = primals
  t = tangents[2]
  return _probe_spike(c0, c1, u), (c0 + c1 * (jnp.exp(-u * u) * (1.0 + 0.3 * u))) * t


@jax.tree_util.register_pytree_node_class
class ProbeSurrogate:
  """H(u) (≥) with derivative c0 + c1·exp(−u²)(1 + 0.3u), the coefficients traced."""

  def __init__(self, c0: Any, c1: Any):
    self.c0, self.c1 = c0, c1

  def __call__(self, u):
    return _probe_spike(jnp.asarray(self.c0, u.dtype), jnp.asarray(self.c1, u.dtype), u)

  def tree_flatten(self):
    return (self.c0, self.c1), None

  @classmethod
  def tree_unflatten(cls, aux, children):
    return cls(*children)


def _probe(name: str) -> ProbeSurrogate:
  return ProbeSurrogate(*(np.float64(c) for c in PROBE_COEFFICIENTS[name]))


#: The lengths the reference is compiled for: a batch of T steps runs at the first that holds it (the input
#: padded with zeros past T, its loss weights 0), on CASES_PAD cases (padded with copies): one compiled program
#: per surrogate class and bucket. Steps past T change nothing before T (the scan is causal, the cotangents
#: there are exact zeros), so the bucket is only a cost: the checks at T ≤ 20 (the settings search, the
#: probes) run 20 steps, not 100.
T_MAX = max(T_VALUES)
T_BUCKETS = (20, T_MAX)
CASES_PAD = len(THETAS) * len(V_RESETS) * len(SEEDS)
#: How many settings one call of the screening forward runs (the settings search, vmapped over settings).
SCREEN_CHUNK = 16


def _bucket(T: int) -> int:
  return next(b for b in T_BUCKETS if b >= T)


def _run_reference(codes, surrogate, x, v, i, params, a, b):
  """x[C,T,...] ... -> spikes, membrane, grads, per-step gain [C,T] (max over the neurons)."""
  xt = jnp.moveaxis(x, 1, 0)

  def loss(xt, state, params):
    s, m, _ = lif_scan(xt, state, params, codes, surrogate)
    return jnp.sum(jnp.moveaxis(a, 1, 0) * s) + jnp.sum(jnp.moveaxis(b, 1, 0) * m), (s, m)

  (gx, gs, gp), (s, m) = jax.grad(loss, argnums=(0, 1, 2), has_aux=True)(xt, LIFState(v, i), params)
  grads = {"x": jnp.moveaxis(gx, 0, 1), "v": gs.v, "i": gs.i, **gp._asdict()}
  gain = jnp.abs(reset_gain(xt, LIFState(v, i), params, codes, surrogate))
  gain = jnp.max(gain.reshape(gain.shape[0], gain.shape[1], -1), axis=2)
  return jnp.moveaxis(s, 0, 1), jnp.moveaxis(m, 0, 1), grads, jnp.moveaxis(gain, 0, 1)


def _run_forward(codes, surrogate, x, v, i, params):
  """The forward alone for settings stacked on a leading axis: codes[K] -> spikes, membrane [K, C, T, ...]."""
  def one(codes):
    s, m, _ = lif_scan(jnp.moveaxis(x, 1, 0), LIFState(v, i), params, codes, surrogate)
    return jnp.moveaxis(s, 0, 1), jnp.moveaxis(m, 0, 1)

  return jax.vmap(one)(codes)


_COMPILED = jax.jit(_run_reference)
_FORWARD = jax.jit(_run_forward)


def _pad(a: np.ndarray, cases: int, steps: int | None = None) -> np.ndarray:
  a = np.asarray(a, np.float64)
  if a.shape[0] < cases:
    a = np.concatenate([a, np.repeat(a[-1:], cases - a.shape[0], axis=0)])
  if steps is not None and a.shape[1] < steps:
    a = np.concatenate([a, np.zeros((a.shape[0], steps - a.shape[1], *a.shape[2:]))], axis=1)
  return a


def _padded(x, v, i, params) -> tuple[Any, ...]:
  """The stacked cases as the compiled programs take them: (x, v, i, params), C and T padded."""
  C, T = x.shape[:2]
  pad = max(C, CASES_PAD)
  return (jnp.asarray(_pad(x, pad, _bucket(T))), jnp.asarray(_pad(v, pad)), jnp.asarray(_pad(i, pad)),
          LIFParams(**{k: jnp.asarray(_pad(params[k], pad)) for k in LIFParams._fields}))


def _evaluate(config: LIFConfig, surrogate: Any, x, v, i, params, a=None, b=None) -> dict[str, Any]:
  """The reference on stacked cases (padded to one shape, the padding cut off again)."""
  C, T = x.shape[:2]
  a = np.zeros_like(x) if a is None else a
  b = np.zeros_like(x) if b is None else b
  pad, steps = max(C, CASES_PAD), _bucket(T)
  live = (np.arange(steps) < T)[None, :, None, None]
  s, m, grads, gain = _COMPILED(config_codes(config), surrogate, *_padded(x, v, i, params),
                                jnp.asarray(_pad(a, pad, steps) * live), jnp.asarray(_pad(b, pad, steps) * live))
  grads = {k: np.asarray(g)[:C] for k, g in grads.items()}
  grads["x"] = grads["x"][:, :T]
  return {"s": np.asarray(s)[:C, :T], "m": np.asarray(m)[:C, :T], "grads": grads,
          "gain": np.max(np.asarray(gain)[:C, :T], axis=1)}


def _forward(configs: Sequence[LIFConfig], surrogate: Any, x, v, i, params) -> tuple[np.ndarray, np.ndarray]:
  """The reference's forward at several settings, SCREEN_CHUNK to a call: spikes, membrane [K, C, T, ...]."""
  C, T = x.shape[:2]
  args = _padded(x, v, i, params)
  spikes, membranes = [], []
  for start in range(0, len(configs), SCREEN_CHUNK):
    chunk = list(configs[start:start + SCREEN_CHUNK])
    chunk += chunk[-1:] * (SCREEN_CHUNK - len(chunk))
    codes = jax.tree.map(lambda *c: jnp.stack(c), *(config_codes(c) for c in chunk))
    s, m = _FORWARD(codes, surrogate, *args)
    spikes.append(np.asarray(s)[:, :C, :T])
    membranes.append(np.asarray(m)[:, :C, :T])
  K = len(configs)
  return np.concatenate(spikes)[:K], np.concatenate(membranes)[:K]


def _pre_reset(config: LIFConfig, surrogate: Any, x, v, i, params) -> np.ndarray:
  """The reference's pre-reset membrane (for the margins and the tie)."""
  return _forward([dataclasses.replace(config, membrane_out=MembraneOut.PRE_RESET)], surrogate, x, v, i, params)[1][0]


# -------------------------------------------------------------------------------------------------
# The cases
# -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Batch:
  """Cases of one length T, stacked on a leading axis (float64, already rounded to the layer's dtype)."""

  T: int
  x: np.ndarray
  v: np.ndarray
  i: np.ndarray
  params: dict[str, np.ndarray]  # each [C, *SHAPE]
  a: np.ndarray
  b: np.ndarray
  labels: tuple[str, ...]

  def case(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    return self.x[k], self.v[k], self.i[k], {n: p[k] for n, p in self.params.items()}, self.a[k], self.b[k]

  @property
  def size(self) -> int:
    return self.x.shape[0]


def _round(a: np.ndarray, dtype: str) -> np.ndarray:
  return np.asarray(a, np.float64).astype(dtype).astype(np.float64)


def _steady_input(config: LIFConfig, p: Mapping[str, float]) -> float:
  """The constant input whose steady-state membrane (no reset) is θ: the calibration of the inputs."""
  beta = float(np.mean(decay(np.asarray(p["beta"]), config.beta_map, np.asarray(p["dt"]))))
  alpha = float(np.mean(decay(np.asarray(p["alpha_syn"]), config.beta_map, np.asarray(p["dt"]))))
  syn = {Synapse.NONE: 1.0, Synapse.ADD_THEN_DECAY: 1.0 / max(1e-3, 1.0 - alpha),
         Synapse.DECAY_SUM: alpha / max(1e-3, 1.0 - alpha), Synapse.LAGGED: 1.0}[config.synapse]
  gain = {Gain.ONE: 1.0, Gain.PARAM: float(np.mean(p["gain"])), Gain.ONE_MINUS_BETA: 1.0 - beta,
          Gain.PARAM_ONE_MINUS_BETA: float(np.mean(p["gain"])) * (1.0 - beta)}[config.gain]
  target = {Leak.MULTIPLY: 0.0, Leak.TOWARD_RESET: float(np.mean(p["v_reset"])),
            Leak.TOWARD_LEAK: float(np.mean(p["v_leak"]))}[config.leak]
  leak = max(1e-3, 1.0 - beta)
  mu = ((float(np.mean(p["theta"])) - target) * leak - float(np.mean(p["bias"]))) / max(1e-6, abs(gain * syn))
  return mu if np.isfinite(mu) and mu != 0 else 1.0


def _margin(config: LIFConfig, pre: np.ndarray, v0: np.ndarray, theta: np.ndarray) -> np.ndarray:
  """The distance of every membrane a spike is computed from to the nearest point where the spike
  changes (θ; every kθ for a multi-spike forward), per case: the minimum over steps and neurons."""
  vs = np.concatenate([v0[:, None], pre], axis=1)
  th = theta[:, None]
  d = np.abs(vs - th)
  if config.spike_forward in (SpikeForward.MULTI_GE, SpikeForward.MULTI_POSITIVE):
    k = np.maximum(1.0, np.round(vs / th))
    d = np.minimum(d, np.abs(vs - k * th))
  return d.reshape(d.shape[0], -1).min(axis=1)


def make_batches(candidate: LayerCandidate, config: LIFConfig | None = None, grid: Grid = Grid()) -> list[Batch]:
  """The problems of every T: θ × v_reset × seeds cases each (θ and v_reset where the layer varies them),
  inputs resampled until the reference keeps its margin from the threshold."""
  config = config or candidate.config
  dtype = candidate.dtype
  eps = float(np.finfo(dtype).eps)
  base = {k: np.asarray(v, np.float64) for k, v in candidate.params._asdict().items()}
  thetas = grid.thetas if "theta" in candidate.varies else (float(np.mean(base["theta"])),)
  resets = grid.v_resets if "v_reset" in candidate.varies else (float(np.mean(base["v_reset"])),)
  seeds = grid.seeds
  batches = []
  for T in grid.t_values:
    rows = []
    for (ti, theta), (ri, v_reset), seed in itertools.product(enumerate(thetas), enumerate(resets), seeds):
      p = {**base, "theta": np.asarray(theta), "v_reset": np.asarray(v_reset)}
      rows.append((f"T={T} θ={theta} v_reset={v_reset} seed={seed}", p, np.random.default_rng([seed, T, ti, ri])))
    batches.append(_sample(candidate, config, T, rows, dtype, eps))
  return batches


def _sample(candidate, config, T, rows, dtype, eps) -> Batch:
  labels, xs, vs, is_, ps, as_, bs = [], [], [], [], [], [], []
  for label, p, rng in rows:
    mu = _steady_input(config, p)
    theta = float(np.mean(p["theta"]))
    floor = float(np.mean(p["v_reset"])) if config.leak is Leak.TOWARD_RESET else 0.0
    labels.append(label)
    xs.append(lambda rng=rng, mu=mu: mu + 0.8 * abs(mu) * rng.standard_normal((T, *SHAPE)))
    vs.append(lambda rng=rng, theta=theta, floor=floor: floor + (theta - floor) * 0.8 * rng.random(SHAPE)
              if "v" in candidate.takes_state else np.zeros(SHAPE))
    is_.append(lambda rng=rng, mu=mu: 0.3 * abs(mu) * rng.standard_normal(SHAPE)
               if config.synapse is not Synapse.NONE and "i" in candidate.takes_state else np.zeros(SHAPE))
    ps.append({k: np.broadcast_to(_round(v, dtype), SHAPE) for k, v in p.items()})
    as_.append(rng.standard_normal((T, *SHAPE)))
    bs.append(rng.standard_normal((T, *SHAPE)))
  C = len(rows)
  params = {k: np.stack([p[k] for p in ps]) for k in LIFParams._fields}
  x = np.stack([_round(f(), dtype) for f in xs])
  v = np.stack([_round(f(), dtype) for f in vs])
  i = np.stack([_round(f(), dtype) for f in is_])
  theta = params["theta"]
  beta = np.asarray(decay(jnp.asarray(params["beta"]), config.beta_map, jnp.asarray(params["dt"])))
  for _ in range(30):  # resample the cases whose membrane comes too close to a threshold
    pre = _pre_reset(config, candidate.surrogate, x, v, i, params)
    vmax = np.max(np.abs(pre.reshape(C, -1)), axis=1)
    leak = np.maximum(1e-3, 1.0 - np.max(np.abs(beta.reshape(C, -1)), axis=1))
    delta = 100 * eps * np.maximum(1.0, vmax) / leak
    bad = _margin(config, pre, v, theta) <= delta
    if not bad.any():
      break
    for k in np.flatnonzero(bad):
      x[k] = _round(xs[k](), dtype)
      v[k] = _round(vs[k](), dtype)
  a, b = np.stack(as_), np.stack(bs)
  return Batch(T, x, v, i, params, a, b, tuple(labels))


def tie_batch(candidate: LayerCandidate, config: LIFConfig | None = None) -> Batch | None:
  """One step with the reference's membrane exactly on θ = 1 (v_reset 0): the input found by stepping x
  one ulp at a time from the calibrated value until the reference's pre-activation is exactly θ
  (fire-from-previous layers: the initial membrane is θ itself). None where no such input is found."""
  config = config or candidate.config
  dtype = candidate.dtype
  base = {k: np.broadcast_to(_round(np.asarray(v, np.float64), dtype), SHAPE) for k, v in
          candidate.params._asdict().items()}
  if "theta" in candidate.varies:
    base["theta"] = np.ones(SHAPE)
  if "v_reset" in candidate.varies:
    base["v_reset"] = np.zeros(SHAPE)
  params = {k: v[None] for k, v in base.items()}
  theta = float(base["theta"].flat[0])
  zeros = np.zeros((1, *SHAPE))
  if config.fire_from is FireFrom.PREVIOUS or config.reset_when is not ResetWhen.IMMEDIATE:
    if "v" not in candidate.takes_state:
      return None
    v = np.full((1, *SHAPE), theta)
    return Batch(1, np.zeros((1, 1, *SHAPE)), v, zeros, params, np.ones((1, 1, *SHAPE)), np.ones((1, 1, *SHAPE)),
                 ("tie: v0 = θ",)) if config.fire_from is FireFrom.PREVIOUS else None
  def pre_at(x):
    return float(_pre_reset(config, candidate.surrogate, x, zeros, zeros, params).flat[0])

  x0 = float(_steady_input(config, {k: v for k, v in base.items()}))
  beta = float(np.mean(decay(jnp.asarray(base["beta"]), config.beta_map, jnp.asarray(base["dt"]))))
  x = np.full((1, 1, *SHAPE), _round(x0 / max(1e-3, 1.0 - beta), dtype))  # one step from v0 = 0
  for _ in range(3):  # a secant step in float64, then ulps
    pre, hi = pre_at(x), pre_at(x * 2)
    slope = (hi - pre) / float(x.flat[0]) if x.flat[0] else 0.0
    if slope == 0 or not np.isfinite(slope):
      return None
    x = _round(x + (theta - pre) / slope, dtype)
  for _ in range(64):
    pre = pre_at(x)
    if pre == theta:
      return Batch(1, x, zeros, zeros, params, np.ones((1, 1, *SHAPE)), np.ones((1, 1, *SHAPE)),
                   ("tie: membrane exactly θ",))
    x = np.nextafter(x.astype(dtype), np.asarray(np.inf if pre < theta else -np.inf, dtype)).astype(np.float64)
  return None


# -------------------------------------------------------------------------------------------------
# The context: the candidate's outputs (recorded), the reference's (computed here)
# -------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class LayerContext:
  candidate: LayerCandidate
  evaluator: LayerEvaluator
  grid: Grid = Grid()
  memo: dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def config(self) -> LIFConfig:
    return self.candidate.config

  @functools.cached_property
  def batches(self) -> list[Batch]:
    return make_batches(self.candidate, grid=self.grid)

  def longest(self, at_most: int = 20) -> Batch:
    """The batch of the longest T up to ``at_most`` (the learnable check and the finite differences)."""
    return max((b for b in self.batches if b.T <= at_most), key=lambda b: b.T, default=self.batches[0])

  @functools.cached_property
  def tie(self) -> Batch | None:
    return tie_batch(self.candidate)

  def reference(self, batch: Batch, config: LIFConfig | None = None, probe: str = "own") -> dict[str, Any]:
    config = config or self.config
    key = ("ref", id(batch), config, probe)
    if key not in self.memo:
      surrogate = self.candidate.surrogate if probe == "own" else _probe(probe)
      self.memo[key] = _evaluate(config, surrogate, batch.x, batch.v, batch.i, batch.params, batch.a, batch.b)
    return self.memo[key]

  def layer_params(self, batch: Batch, k: int) -> dict[str, np.ndarray]:
    """The parameters as the layer receives them: the candidate's shapes (scalars stay scalars)."""
    out = {}
    for name, value in self.candidate.params._asdict().items():
      shape = np.shape(value)
      out[name] = np.ascontiguousarray(np.reshape(batch.params[name][k], SHAPE)[(0,) * (len(SHAPE) - len(shape))]
                                       if len(shape) < len(SHAPE) else batch.params[name][k])
      if shape == ():
        out[name] = np.asarray(batch.params[name][k].flat[0])
    return out

  def layer(self, batch: Batch, k: int, probe: str = "own") -> tuple[np.ndarray, np.ndarray, str] | BaseException:
    key = ("fwd", id(batch), k, probe)
    if key not in self.memo:
      x, v, i, _, _, _ = batch.case(k)
      try:
        self.memo[key] = self.evaluator.forward(probe, x, v, i, self.layer_params(batch, k))
      except Unrecorded:
        raise
      except BaseException as exc:  # the candidate's exception is its result
        self.memo[key] = exc
    return self.memo[key]

  def layer_vjp(self, batch: Batch, k: int, probe: str = "own") -> dict[str, np.ndarray] | BaseException:
    key = ("vjp", id(batch), k, probe)
    if key not in self.memo:
      x, v, i, _, a, b = batch.case(k)
      try:
        self.memo[key] = self.evaluator.vjp(probe, x, v, i, self.layer_params(batch, k), a, b)
      except Unrecorded:
        raise
      except BaseException as exc:
        self.memo[key] = exc
    return self.memo[key]

  @property
  def eps(self) -> float:
    return float(np.finfo(self.candidate.dtype).eps)

  # -- the settings search, shared by the checks -----------------------------------------------
  def fingerprint(self) -> dict[str, Any]:
    if "fingerprint" not in self.memo:
      self.memo["fingerprint"] = _fingerprint(self)
    return self.memo["fingerprint"]


# -------------------------------------------------------------------------------------------------
# Comparisons
# -------------------------------------------------------------------------------------------------


def _growth(gain: float, T: int) -> float:
  return float(min(1e6, max(1.0, gain) ** T))


def membrane_rtol(eps: float, T: int, gain: float) -> float:
  return 16.0 * T * eps * _growth(gain, T)


def _close(got: np.ndarray, ref: np.ndarray, rtol: float, size: np.ndarray | None = None) -> tuple[bool, float, int]:
  """|Δ| ≤ rtol·‖size‖∞ + rtol·|size| everywhere and ‖Δ‖₂ ≤ rtol·‖size‖₂: (ok, worst |Δ|/bound, its flat index).

  ``size`` is |ref| by default; for a gradient summed over neurons (a scalar parameter) it is the sum of
  the magnitudes of its terms, since the sum's rounding is relative to them and not to what is left after
  they cancel."""
  got = np.asarray(got, np.float64)
  ref = np.asarray(ref, np.float64)
  if got.shape != ref.shape:
    return False, np.inf, 0
  size = np.abs(ref) if size is None else np.asarray(size, np.float64)
  delta = np.abs(got - ref)
  bound = rtol * np.max(size, initial=0.0) + rtol * size + 1e-300
  ratio = np.where(np.isfinite(delta), delta / bound, np.inf)
  worst = int(np.argmax(ratio)) if ratio.size else 0
  norm = np.linalg.norm(size)
  global_ok = not np.isfinite(norm) or norm == 0 or np.linalg.norm(np.nan_to_num(delta, nan=np.inf)) <= rtol * norm
  ok = bool(np.all(ratio <= 1.0)) and global_ok
  return ok, float(ratio.flat[worst]) if ratio.size else 0.0, worst


def _reduce_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
  """A per-neuron reference gradient summed over the axes a scalar (or per-neuron) parameter broadcast over."""
  g = np.asarray(g)
  while g.ndim > len(shape):
    g = g.sum(axis=0)
  for ax, (n, m) in enumerate(zip(g.shape, shape, strict=True)):
    if m == 1 and n != 1:
      g = g.sum(axis=ax, keepdims=True)
  return g


def _cond(ctx: LayerContext, m: np.ndarray, theta: float, probe: str) -> float:
  width = ctx.candidate.surrogate.length_scale() if probe == "own" else 1.0
  return 1.0 + (float(np.max(np.abs(m), initial=0.0)) + theta) / (width * min(1.0, theta))


@dataclasses.dataclass
class Mismatch:
  case: str
  what: str
  message: str
  worst: float = 0.0


def _compare_forward(ctx: LayerContext, batch: Batch, k: int, ref: Mapping[str, Any], config: LIFConfig,
                     probe: str = "own") -> Mismatch | None:
  got = ctx.layer(batch, k, probe)
  label = batch.labels[k]
  if isinstance(got, BaseException):
    return Mismatch(label, "error", f"the layer raised {describe(got)}", np.inf)
  s, m, _ = got
  rs, rm = ref["s"][k], ref["m"][k]
  if not np.array_equal(s, rs):
    t, *idx = np.argwhere(s != rs)[0]
    return Mismatch(label, "spikes", f"spikes differ at step {t} neuron {tuple(idx)}: expected {rs[(t, *idx)]!r}, "
                    f"got {s[(t, *idx)]!r} ({int(np.sum(s != rs))} of {s.size} differ)", np.inf)
  rtol = membrane_rtol(ctx.eps, batch.T, float(ref["gain"][k]))
  ok, worst, at = _close(m, rm, rtol)
  if not ok:
    t, *idx = np.unravel_index(at, m.shape)
    return Mismatch(label, "membrane", f"membrane differs at step {t} neuron {tuple(idx)}: expected "
                    f"{rm[(t, *idx)]!r}, got {m[(t, *idx)]!r}; tolerance rtol {rtol:.3g} (16·T·eps·G^T)", worst)
  return None


def _compare_gradient(ctx: LayerContext, batch: Batch, k: int, ref: Mapping[str, Any], probe: str = "own",
                      names: Sequence[str] | None = None) -> Mismatch | None:
  got = ctx.layer_vjp(batch, k, probe)
  label = batch.labels[k]
  if isinstance(got, BaseException):
    return Mismatch(label, "error", f"the layer's gradient raised {describe(got)}", np.inf)
  theta = float(np.mean(batch.params["theta"][k]))
  rtol = membrane_rtol(ctx.eps, batch.T, float(ref["gain"][k])) * _cond(ctx, ref["m"][k], theta, probe)
  for name in names or GRADIENT_NAMES:
    if name not in got:
      if name in ("x", "v") and np.any(ref["grads"][name][k] != 0):
        return Mismatch(label, name, f"no gradient with respect to {name}", np.inf)
      continue
    want = _reduce_to(ref["grads"][name][k], np.shape(got[name]))
    if np.shape(got[name]) != np.shape(want):
      return Mismatch(label, name, f"dL/d{name} has shape {np.shape(got[name])}, expected {np.shape(want)}", np.inf)
    ok, worst, at = _close(got[name], want, rtol, _reduce_to(np.abs(ref["grads"][name][k]), np.shape(want)))
    if not ok:
      g, w = np.ravel(got[name]), np.ravel(want)
      return Mismatch(label, name, f"dL/d{name} differs: expected {w[at]!r}, got {g[at]!r} (element {at}); "
                      f"tolerance rtol {rtol:.3g} (16·T·eps·G^T times the surrogate's condition)", worst)
  return None


# -------------------------------------------------------------------------------------------------
# The settings search
# -------------------------------------------------------------------------------------------------

#: The fields a second variation is tried on (those a reset or firing difference involves).
_PAIR_FIELDS = ("reset", "reset_when", "reset_grad", "membrane_out", "fire_from", "surrogate_arg", "spike_forward",
                "theta_grad", "synapse", "gain", "leak")
SEARCH_LIMIT = 400


def _variants(config: LIFConfig) -> list[LIFConfig]:
  fields = [f.name for f in dataclasses.fields(LIFConfig)]
  singles = [dataclasses.replace(config, **{f: v}) for f in fields for v in type(getattr(config, f))
             if v != getattr(config, f)]
  pairs = [dataclasses.replace(config, **{f1: v1, f2: v2})
           for f1, f2 in itertools.combinations(_PAIR_FIELDS, 2)
           for v1 in type(getattr(config, f1)) if v1 != getattr(config, f1)
           for v2 in type(getattr(config, f2)) if v2 != getattr(config, f2)]
  return singles + pairs[:SEARCH_LIMIT - len(singles)]


def _matches(ctx: LayerContext, config: LIFConfig, batches: Sequence[Batch], gradient: bool) -> bool:
  for batch in batches:
    try:
      ref = ctx.reference(batch, config)
    except Exception:  # a setting the reference cannot run at these parameters
      return False
    for k in range(batch.size):
      if _compare_forward(ctx, batch, k, ref, config) is not None:
        return False
      if gradient and batch.T > 1 and _compare_gradient(ctx, batch, k, ref) is not None:
        return False
  return True


def _screen(ctx: LayerContext, configs: Sequence[LIFConfig], batches: Sequence[Batch]) -> list[bool]:
  """Whether each setting's forward can reproduce the layer's on every case: a necessary condition of
  :func:`_matches`, for many settings at once (one vmapped forward per SCREEN_CHUNK settings and batch).

  The same comparison as the forward check (spikes exactly equal, membrane by :func:`_close`), with the
  membrane tolerance at its largest (the gain's growth at its cap, 1e6): a setting the full comparison
  accepts is never screened out, whatever its gain; a setting screened in is then compared in full. A
  layer that raised on a case, or a screen that cannot run, keeps every setting for the full comparison."""
  keep = [True] * len(configs)
  for batch in batches:
    outs = [ctx.layer(batch, k) for k in range(batch.size)]
    if any(isinstance(o, BaseException) for o in outs):
      continue
    try:
      spikes, membranes = _forward(configs, ctx.candidate.surrogate, batch.x, batch.v, batch.i, batch.params)
    except Exception:  # a setting the reference cannot run at these parameters: left to the full comparison
      continue
    rtol = membrane_rtol(ctx.eps, batch.T, np.inf)
    for j in range(len(configs)):
      keep[j] = keep[j] and all(np.array_equal(s, spikes[j, k]) and _close(m, membranes[j, k], rtol)[0]
                                for k, (s, m, _) in enumerate(outs))
  return keep


def _fingerprint(ctx: LayerContext) -> dict[str, Any]:
  """The config nearest the documented one that reproduces the layer (forward and gradient): the variants
  screened by their forward (:func:`_screen`) a distance at a time, the ones screened in compared in full."""
  documented = ctx.config
  batches = [b for b in ctx.batches if b.T in SEARCH_T]
  if ctx.tie is not None:
    batches = [*batches, ctx.tie]
  if _matches(ctx, documented, batches, gradient=True):
    return {"implemented": documented, "matching": [documented], "searched": 1}
  start = time.perf_counter()
  variants = _variants(documented)
  screened: dict[LIFConfig, bool] = {}
  found: list[LIFConfig] = []
  searched = 0
  for config in variants:
    if found and len(documented.differs(config)) > len(documented.differs(found[0])):
      break
    searched += 1
    if config not in screened:  # this variant's distance from the documented config, screened at once
      level = [c for c in variants if len(documented.differs(c)) == len(documented.differs(config))]
      screened.update(zip(level, _screen(ctx, level, batches), strict=True))
    if screened[config] and _matches(ctx, config, batches, gradient=True):
      found.append(config)
  return {"implemented": found[0] if found else None, "matching": found, "searched": searched,
          "search_seconds": round(time.perf_counter() - start, 2)}


def _config_json(config: LIFConfig | None) -> dict[str, str] | None:
  if config is None:
    return None
  return config.settings()


def _detail(ctx: LayerContext, search: bool) -> dict[str, Any]:
  """The fields every layer result carries: documented, implemented, differs, reset_gain, dtype."""
  documented = ctx.config
  out: dict[str, Any] = {"documented": _config_json(documented), "dtype": ctx.candidate.dtype,
                         "citations": dict(ctx.candidate.citations)}
  implemented: LIFConfig | None = documented
  if search:
    fp = ctx.fingerprint()
    implemented = fp["implemented"]
    out["implemented"] = _config_json(implemented)
    out["matching"] = [_config_json(c) for c in fp["matching"]]
    out["searched"] = fp["searched"]
    out["differs"] = {k: list(v) for k, v in documented.differs(implemented).items()} if implemented else None
    out["matching_differs"] = [{k: list(v) for k, v in documented.differs(c).items()} for c in fp["matching"]]
  else:
    out["implemented"] = out["documented"]
    out["differs"] = {}
  gains = [float(np.max(ctx.reference(b, implemented or documented)["gain"])) for b in ctx.batches]
  out["reset_gain"] = max(gains) if gains else None
  return out


def _verdict(ctx: LayerContext, what: str, mismatch: Mismatch) -> Outcome:
  detail = _detail(ctx, search=mismatch.what != "error")
  if mismatch.what == "error":
    return failed(f"{ctx.candidate.label}: {what}: {mismatch.case}: {mismatch.message}", **detail)
  implemented, differs = detail["implemented"], detail["differs"]
  if implemented is None:
    finding = "matches no setting of the grid (searched " + str(detail["searched"]) + ")"
  elif not differs:
    finding = "the documented setting reproduces it with its own surrogate, not under this probe"
  else:
    def settings(diff: Mapping[str, Any], side: int) -> str:
      return ", ".join(f"{k}={v[side]}" for k, v in diff.items())

    alternatives = [settings(m, 1) for m in detail["matching_differs"][1:]]
    finding = "implements " + settings(differs, 1) + \
        "".join(f" (equivalently {a})" for a in alternatives) + "; documented " + settings(differs, 0)
  return failed(f"{ctx.candidate.label}: {what}: {finding}. First difference at {mismatch.case}: {mismatch.message}",
                **detail)


# -------------------------------------------------------------------------------------------------
# The checks
# -------------------------------------------------------------------------------------------------


def layer_forward(ctx: LayerContext) -> Outcome:
  """Spikes exact and membrane within 16·T·eps·G^T of the reference at the documented settings."""
  cases = [*ctx.batches, *([ctx.tie] if ctx.tie is not None else [])]
  count = 0
  for batch in cases:
    ref = ctx.reference(batch)
    for k in range(batch.size):
      mismatch = _compare_forward(ctx, batch, k, ref, ctx.config)
      if mismatch is not None:
        return _verdict(ctx, "forward", mismatch)
      count += 1
  return passed(f"{ctx.candidate.label}: spikes equal and membrane within 16·T·eps·G^T on {count} cases"
                f"{' (tie case included)' if ctx.tie is not None else ' (no exact tie input found)'}; "
                f"eps of {ctx.candidate.dtype}",
                **_detail(ctx, search=False))


def layer_gradient(ctx: LayerContext) -> Outcome:
  """One VJP of Σ a·spikes + b·membrane against the reference's, in x, the initial state and every parameter."""
  count = 0
  for batch in ctx.batches:
    ref = ctx.reference(batch)
    for k in range(batch.size):
      mismatch = _compare_forward(ctx, batch, k, ref, ctx.config) or _compare_gradient(ctx, batch, k, ref)
      if mismatch is not None:
        return _verdict(ctx, "gradient", mismatch)
      count += 1
  return passed(f"{ctx.candidate.label}: the VJP matches the reference's on {count} cases; eps of "
                f"{ctx.candidate.dtype}", **_detail(ctx, False))


def layer_learnable(ctx: LayerContext) -> Outcome:
  """The declared-learnable parameters receive a gradient (nonzero where the reference's is)."""
  batch = ctx.longest()
  ref = ctx.reference(batch)
  declared = set(ctx.candidate.learnable)
  received: set[str] = set()
  missing: list[str] = []
  for k in range(batch.size):
    got = ctx.layer_vjp(batch, k)
    if isinstance(got, BaseException):
      return failed(f"{ctx.candidate.label}: learnable: the layer's gradient raised {describe(got)}",
                    **_detail(ctx, False))
    for name in LIFParams._fields:
      g = got.get(name)
      if g is not None and np.any(np.asarray(g) != 0):
        received.add(name)
    for name in declared:
      if np.any(ref["grads"][name][k] != 0) and (got.get(name) is None or not np.any(np.asarray(got[name]) != 0)):
        missing.append(name)
  detail = {**_detail(ctx, False), "declared": sorted(declared), "received": sorted(received)}
  if missing:
    return failed(f"{ctx.candidate.label}: declared learnable but no gradient: {sorted(set(missing))}", **detail)
  if ctx.candidate.gradients is not None and received - declared:
    return failed(f"{ctx.candidate.label}: receives a gradient but is not declared learnable: "
                  f"{sorted(received - declared)}", **detail)
  return passed(f"{ctx.candidate.label}: learnable {sorted(declared)}; gradients received {sorted(received)}", **detail)


def layer_probes(ctx: LayerContext) -> Outcome:
  """Probe surrogates (g ≡ 0, g ≡ c twice, asymmetric g) against the reference, and FD of the hard forward at g ≡ 0."""
  if ctx.candidate.with_surrogate is None:
    return skipped(f"{ctx.candidate.label}: the layer takes no custom surrogate (no with_surrogate)",
                   **_detail(ctx, False))
  batches = [b for b in ctx.batches if b.T in PROBE_T]
  for probe in PROBE_NAMES:
    for batch in batches:
      ref = ctx.reference(batch, probe=probe)
      for k in range(batch.size):
        mismatch = _compare_forward(ctx, batch, k, ref, ctx.config, probe) or \
            _compare_gradient(ctx, batch, k, ref, probe)
        if mismatch is not None:
          mismatch.case += f" probe g={probe}"
          return _verdict(ctx, f"probe g={probe}", mismatch)
  fd = _frozen_fd(ctx, ctx.longest())
  if fd is not None:
    return failed(f"{ctx.candidate.label}: probe g=zero: the layer's gradient is not the derivative of its own hard "
                  f"forward: {fd}", **_detail(ctx, False))
  return passed(f"{ctx.candidate.label}: probes {', '.join(PROBE_NAMES)} match the reference; at g ≡ 0 the gradient "
                f"is the finite difference of the layer's own forward (h = {FD_STEP}, rtol {FD_RTOL})",
                **_detail(ctx, False))


def _frozen_fd(ctx: LayerContext, batch: Batch) -> str | None:
  """Central differences of the layer's own loss (g ≡ 0) along one random direction per argument."""
  if ctx.candidate.dtype != "float64":
    return None
  for k in range(min(batch.size, 3)):
    x, v, i, _, a, b = batch.case(k)
    params = ctx.layer_params(batch, k)
    grads = ctx.layer_vjp(batch, k, "zero")
    if isinstance(grads, BaseException):
      return f"the gradient raised {describe(grads)}"
    base = ctx.evaluator.forward("zero", x, v, i, params)
    rng = np.random.default_rng(k)
    for name in ("x", "v", *sorted(set(grads) & set(LIFParams._fields))):
      value = {"x": x, "v": v, "i": i}.get(name, params.get(name))
      d = rng.standard_normal(np.shape(value))
      h = FD_STEP * max(1.0, float(np.max(np.abs(value))))

      def at(step: float, name=name, value=value, d=d):
        moved = value + step * d
        xs = moved if name == "x" else x
        vs = moved if name == "v" else v
        ps = {**params, name: moved} if name in params else params
        return ctx.evaluator.forward("zero", xs, vs, i, ps)

      outs = [at(step) for step in (h, -h, h / 2, -h / 2)]
      if not all(np.array_equal(o[0], base[0]) for o in outs):
        continue  # the pattern moved: no derivative to compare along this direction
      loss = lambda out: float(np.sum(a * out[0]) + np.sum(b * out[1]))
      # Richardson: (4·D(h/2) − D(h))/3 cancels the h² term of the central difference (β enters as β^t)
      wide = (loss(outs[0]) - loss(outs[1])) / (2 * h)
      narrow = (loss(outs[2]) - loss(outs[3])) / h
      fd = (4 * narrow - wide) / 3
      got = float(np.sum(np.asarray(grads.get(name, 0.0)) * d))
      scale = max(abs(fd), abs(got), abs(loss(base)) * 1e-3, 1e-12)
      if abs(fd - got) > FD_RTOL * scale:
        return f"{batch.labels[k]}: d/d{name} along a random direction: gradient {got!r}, finite difference {fd!r}"
  return None


#: The layer checks in the order they run (named in :data:`verification.checks.LAYER_CHECK_NAMES`).
LAYER_CHECKS: dict[str, Callable[[LayerContext], Outcome]] = {name: globals()[name] for name in LAYER_CHECK_NAMES}


def layer_context(candidate: LayerCandidate, tape: Any = None, grid: Grid = Grid()) -> LayerContext:
  return LayerContext(candidate, LayerEvaluator(candidate, tape), grid)


def run_layer_check(ctx: LayerContext, check: str) -> Result:
  """One layer check as a Result: what the candidate does (raise, garbage) is a failing result."""
  c = ctx.candidate
  start = time.perf_counter()
  try:
    with np.errstate(all="ignore"):
      outcome = LAYER_CHECKS[check](ctx)
  except Unrecorded as exc:
    outcome = errored(str(exc))
  except BaseException as exc:  # the harness's own failure on this candidate: an error, never a crash
    outcome = errored(f"{c.label}: {check} could not be carried out: {describe(exc)}")
  params = {**c.params_json}
  return outcome.result(c.label, c.surrogate.name, params, check, time.perf_counter() - start,
                        {**dict(c.notes), "kind": "layer"})


def check_layers(candidates: Sequence[Any], checks: Sequence[str] | None = None, grid: Grid = Grid(),
                 timeout: float | None = None) -> list[Result]:
  """Every layer check on every candidate, in this process (the API's and tests' in-process form).

  ``timeout``: seconds per check, by ``signal.alarm`` where this is the main thread (a candidate looping in
  Python is stopped and fails the check; one stuck in native code is stopped only by the worker processes)."""
  from verification.core.layer import as_layer

  out = []
  for obj in candidates:
    c = as_layer(obj)
    ctx = layer_context(c, grid=grid)
    for check in checks or LAYER_CHECKS:
      with _alarm(timeout, f"{c.label}: {check} ran past {timeout} s"):
        out.append(run_layer_check(ctx, check))
  return out


class _alarm:
  def __init__(self, seconds: float | None, message: str):
    self.seconds, self.message, self.old = seconds, message, None

  def _fire(self, signum, frame):
    raise TimeoutError(self.message)

  def __enter__(self) -> None:
    import signal
    import threading

    if self.seconds and threading.current_thread() is threading.main_thread():
      self.old = signal.signal(signal.SIGALRM, self._fire)
      signal.setitimer(signal.ITIMER_REAL, self.seconds)

  def __exit__(self, *exc: Any) -> None:
    import signal

    if self.old is not None:
      signal.setitimer(signal.ITIMER_REAL, 0)
      signal.signal(signal.SIGALRM, self.old)


__all__ = ["LAYER_CHECKS", "Grid", "LayerContext", "check_layers", "layer_context", "make_batches", "run_layer_check"]
