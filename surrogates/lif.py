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

``smooth=True`` replaces the step H by the surrogate's primitive P (every forward, multi-spike included):
a differentiable function whose autodiff is the same wiring, which finite differences can check.
"""

from __future__ import annotations

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


def decay(raw: Any, beta_map: BetaMap, dt: Any) -> Array:
  """A decay factor from its raw parameter under ``beta_map`` (β from β, τ, w or τ⁻¹)."""
  if beta_map is BetaMap.IDENTITY:
    return raw
  if beta_map is BetaMap.CLAMP_0_1:
    return jnp.clip(raw, 0.0, 1.0)
  if beta_map is BetaMap.CLAMP_HALF_1:
    return jnp.clip(raw, 0.5, 1.0)
  if beta_map is BetaMap.ONE_MINUS_INV_TAU:
    return 1.0 - 1.0 / raw
  if beta_map is BetaMap.SIGMOID:
    return 1.0 - jax.nn.sigmoid(raw)
  if beta_map is BetaMap.ONE_MINUS_DT_OVER_TAU:
    return 1.0 - dt * raw
  if beta_map is BetaMap.EXP_MINUS_INV_TAU:
    return jnp.exp(-1.0 / raw)
  if beta_map is BetaMap.EXP_MINUS_DT_OVER_TAU:
    return jnp.exp(-dt / raw)
  raise ValueError(f"lif_scan: unknown beta_map {beta_map!r}")


def _argument(v: Array, p: LIFParams, config: LIFConfig) -> Array:
  """What the spike function is applied to (θ held constant where the spike passes it no gradient)."""
  theta = lax.stop_gradient(p.theta) if config.theta_grad is ThetaGrad.NONE else p.theta
  arg = config.surrogate_arg
  if arg is SurrogateArg.V_MINUS_THETA:
    return v - theta
  if arg is SurrogateArg.V_MINUS_THETA_OVER_THETA:
    return (v - theta) / theta
  if arg is SurrogateArg.V_OVER_THETA:
    return v / theta - 1.0
  if arg is SurrogateArg.V_MINUS_THETA_OVER_RANGE:
    return (v - theta) / (theta - p.v_reset)
  raise ValueError(f"lif_scan: unknown surrogate_arg {arg!r}")


def _count(v: Array, u: Array, p: LIFParams, config: LIFConfig, surrogate: Surrogate, smooth: bool) -> Array:
  """The spike count n (before g_s): its forward as the config says, its derivative in u the surrogate's g."""
  if smooth:
    return surrogate.surrogate_fun(u)
  s = surrogate(u)  # H(u) with H(0) = 1, derivative g(u)
  fwd = config.spike_forward
  if fwd is SpikeForward.GE:
    return s
  if fwd is SpikeForward.GT:
    return s - lax.stop_gradient(jnp.where(u == 0, 1.0, 0.0).astype(s.dtype))
  if fwd is SpikeForward.HALF:
    return s - lax.stop_gradient(jnp.where(u == 0, 0.5, 0.0).astype(s.dtype))
  theta = lax.stop_gradient(p.theta)
  v = lax.stop_gradient(v)
  if fwd is SpikeForward.MULTI_GE:
    n = jnp.where(v >= theta, jnp.floor(v / theta), 0.0)
  elif fwd is SpikeForward.MULTI_POSITIVE:
    n = jnp.where(v > 0, jnp.floor(v / theta), 0.0)
  else:
    raise ValueError(f"lif_scan: unknown spike_forward {fwd!r}")
  return s + lax.stop_gradient(n.astype(s.dtype) - s)


def _fire(v: Array, p: LIFParams, config: LIFConfig, surrogate: Surrogate, smooth: bool) -> Array:
  """The spike count from membrane v, with the reset-gradient setting applied where it cuts the spike."""
  n = _count(v, _argument(v, p, config), p, config, surrogate, smooth)
  if config.reset_grad is ResetGrad.OUTPUT_DETACHED:
    n = lax.stop_gradient(n)
  return n


def _reset(v: Array, n: Array, beta: Array, p: LIFParams, config: LIFConfig) -> Array:
  """The membrane v after a spike count n (the reset's gradient setting applied to n and v here)."""
  rg = config.reset_grad
  if rg is ResetGrad.DETACHED:
    n = lax.stop_gradient(n)
  held = lax.stop_gradient(v) if rg is ResetGrad.HARD_IDENTITY else v
  r = config.reset
  if r is Reset.SUBTRACT_THETA:
    return v - n * p.theta
  if r is Reset.SUBTRACT_RANGE:
    return v - n * (p.theta - p.v_reset)
  if r is Reset.SUBTRACT_ONE:
    return v - n
  if r is Reset.SUBTRACT_BETA_THETA:
    return v - n * beta * p.theta
  if r is Reset.TO_VALUE:
    return v - n * (held - p.v_reset)
  if r is Reset.TO_ZERO:
    return v - n * held
  if r is Reset.NONE:
    return v
  raise ValueError(f"lif_scan: unknown reset {r!r}")


def _synapse(i: Array, x: Array, alpha: Array, synapse: Synapse) -> tuple[Array, Array]:
  """(the current this step integrates, the carried current)."""
  if synapse is Synapse.NONE:
    return x, i
  if synapse is Synapse.ADD_THEN_DECAY:
    used = i + x
    return used, alpha * used
  if synapse is Synapse.DECAY_SUM:
    used = alpha * (i + x)
    return used, used
  if synapse is Synapse.LAGGED:
    return i, alpha * i + (1.0 - alpha) * x
  raise ValueError(f"lif_scan: unknown synapse {synapse!r}")


def _gain(beta: Array, p: LIFParams, gain: Gain) -> Any:
  if gain is Gain.ONE:
    return 1.0
  if gain is Gain.PARAM:
    return p.gain
  if gain is Gain.ONE_MINUS_BETA:
    return 1.0 - beta
  if gain is Gain.PARAM_ONE_MINUS_BETA:
    return p.gain * (1.0 - beta)
  raise ValueError(f"lif_scan: unknown gain {gain!r}")


def _leak(v: Array, beta: Array, p: LIFParams, leak: Leak) -> Array:
  if leak is Leak.MULTIPLY:
    return beta * v
  if leak is Leak.TOWARD_RESET:
    return v + (p.v_reset - v) * (1.0 - beta)
  if leak is Leak.TOWARD_LEAK:
    return v + (p.v_leak - v) * (1.0 - beta)
  raise ValueError(f"lif_scan: unknown leak {leak!r}")


def lif_step(
    state: LIFState, x: Array, params: LIFParams, config: LIFConfig, surrogate: Surrogate, smooth: bool = False,
) -> tuple[LIFState, tuple[Array, Array]]:
  """One time step: (the new state, (the output spike g_s·n, the output membrane))."""
  p = params
  beta = decay(p.beta, config.beta_map, p.dt)
  v_prev = state.v
  current, i_next = _synapse(state.i, x, decay(p.alpha_syn, config.beta_map, p.dt), config.synapse)
  when = config.reset_when
  previous = None
  if when is not ResetWhen.IMMEDIATE or config.fire_from is FireFrom.PREVIOUS:
    previous = _fire(v_prev, p, config, surrogate, smooth)  # the spike of the previous membrane
  v = v_prev
  if when is ResetWhen.NEXT_BEFORE_LEAK:
    v = _reset(v, previous, beta, p, config)
  v = _leak(v, beta, p, config.leak) + _gain(beta, p, config.gain) * current + p.bias
  if when is ResetWhen.NEXT_AFTER_LEAK:
    v = _reset(v, previous, beta, p, config)
  n = previous if config.fire_from is FireFrom.PREVIOUS else _fire(v, p, config, surrogate, smooth)
  pre = v
  if when is ResetWhen.IMMEDIATE:
    v = _reset(v, n, beta, p, config)
  out = pre if config.membrane_out is MembraneOut.PRE_RESET else v
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
  cast = lambda a: jnp.broadcast_to(jnp.asarray(a, dtype), shape)  # noqa: E731
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
    step = lambda v: lif_step(LIFState(v, state.i), xt, params, config, surrogate)[0].v  # noqa: E731
    _, dv = jax.jvp(step, (state.v,), (jnp.ones_like(state.v),))
    nxt, _ = lif_step(state, xt, params, config, surrogate)
    return nxt, dv

  _, gains = lax.scan(body, state0, x)
  return gains


__all__ = ["LIFConfig", "LIFParams", "LIFState", "decay", "lif_scan", "lif_step", "reset_gain"]
