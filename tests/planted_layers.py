"""Planted layer candidates: correct LIF layers written in styles the reference does not use, and the same
layers with one setting changed.

Three independent implementations of the step the settings describe (``surrogates._lif_config``):

* :class:`TorchLIF`: a torch object holding its state (``self.v``, ``self.i``) and stepping it in a Python
  loop, its spike a ``torch.autograd.Function`` whose backward is g;
* :func:`jax_scan_layer`: a ``lax.scan`` whose carry is one stacked array ``[2, ...]`` (v and i together),
  its spike a ``jax.custom_vjp`` function;
* :class:`JaxStatefulLIF`: a plain-JAX class holding its state as attributes, stepped in a Python loop,
  its spike through the stop_gradient trick ``H + g-line − stop_gradient(g-line)``.

Each is built for an *implemented* config and declared with a *documented* one: a correct layer declares
what it implements; a planted defect declares one field differently, and the checks must name that field.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

import surrogates
from surrogates._lif_config import (
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
from verification.core.layer import LayerCandidate

ALPHA = 4.0
SURROGATE = surrogates.Sigmoid(alpha=ALPHA)


def _beta(raw, m, dt, xp):
  if m is BetaMap.IDENTITY:
    return raw
  if m is BetaMap.CLAMP_0_1:
    return xp.clip(raw, 0.0, 1.0)
  if m is BetaMap.CLAMP_HALF_1:
    return xp.clip(raw, 0.5, 1.0)
  if m is BetaMap.ONE_MINUS_INV_TAU:
    return 1.0 - 1.0 / raw
  if m is BetaMap.SIGMOID:
    return 1.0 / (1.0 + xp.exp(raw))  # 1 − σ(w) = σ(−w)
  if m is BetaMap.ONE_MINUS_DT_OVER_TAU:
    return 1.0 - raw * dt
  if m is BetaMap.EXP_MINUS_INV_TAU:
    return xp.exp(-1.0 / raw)
  return xp.exp(-dt / raw)


class _Step:
  """The step written once over an array module ``xp`` and a spike function ``spike(u, v, theta)``
  (its forward per ``SpikeForward``, derivative in u the surrogate's): the planted layers share it and
  differ in how they hold state, loop and build the spike."""

  def __init__(self, config: LIFConfig, xp, spike, detach):
    self.c, self.xp, self.spike, self.detach = config, xp, spike, detach

  def u(self, v, p):
    c = self.c
    th = self.detach(p.theta) if c.theta_grad is ThetaGrad.NONE else p.theta
    if c.surrogate_arg is SurrogateArg.V_MINUS_THETA:
      return v - th
    if c.surrogate_arg is SurrogateArg.V_MINUS_THETA_OVER_THETA:
      return (v - th) / th
    if c.surrogate_arg is SurrogateArg.V_OVER_THETA:
      return v / th - 1.0
    return (v - th) / (th - p.v_reset)

  def fire(self, v, p):
    n = self.spike(self.u(v, p), v, p.theta)
    return self.detach(n) if self.c.reset_grad is ResetGrad.OUTPUT_DETACHED else n

  def reset(self, v, n, beta, p):
    c = self.c
    if c.reset_grad is ResetGrad.DETACHED:
      n = self.detach(n)
    held = self.detach(v) if c.reset_grad is ResetGrad.HARD_IDENTITY else v
    r = c.reset
    if r is Reset.SUBTRACT_THETA:
      return v - p.theta * n
    if r is Reset.SUBTRACT_RANGE:
      return v - (p.theta - p.v_reset) * n
    if r is Reset.SUBTRACT_ONE:
      return v - n
    if r is Reset.SUBTRACT_BETA_THETA:
      return v - beta * p.theta * n
    if r is Reset.TO_VALUE:
      return (1.0 - n) * v + n * p.v_reset + (v - held) * n  # (held = v forward; its gradient dropped in hard_identity)
    if r is Reset.TO_ZERO:
      return v - held * n
    return v

  def __call__(self, v, i, x, p):
    c, xp = self.c, self.xp
    beta = _beta(p.beta, c.beta_map, p.dt, xp)
    alpha = _beta(p.alpha_syn, c.beta_map, p.dt, xp)
    if c.synapse is Synapse.NONE:
      cur, i_new = x, i
    elif c.synapse is Synapse.ADD_THEN_DECAY:
      cur = i + x
      i_new = cur * alpha
    elif c.synapse is Synapse.DECAY_SUM:
      cur = (x + i) * alpha
      i_new = cur
    else:
      cur, i_new = i, (1.0 - alpha) * x + alpha * i
    gain = {Gain.ONE: 1.0, Gain.PARAM: p.gain, Gain.ONE_MINUS_BETA: 1.0 - beta,
            Gain.PARAM_ONE_MINUS_BETA: p.gain * (1.0 - beta)}[c.gain]
    prev = None
    if c.reset_when is not ResetWhen.IMMEDIATE or c.fire_from is FireFrom.PREVIOUS:
      prev = self.fire(v, p)
    if c.reset_when is ResetWhen.NEXT_BEFORE_LEAK:
      v = self.reset(v, prev, beta, p)
    if c.leak is Leak.MULTIPLY:
      v = v * beta + cur * gain + p.bias
    else:
      target = p.v_reset if c.leak is Leak.TOWARD_RESET else p.v_leak
      v = v - (v - target) * (1.0 - beta) + cur * gain + p.bias
    if c.reset_when is ResetWhen.NEXT_AFTER_LEAK:
      v = self.reset(v, prev, beta, p)
    n = prev if c.fire_from is FireFrom.PREVIOUS else self.fire(v, p)
    out = v
    if c.reset_when is ResetWhen.IMMEDIATE:
      v = self.reset(v, n, beta, p)
    if c.membrane_out is MembraneOut.POST_RESET:
      out = v
    return v, i_new, p.g_s * n, out


def _count(u, v, theta, fwd, xp):
  """The forward of the spike count (no gradient)."""
  if fwd is SpikeForward.GE:
    return (u >= 0) * 1.0
  if fwd is SpikeForward.GT:
    return (u > 0) * 1.0
  if fwd is SpikeForward.HALF:
    return (u > 0) * 1.0 + (u == 0) * 0.5
  if fwd is SpikeForward.MULTI_GE:
    return xp.where(v >= theta, xp.floor(v / theta), 0.0 * v)
  return xp.where(v > 0, xp.floor(v / theta), 0.0 * v)


def _sigmoid_grad(u, xp):
  s = 1.0 / (1.0 + xp.exp(-ALPHA * u))
  return ALPHA * s * (1.0 - s)


# -------------------------------------------------------------------------------------------------
# torch: a Python loop over an object holding its state, the spike an autograd.Function
# -------------------------------------------------------------------------------------------------


def _torch_spike(fwd, g):
  import torch

  class Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, v, theta):
      ctx.save_for_backward(u)
      return _count(u, v.detach(), theta.detach(), fwd, torch).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
      (u,) = ctx.saved_tensors
      return grad * g(u), None, None

  return Spike.apply


class TorchLIF:
  """A torch LIF layer holding its state: ``layer.reset_state(v, i)``, then ``layer.step(x_t)`` per step."""

  def __init__(self, config: LIFConfig, params, g=None):
    import torch

    self.params = params
    spike = _torch_spike(config.spike_forward, g or (lambda u: _sigmoid_grad(u, torch)))
    self.step_fn = _Step(config, torch, spike, lambda t: t.detach())

  def reset_state(self, v, i):
    self.v, self.i = v, i

  def step(self, x):
    self.v, self.i, s, out = self.step_fn(self.v, self.i, x, self.params)
    return s, out


def torch_layer(implemented: LIFConfig, documented: LIFConfig | None = None, name: str = "planted.TorchLIF",
                **kw) -> LayerCandidate:
  import torch

  def build(g=None):
    def run(x, state0, params):
      layer = TorchLIF(implemented, params, g)
      layer.reset_state(state0.v, state0.i)
      spikes, membrane = [], []
      for t in range(x.shape[0]):
        s, m = layer.step(x[t])
        spikes.append(s)
        membrane.append(m)
      return torch.stack(spikes), torch.stack(membrane)
    return run

  return LayerCandidate(name=name, run=build(), config=documented or implemented, surrogate=SURROGATE,
                        with_surrogate=build, backend="torch", **kw)


# -------------------------------------------------------------------------------------------------
# JAX: a lax.scan whose carry is one stacked array, the spike a custom_vjp
# -------------------------------------------------------------------------------------------------


def _jax_spike(fwd, g):
  @jax.custom_vjp
  def spike(u, v, theta):
    return _count(u, v, theta, fwd, jnp).astype(u.dtype)

  def f(u, v, theta):
    return spike(u, v, theta), (u, v, theta)

  def b(res, ct):
    u, v, theta = res
    return ct * g(u), jnp.zeros_like(v), jnp.zeros_like(theta)

  spike.defvjp(f, b)
  return spike


def jax_scan_layer(implemented: LIFConfig, documented: LIFConfig | None = None, name: str = "planted.jax_scan",
                   **kw) -> LayerCandidate:
  def build(g=None):
    spike = _jax_spike(implemented.spike_forward, g or (lambda u: _sigmoid_grad(u, jnp)))

    def run(x, state0, params):
      theta = jnp.broadcast_to(params.theta, x.shape[1:])
      step = _Step(implemented, jnp, lambda u, v, th: spike(u, v, theta + 0 * u), jax.lax.stop_gradient)

      def body(carry, xt):
        v, i, s, out = step(carry[0], carry[1], xt, params)
        return jnp.stack([v, i]), (s, out)

      carry0 = jnp.stack([jnp.broadcast_to(state0.v, x.shape[1:]), jnp.broadcast_to(state0.i, x.shape[1:])])
      _, (s, m) = jax.lax.scan(body, carry0, x)
      return s, m
    return run

  return LayerCandidate(name=name, run=build(), config=documented or implemented, surrogate=SURROGATE,
                        with_surrogate=build, backend="jax", **kw)


# -------------------------------------------------------------------------------------------------
# JAX: a plain class holding its state, the spike by the stop_gradient trick
# -------------------------------------------------------------------------------------------------


class JaxStatefulLIF:
  """Holds ``v`` and ``i`` as attributes; ``__call__(x_t)`` advances one step (a Python loop drives it)."""

  def __init__(self, config: LIFConfig, params, g=None):
    g = g or (lambda u: _sigmoid_grad(u, jnp))
    fwd = config.spike_forward

    def spike(u, v, theta):
      # value: the count; derivative in u: g(u) (a line through u with slope g, its value cancelled)
      line = jax.lax.stop_gradient(g(u)) * u
      return jax.lax.stop_gradient(_count(u, v, theta, fwd, jnp).astype(u.dtype) - line) + line

    self.params = params
    self.step = _Step(config, jnp, spike, jax.lax.stop_gradient)

  def __call__(self, x):
    self.v, self.i, s, out = self.step(self.v, self.i, x, self.params)
    return s, out


def jax_class_layer(implemented: LIFConfig, documented: LIFConfig | None = None,
                    name: str = "planted.JaxStatefulLIF", **kw) -> LayerCandidate:
  def build(g=None):
    def run(x, state0, params):
      layer = JaxStatefulLIF(implemented, params, g)
      layer.v = jnp.broadcast_to(state0.v, x.shape[1:])
      layer.i = jnp.broadcast_to(state0.i, x.shape[1:])
      outs = [layer(x[t]) for t in range(x.shape[0])]
      return jnp.stack([o[0] for o in outs]), jnp.stack([o[1] for o in outs])
    return run

  return LayerCandidate(name=name, run=build(), config=documented or implemented, surrogate=SURROGATE,
                        with_surrogate=build, backend="jax", **kw)


STYLES = {"torch": torch_layer, "jax_scan": jax_scan_layer, "jax_class": jax_class_layer}


# -------------------------------------------------------------------------------------------------
# One (documented, implemented) pair per field: the change is observable at the base config
# -------------------------------------------------------------------------------------------------

_BASE = LIFConfig()
#: field -> (the config the layer implements correctly, the value of the field the defect implements)
FIELD_DEFECTS: dict[str, tuple[LIFConfig, object]] = {
  "synapse": (LIFConfig(synapse=Synapse.DECAY_SUM), Synapse.ADD_THEN_DECAY),
  "leak": (LIFConfig(leak=Leak.TOWARD_RESET), Leak.MULTIPLY),
  "beta_map": (LIFConfig(beta_map=BetaMap.CLAMP_0_1), BetaMap.IDENTITY),
  "gain": (LIFConfig(gain=Gain.ONE_MINUS_BETA), Gain.ONE),
  "fire_from": (_BASE, FireFrom.PREVIOUS),
  "surrogate_arg": (LIFConfig(surrogate_arg=SurrogateArg.V_MINUS_THETA_OVER_THETA), SurrogateArg.V_MINUS_THETA),
  "spike_forward": (LIFConfig(spike_forward=SpikeForward.GE), SpikeForward.GT),
  "reset": (LIFConfig(reset=Reset.TO_VALUE), Reset.SUBTRACT_THETA),
  "reset_when": (LIFConfig(reset_when=ResetWhen.NEXT_AFTER_LEAK, membrane_out=MembraneOut.PRE_RESET),
                 ResetWhen.NEXT_BEFORE_LEAK),
  "reset_grad": (_BASE, ResetGrad.DETACHED),
  "membrane_out": (_BASE, MembraneOut.PRE_RESET),
  "theta_grad": (_BASE, ThetaGrad.NONE),
}

#: The raw parameters each planted layer runs at (β raw for the map; a bias so the leak's target shows).
def params_for(config: LIFConfig) -> surrogates.LIFParams:
  raw = {BetaMap.IDENTITY: 0.8, BetaMap.CLAMP_0_1: 1.2, BetaMap.CLAMP_HALF_1: 0.8, BetaMap.ONE_MINUS_INV_TAU: 5.0,
         BetaMap.SIGMOID: -1.4, BetaMap.ONE_MINUS_DT_OVER_TAU: 0.2, BetaMap.EXP_MINUS_INV_TAU: 4.5,
         BetaMap.EXP_MINUS_DT_OVER_TAU: 4.5}[config.beta_map]
  return surrogates.LIFParams(beta=raw if config.beta_map is not BetaMap.CLAMP_0_1 else 1.02, alpha_syn=0.6)


def defect(field: str, style: str) -> tuple[LayerCandidate, LayerCandidate]:
  """(the correct layer, the layer with ``field`` implemented differently), both declaring the same config."""
  documented, other = FIELD_DEFECTS[field]
  implemented = dataclasses.replace(documented, **{field: other})
  make = STYLES[style]
  params = params_for(documented)
  kw = dict(params=params, learnable=frozenset({"beta", "theta"}))
  return (make(documented, name=f"planted.{style}.{field}.correct", **kw),
          make(implemented, documented, name=f"planted.{style}.{field}.changed", **kw))


def hostile(kind: str, backend: str = "torch") -> LayerCandidate:
  """A layer that raises, returns garbage shapes, or returns garbage types."""
  import torch

  def run(x, state0, params):
    if kind == "raises":
      raise RuntimeError("the layer's own failure")
    if kind == "shapes":
      return x[:1], x.sum()
    if kind == "types":
      return "spikes", None
    if kind == "nan":
      return x * math.nan, x * math.nan
    raise ValueError(kind)

  if backend == "jax":
    def run_jax(x, state0, params):
      return run(x, state0, params) if kind != "nan" else (x * jnp.nan, x * jnp.nan)
    return LayerCandidate(name=f"hostile.{kind}", run=run_jax, config=LIFConfig(), surrogate=SURROGATE,
                          backend="jax")
  del torch
  return LayerCandidate(name=f"hostile.{kind}", run=run, config=LIFConfig(), surrogate=SURROGATE, backend="torch")


__all__ = ["FIELD_DEFECTS", "STYLES", "defect", "hostile", "jax_class_layer", "jax_scan_layer", "np", "torch_layer"]
