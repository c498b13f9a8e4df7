"""The reference leaky integrate-and-fire layer: one pure JAX function over T steps.

``lif_scan(x, state0, params, config, surrogate)`` runs the step of ``surrogates._lif_config`` (its
module docstring lists the order of the settings) with ``lax.scan``. It is differentiable in the input,
the initial state and every parameter; the spike is the reference surrogate's spike function, so its
custom JVP gives g, and multi-spike forwards keep that backward (the count's value, g as derivative).

The previous spike, where a setting needs it (a reset at the next step), is recomputed from the carried
membrane with the same forward and the same gradient setting: the state is only ``(v, i)``. For a layer
that fires from the current membrane this is the spike it emitted at t − 1; a library that carries the
spike as state and recomputes nothing (snnax) has the same values whenever the initial spike it is given
is H(v₀ − θ).

A setting may also be given as an integer code (:class:`DynamicConfig`, :func:`config_codes`): every
option is then computed and the coded one selected, so one compiled program serves the whole grid (the
settings search); its values and gradients are the static setting's.

``smooth=True`` replaces the step H by the surrogate's primitive P (every forward, multi-spike included):
a differentiable function whose autodiff is the same wiring, which finite differences can check.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from surrogates._core import Surrogate
from surrogates._lif_config import (
  PARAMETERS,
  BetaMap,
  FireFrom,
  Gain,
  Leak,
  LIFConfig,
  MembraneOut,
  Reset,
  ResetGrad,
  ResetWhen,
  SpikeForward,
  SurrogateArg,
  Synapse,
  ThetaGrad,
)

Array = jax.Array


class LIFParams(NamedTuple):
  """A layer's parameters in the reference's names (a pytree; scalars or per-neuron arrays that
  broadcast against one step of the input). ``beta`` and ``alpha_syn`` are raw: the library's own
  parametrisation, mapped by the config's ``BetaMap`` (τ, w, τ⁻¹, or β itself)."""
  beta: Any = 0.9
  theta: Any = 1.0
  v_reset: Any = 0.0
  v_leak: Any = 0.0
  gain: Any = 1.0
  bias: Any = 0.0
  g_s: Any = 1.0
  alpha_syn: Any = 0.8
  dt: Any = 1.0


assert LIFParams._fields == PARAMETERS


class LIFState(NamedTuple):
  """The carried state: the membrane ``v`` and the synaptic current ``i`` (unused without a synapse)."""
  v: Any = 0.0
  i: Any = 0.0


def _choose(setting: Any, options: dict[Any, Callable[[], Any]]) -> Any:
  """The option of a setting: a static member calls its function only; a traced code (an integer
  array, :func:`config_codes`) computes every option and selects (``jnp.where``: the selected value and
  its gradient exactly, zero cotangent to the others)."""
  if isinstance(setting, enum.Enum):
    return options[setting]()
  out = None
  for member, fn in options.items():
    value = fn()
    out = value if out is None else jnp.where(setting == _code(member), value, out)
  return out


def _code(member: enum.Enum) -> int:
  return list(type(member)).index(member)


class DynamicConfig(NamedTuple):
  """A LIFConfig as integer codes (each a member's index in its enum): one compiled program serves every
  setting (the settings search). Build with :func:`config_codes`."""
  synapse: Any
  leak: Any
  beta_map: Any
  gain: Any
  fire_from: Any
  surrogate_arg: Any
  spike_forward: Any
  reset: Any
  reset_when: Any
  reset_grad: Any
  membrane_out: Any
  theta_grad: Any


def config_codes(config: LIFConfig) -> DynamicConfig:
  """The integer codes of a config (stack several with ``jnp.stack`` per field to vmap over settings)."""
  return DynamicConfig(*(jnp.asarray(_code(getattr(config, f.name)), jnp.int32) for f in dataclasses.fields(config)))


assert DynamicConfig._fields == tuple(f.name for f in dataclasses.fields(LIFConfig))


def _is(setting: Any, member: enum.Enum) -> Any:
  """Whether a setting is ``member``: a bool for a static setting, a traced bool for a code."""
  return setting is member if isinstance(setting, enum.Enum) else setting == _code(member)


def decay(raw: Any, beta_map: Any, dt: Any) -> Array:
  """A decay factor from its raw parameter under ``beta_map`` (β from β, τ, w or τ⁻¹)."""
  return _choose(beta_map, {
    BetaMap.IDENTITY: lambda: raw + 0.0,
    BetaMap.CLAMP_0_1: lambda: jnp.clip(raw, 0.0, 1.0),
    BetaMap.CLAMP_HALF_1: lambda: jnp.clip(raw, 0.5, 1.0),
    BetaMap.ONE_MINUS_INV_TAU: lambda: 1.0 - 1.0 / raw,
    BetaMap.SIGMOID: lambda: 1.0 - jax.nn.sigmoid(raw),
    BetaMap.ONE_MINUS_DT_OVER_TAU: lambda: 1.0 - dt * raw,
    BetaMap.EXP_MINUS_INV_TAU: lambda: jnp.exp(-1.0 / raw),
    BetaMap.EXP_MINUS_DT_OVER_TAU: lambda: jnp.exp(-dt / raw),
  })


def _argument(v: Array, p: LIFParams, config: Any) -> Array:
  """What the spike function is applied to (θ held constant where the spike passes it no gradient)."""
  theta = _choose(config.theta_grad, {ThetaGrad.AUTODIFF: lambda: p.theta,
                                      ThetaGrad.NONE: lambda: lax.stop_gradient(p.theta)})
  return _choose(config.surrogate_arg, {
    SurrogateArg.V_MINUS_THETA: lambda: v - theta,
    SurrogateArg.V_MINUS_THETA_OVER_THETA: lambda: (v - theta) / theta,
    SurrogateArg.V_OVER_THETA: lambda: v / theta - 1.0,
    SurrogateArg.V_MINUS_THETA_OVER_RANGE: lambda: (v - theta) / (theta - p.v_reset),
  })


def _count(v: Array, u: Array, p: LIFParams, config: Any, surrogate: Any, smooth: bool) -> Array:
  """The spike count n (before g_s): its forward as the config says, its derivative in u the surrogate's g."""
  if smooth:
    return surrogate.surrogate_fun(u)
  s = surrogate(u)  # H(u) with H(0) = 1, derivative g(u)
  theta = lax.stop_gradient(p.theta)
  w = lax.stop_gradient(v)

  def shifted(n):  # the value n, the derivative of s
    return s + lax.stop_gradient(jnp.asarray(n, s.dtype) - s)

  return _choose(config.spike_forward, {
    SpikeForward.GE: lambda: s,
    SpikeForward.GT: lambda: s - lax.stop_gradient(jnp.where(u == 0, 1.0, 0.0).astype(s.dtype)),
    SpikeForward.HALF: lambda: s - lax.stop_gradient(jnp.where(u == 0, 0.5, 0.0).astype(s.dtype)),
    SpikeForward.MULTI_GE: lambda: shifted(jnp.where(w >= theta, jnp.floor(w / theta), 0.0)),
    SpikeForward.MULTI_POSITIVE: lambda: shifted(jnp.where(w > 0, jnp.floor(w / theta), 0.0)),
  })


def _fire(v: Array, p: LIFParams, config: Any, surrogate: Any, smooth: bool) -> Array:
  """The spike count from membrane v, with the reset-gradient setting applied where it cuts the spike."""
  n = _count(v, _argument(v, p, config), p, config, surrogate, smooth)
  return _choose(config.reset_grad, {ResetGrad.OUTPUT_DETACHED: lambda: lax.stop_gradient(n),
                                     ResetGrad.ATTACHED: lambda: n, ResetGrad.DETACHED: lambda: n,
                                     ResetGrad.HARD_IDENTITY: lambda: n})


def _reset(v: Array, n: Array, beta: Array, p: LIFParams, config: Any) -> Array:
  """The membrane v after a spike count n (the reset's gradient setting applied to n and v here)."""
  rg = config.reset_grad
  n = _choose(rg, {ResetGrad.DETACHED: lambda: lax.stop_gradient(n), ResetGrad.ATTACHED: lambda: n,
                   ResetGrad.HARD_IDENTITY: lambda: n, ResetGrad.OUTPUT_DETACHED: lambda: n})
  held = _choose(rg, {ResetGrad.HARD_IDENTITY: lambda: lax.stop_gradient(v), ResetGrad.ATTACHED: lambda: v,
                      ResetGrad.DETACHED: lambda: v, ResetGrad.OUTPUT_DETACHED: lambda: v})
  return _choose(config.reset, {
    Reset.SUBTRACT_THETA: lambda: v - n * p.theta,
    Reset.SUBTRACT_RANGE: lambda: v - n * (p.theta - p.v_reset),
    Reset.SUBTRACT_ONE: lambda: v - n,
    Reset.SUBTRACT_BETA_THETA: lambda: v - n * beta * p.theta,
    Reset.TO_VALUE: lambda: v - n * (held - p.v_reset),
    Reset.TO_ZERO: lambda: v - n * held,
    Reset.NONE: lambda: v + 0.0 * n,
  })


def _synapse(i: Array, x: Array, alpha: Array, synapse: Any) -> tuple[Array, Array]:
  """(the current this step integrates, the carried current)."""
  used = _choose(synapse, {Synapse.NONE: lambda: x, Synapse.ADD_THEN_DECAY: lambda: i + x,
                           Synapse.DECAY_SUM: lambda: alpha * (i + x), Synapse.LAGGED: lambda: i})
  carried = _choose(synapse, {Synapse.NONE: lambda: i, Synapse.ADD_THEN_DECAY: lambda: alpha * (i + x),
                              Synapse.DECAY_SUM: lambda: alpha * (i + x),
                              Synapse.LAGGED: lambda: alpha * i + (1.0 - alpha) * x})
  return used, carried


def _gain(beta: Array, p: LIFParams, gain: Any) -> Any:
  return _choose(gain, {Gain.ONE: lambda: jnp.ones_like(beta), Gain.PARAM: lambda: p.gain + 0.0 * beta,
                        Gain.ONE_MINUS_BETA: lambda: 1.0 - beta,
                        Gain.PARAM_ONE_MINUS_BETA: lambda: p.gain * (1.0 - beta)})


def _leak(v: Array, beta: Array, p: LIFParams, leak: Any) -> Array:
  return _choose(leak, {Leak.MULTIPLY: lambda: beta * v,
                        Leak.TOWARD_RESET: lambda: v + (p.v_reset - v) * (1.0 - beta),
                        Leak.TOWARD_LEAK: lambda: v + (p.v_leak - v) * (1.0 - beta)})


def lif_step(
    state: LIFState, x: Array, params: LIFParams, config: LIFConfig | DynamicConfig, surrogate: Any,
    smooth: bool = False,
) -> tuple[LIFState, tuple[Array, Array]]:
  """One time step: (the new state, (the output spike g_s·n, the output membrane)). ``config`` is a
  LIFConfig (static) or a DynamicConfig of codes (traced)."""
  p = params
  beta = decay(p.beta, config.beta_map, p.dt)
  v_prev = state.v
  current, i_next = _synapse(state.i, x, decay(p.alpha_syn, config.beta_map, p.dt), config.synapse)
  when, fire_from = config.reset_when, config.fire_from
  needs_previous = not (_is(when, ResetWhen.IMMEDIATE) and _is(fire_from, FireFrom.CURRENT)) \
      if isinstance(when, enum.Enum) and isinstance(fire_from, enum.Enum) else True
  previous = _fire(v_prev, p, config, surrogate, smooth) if needs_previous else None  # the previous membrane's spike
  v = v_prev
  if needs_previous:
    v = _choose(when, {ResetWhen.NEXT_BEFORE_LEAK: lambda: _reset(v_prev, previous, beta, p, config),
                       ResetWhen.IMMEDIATE: lambda: v_prev, ResetWhen.NEXT_AFTER_LEAK: lambda: v_prev})
  v = _leak(v, beta, p, config.leak) + _gain(beta, p, config.gain) * current + p.bias
  if needs_previous:
    w = v
    v = _choose(when, {ResetWhen.NEXT_AFTER_LEAK: lambda: _reset(w, previous, beta, p, config),
                       ResetWhen.IMMEDIATE: lambda: w, ResetWhen.NEXT_BEFORE_LEAK: lambda: w})
  pre = v
  n = _choose(fire_from, {FireFrom.PREVIOUS: lambda: previous,
                          FireFrom.CURRENT: lambda: _fire(pre, p, config, surrogate, smooth)})
  v = _choose(when, {ResetWhen.IMMEDIATE: lambda: _reset(pre, n, beta, p, config),
                     ResetWhen.NEXT_BEFORE_LEAK: lambda: pre, ResetWhen.NEXT_AFTER_LEAK: lambda: pre})
  post = v
  out = _choose(config.membrane_out, {MembraneOut.PRE_RESET: lambda: pre, MembraneOut.POST_RESET: lambda: post})
  return LIFState(v, i_next), (p.g_s * n, out)


def lif_scan(
    x: Any,
    state0: LIFState,
    params: LIFParams,
    config: LIFConfig,
    surrogate: Surrogate,
    smooth: bool = False,
) -> tuple[Array, Array, LIFState]:
  """The layer over ``x[T, ...]``: ``(spikes[T, ...], membrane[T, ...], final_state)``.

  ``state0`` and ``params`` broadcast against one step ``x[t]``; ``config`` is static (hashable), so
  ``jax.jit(lif_scan, static_argnames=("config", "smooth"))`` compiles one program per setting with the
  parameters and the surrogate's parameters as arguments. Example::

      import surrogates
      from surrogates.lif import LIFConfig, LIFParams, LIFState, lif_scan
      spikes, v, final = lif_scan(x, LIFState(v=0.0), LIFParams(beta=0.9), LIFConfig(),
                                  surrogates.Sigmoid(alpha=4.0))
  """
  x = jnp.asarray(x)
  shape, dtype = x.shape[1:], x.dtype
  cast = lambda a: jnp.broadcast_to(jnp.asarray(a, dtype), shape)
  state0 = LIFState(cast(state0.v), cast(state0.i))
  params = LIFParams(*(jnp.asarray(a, dtype) for a in params))

  def body(state, xt):
    return lif_step(state, xt, params, config, surrogate, smooth)

  final, (spikes, membrane) = lax.scan(body, state0, x)
  return spikes, membrane, final


def reset_gain(
    x: Any, state0: LIFState, params: LIFParams, config: LIFConfig, surrogate: Surrogate,
) -> Array:
  """The per-step membrane gain ∂v_t/∂v_{t−1} (the current held), ``[T, ...]``: β for a detached reset,
  β(1 − θκg) for an attached subtract reset. Its maximum magnitude is the layer's reset gain.

  Every neuron is independent, so the derivative is the tangent of v_t for a unit tangent on v_{t−1}.
  """
  x = jnp.asarray(x)
  shape, dtype = x.shape[1:], x.dtype
  state0 = LIFState(*(jnp.broadcast_to(jnp.asarray(a, dtype), shape) for a in state0))
  params = LIFParams(*(jnp.asarray(a, dtype) for a in params))

  def body(state, xt):
    step = lambda v: lif_step(LIFState(v, state.i), xt, params, config, surrogate)[0].v
    _, dv = jax.jvp(step, (state.v,), (jnp.ones_like(state.v),))
    nxt, _ = lif_step(state, xt, params, config, surrogate)
    return nxt, dv

  _, gains = lax.scan(body, state0, x)
  return gains


__all__ = ["DynamicConfig", "LIFConfig", "LIFParams", "LIFState", "config_codes", "decay", "lif_scan", "lif_step",
           "reset_gain"]
