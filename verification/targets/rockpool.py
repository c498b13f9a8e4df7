"""rockpool's spike-generation functions as candidates: the torch ``StepPWL`` and ``PeriodicExponential``
(``backend="torch"``) and the JAX ``step_pwl`` (``backend="jax"``).

Formulas as read from the installed source of rockpool 3.1.0 (``rockpool/nn/modules/torch/
lif_torch.py``, ``rockpool/nn/modules/jax/lif_jax.py``). Each takes the membrane v and the threshold
θ and emits ``(v >= θ)·floor(v/θ)`` spikes, clamped to ``max_spikes_per_dt`` (default 2^16): a
multi-spike forward. With ``max_spikes_per_dt = 1`` the forward is the step H(v - θ), which is what
is checked, on x = v - θ with θ = 1: the candidate calls the function at v = θ + x, rounded in the
input's dtype, so for |x| below half an ulp of θ the function receives v = θ. The candidates declare
``input_offset = θ``, and the forward check judges H at the input the function receives,
fl(x + θ) - θ.

- StepPWL.apply(v, θ, window=0.5, max_spikes_per_dt=1): g = 1[v >= θ - window]/θ = 1[x >= -window]/θ
  -> ShiftedStep(window), scale 1/θ
- step_pwl(v, θ, window=0.5, max_spikes_per_dt=1) (``jax.custom_jvp``, tangent
  1[v >= θ - window]·(v̇/θ - θ̇v/θ²)) -> ShiftedStep(window), scale 1/θ
- PeriodicExponential.apply(v, θ, window=0.5, max_spikes_per_dt=1): g = e^(-|v - θ/2 - kθ - θ/2|/window)/θ
  with k = min(floor((v - θ/2)/θ), max_spikes_per_dt - 1); with one spike at most k <= 0, so the
  periodic part is clamped away: g = e^(-|x|/window)/θ -> PiecewiseExp(alpha=1/window), scale 2·window/θ.
  (With the default multi-spike forward, g is e^(-d(x)/window)/θ above threshold, d the distance to
  the nearest multiple of θ: half the rate of sinabs' PeriodicExponential.)
"""

from __future__ import annotations

import dataclasses
import importlib
import types
from typing import Any

import numpy as np

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
from verification.core import torch_bridge
from verification.core.candidate import Candidate
from verification.targets._common import Mapping, Params, installed_version, mapped_candidates
from verification.targets._layers import LayerOption, layer_candidate, layer_cites, value

PACKAGE = "rockpool"
MODULE = "rockpool.nn.modules"
MODULES = ("rockpool.nn.modules.torch.lif_torch", "rockpool.nn.modules.jax.lif_jax")
THRESHOLD = 1.0

_FWD = ("multi-spike forward clamped to max_spikes_per_dt = 1, called at v = θ + x (θ = 1); float32 output from "
        "the torch functions for every dtype")


def _step_to_ref(lib: Params) -> tuple[Params, float]:
  return {"window": lib["window"]}, 1.0 / lib["threshold"]


def _step_from_ref(ref: Params) -> Params:
  return {"window": ref["window"]}


def _periodic_to_ref(lib: Params) -> tuple[Params, float]:
  return {"alpha": 1.0 / lib["window"]}, 2.0 * lib["window"] / lib["threshold"]


_DEFAULTS = {"threshold": THRESHOLD, "window": 0.5, "max_spikes_per_dt": 1.0}
MAPPINGS: tuple[Mapping, ...] = (
    Mapping("StepPWL", "ShiftedStep", _step_to_ref, _step_from_ref, defaults=_DEFAULTS, note=_FWD),
    Mapping("step_pwl", "ShiftedStep", _step_to_ref, _step_from_ref, covers=("step_pwl_jvp",), defaults=_DEFAULTS,
            note="multi-spike forward clamped to max_spikes_per_dt = 1, called at v = θ + x (θ = 1)"),
    Mapping("PeriodicExponential", "PiecewiseExp", _periodic_to_ref, defaults=_DEFAULTS,
            extra=({"window": 0.25},), note=_FWD + "; with one spike at most the periodic part is clamped away"),
)

_NOT_SURROGATE = "not a spike function"
UNMAPPED: dict[str, str] = {
    "sigmoid": "a smooth activation tanh(x + 1 - θ)/2 + 1/2, not a spike function with a surrogate gradient",
    "LIFTorch": "a neuron module (its spike_generation_fn is StepPWL or PeriodicExponential, checked here)",
    "LIFBaseTorch": "the base neuron module of LIFTorch",
    "LIFJax": "a neuron module (its spikes come from step_pwl, checked here)",
    "clip_gradient_fwd": "gradient clipping of the JAX LIF (an identity with clipped cotangents), " + _NOT_SURROGATE,
    "clip_gradient_bwd": "gradient clipping of the JAX LIF, " + _NOT_SURROGATE,
    **{name: "time-constant conversion utility, " + _NOT_SURROGATE for name in (
        "decay_to_tau", "tau_to_decay", "tau_to_bitshift", "bitshift_to_tau", "bitshift_to_decay",
        "decay_to_bitshift")},
}


def version() -> str:
  """The installed rockpool version."""
  return installed_version(PACKAGE)


def modules() -> list[types.ModuleType]:
  """The library modules whose exports are adapted."""
  return [importlib.import_module(m) for m in MODULES]


def _torch_spike(fn: Any, params: Params) -> Any:
  import torch

  # tensors, as the LIF module passes them (the backward returns a gradient for the threshold)
  theta, window, most = (torch.tensor(float(params[k])) for k in ("threshold", "window", "max_spikes_per_dt"))
  return lambda t: fn.apply(t + params["threshold"], theta, window, most)


def _jax_spike(fn: Any, params: Params) -> Any:
  theta, window, most = (float(params[k]) for k in ("threshold", "window", "max_spikes_per_dt"))
  return lambda x: fn(x + theta, theta, window, most)


def candidates() -> list[Candidate]:
  """One candidate per exported spike function and parameter set."""
  torch_mod, jax_mod = modules()
  ns = types.SimpleNamespace(StepPWL=torch_mod.StepPWL, PeriodicExponential=torch_mod.PeriodicExponential,
                             step_pwl=jax_mod.step_pwl)

  def build(m: Mapping, params: Params, ref: Params):
    fn = getattr(ns, m.export)
    args = ", ".join(repr(float(params[k])) for k in ("threshold", "window", "max_spikes_per_dt"))
    offset = {"input_offset": float(params["threshold"])}  # judged at the v - θ the function receives
    if m.export == "step_pwl":
      return f"{MODULES[1]}.step_pwl(x + {params['threshold']!r}, {args})", {"fn": _jax_spike(fn, params), **offset}
    call = f"{MODULES[0]}.{m.export}.apply(x + {params['threshold']!r}, {args})"
    return call, {**torch_bridge.torch_fields(_torch_spike(fn, params)), **offset}

  return mapped_candidates(PACKAGE, version(), ns, MAPPINGS, build)


# --- the layer: rockpool.nn.modules.LIFTorch -----------------------------------------------------------
#
# One step as ``LIFTorch.forward`` of 3.1.0 runs it (``lif_torch.py`` L685-709)::
#
#     i = i + x_t                     L687
#     v = α·v;  i = β_syn·i           L697-698, α = exp(-dt/τ_mem), β_syn = exp(-dt/τ_syn) (leak_mode "taus")
#     v = v + i + bias                L701
#     S = (v >= θ)·⌊v/θ⌋              L704 StepPWL: multi-spike, clamped to max_spikes_per_dt; backward
#                                     1[v >= θ - window]/θ to v and -v/θ²·1[...] to θ
#     v = v - S·θ                     L709: attached
#
# The recorded ``vmem`` (L713) is after the reset. Parameters and states are cast to float32
# (``to_float_tensor``), so the layer runs in float32. The initial membrane is set as the module's
# ``vmem`` buffer at the batch's shape (``_auto_batch`` multiplies it by ones of that shape; the ``vmem``
# setter checks the shape (Nout,), so the buffer is set directly).

_LIFT = "rockpool/nn/modules/torch/lif_torch.py"
_ROCK_DOCS: dict[str, str] = {
    "synapse": f"{_LIFT}:609-611: 'I_syn += S_in(t) + S_rec·W_rec; I_syn *= exp(-dt/τ_syn)'",
    "leak": f"{_LIFT}:613: 'V_mem *= exp(-dt/τ_mem)'",
    "beta_map": f"{_LIFT}:613: 'V_mem *= exp(-dt/τ_mem)'",
    "gain": f"{_LIFT}:615: 'V_mem += I_syn + b + σζ(t)'",
    "spike_forward": f"{_LIFT}:625: 'V_mem,j > V_thr → S_rec,j = 1'",
    "reset": f"{_LIFT}:627: 'V_mem,j = V_mem,j - V_thr'",
    "reset_when": f"{_LIFT}:621: 'When the membrane potential ... exceeds the threshold voltage ..., then the neuron "
                  "emits a spike. The spiking neuron subtracts its own threshold on reset.'",
}
ROCK_DEFAULT = LIFConfig(
    synapse=Synapse.DECAY_SUM, leak=Leak.MULTIPLY, beta_map=BetaMap.EXP_MINUS_DT_OVER_TAU, gain=Gain.ONE,
    fire_from=FireFrom.CURRENT, surrogate_arg=SurrogateArg.V_OVER_THETA, spike_forward=SpikeForward.GT,
    reset=Reset.SUBTRACT_THETA, reset_when=ResetWhen.IMMEDIATE, reset_grad=ResetGrad.ATTACHED,
    membrane_out=MembraneOut.POST_RESET, theta_grad=ThetaGrad.AUTODIFF,
)
_DECAYS_DOC = (f"{_LIFT}:185: 'if ``'decays'``, .alpha and .beta are used as model parameters (.alpha and .beta are: "
               "exp(-dt/τ_mem) and exp(-dt/τ_syn) respectively)'")
_TAUS_LEARN = f"{_LIFT}:182: 'By default, this is set to ``'taus'``, in which the time constants are direct " \
              "parameters, which are trainable by default.'"
#: option -> (the documented configuration's changes, their citations, the parameters it runs at)
_TAUS = {"beta": 0.02, "alpha_syn": 0.02}
ROCK_OPTIONS: tuple[tuple[dict[str, Any], dict[str, Any], dict[str, str], dict[str, float]], ...] = (
    ({}, {}, {}, _TAUS),
    ({"max_spikes_per_dt": 1.0}, {}, {}, _TAUS),
    ({"leak_mode": "decays"}, {"beta_map": BetaMap.IDENTITY}, {"beta_map": _DECAYS_DOC},
     {"beta": float(np.exp(-1e-3 / 0.02)), "alpha_syn": float(np.exp(-1e-3 / 0.02))}),
)


def _probe_function(g: Any) -> Any:
  """A spike-generation Function as rockpool's: the forward of StepPWL, backward g(v/θ - 1)/θ to v (and the
  chain rule's -v/θ²·g to θ)."""
  import torch

  class Probe(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, theta, window, most):
      ctx.save_for_backward(v, theta)
      n = ((v >= theta) * torch.floor(v / theta)).float()
      return torch.minimum(n, most.float())

    @staticmethod
    def backward(ctx, grad):
      v, theta = ctx.saved_tensors
      d = g(v / theta - 1.0)
      return grad * d / theta, -grad * d * v / theta**2, None, None

  return Probe


def _rock_run(option: dict[str, Any]):
  import torch

  lif = importlib.import_module(MODULES[0])

  def run(x, v0, p, g=None):
    decays = option.get("leak_mode") == "decays"
    names = ("alpha", "beta") if decays else ("tau_mem", "tau_syn")
    kwargs = {names[0]: torch.full((x.shape[-1],), value(p["beta"])),
              names[1]: torch.full((x.shape[-1], 1), value(p["alpha_syn"]))}
    if g is not None:
      kwargs["spike_generation_fn"] = _probe_function(g)
    layer = lif.LIFTorch(shape=(x.shape[-1],), threshold=torch.full((x.shape[-1],), value(p["theta"])),
                         bias=torch.full((x.shape[-1],), value(p["bias"])), dt=value(p["dt"]), **kwargs,
                         **{k: v for k, v in option.items() if k != "max_spikes_per_dt"},
                         **({"max_spikes_per_dt": torch.tensor(option["max_spikes_per_dt"])}
                            if "max_spikes_per_dt" in option else {}))
    layer._buffers["vmem"] = v0.float()  # the batch's initial membrane (the setter allows only (Nout,))
    spikes, _, rec = layer.evolve(x.float().transpose(0, 1), record=True)
    leaves = {"beta": getattr(layer, names[0]), "alpha_syn": getattr(layer, names[1]), "theta": layer.threshold,
              "bias": layer.bias}
    return spikes.transpose(0, 1), rec["vmem"].transpose(0, 1), leaves

  return run


def layer_options() -> list[LayerOption]:
  """LIFTorch's defaults and options, with the configuration its documentation states."""
  out = []
  for option, changes, option_cites, taus in ROCK_OPTIONS:
    learnable = ("beta", "alpha_syn")
    out.append(LayerOption(
        library=PACKAGE, version=version(), layer="LIFTorch", option=option,
        documented=dataclasses.replace(ROCK_DEFAULT, **changes),
        cites=layer_cites({**_ROCK_DOCS, **option_cites,
                           **{f"learnable {n}": _TAUS_LEARN for n in learnable}}),
        params={**taus, "theta": 1.0, "bias": 0.0, "dt": 1e-3},
        surrogate=("ShiftedStep", {"window": 0.5}), learnable=learnable, varies=("theta",), dtype="float32",
        note="parameters and states are cast to float32 (to_float_tensor), so the layer runs in float32; the "
             "window of StepPWL is absolute (v >= θ - 0.5), so its mirror ShiftedStep(0.5) on v/θ - 1 holds at "
             "θ = 1 only; threshold and bias are rp.Parameters too; the measured problems keep v below 2θ, so they do "
             "not tell the multi-spike forward (S = ⌊v/θ⌋ where v >= θ, L43) from the documented S = 1: from "
             "v0 = 2.5 one step gives S = 2 (v = 2.378) with the defaults, against the documentation's 1",
    ))
  return out


def layer_candidates() -> list[Any]:
  """One layer candidate per documented option set of ``LIFTorch``."""
  return [layer_candidate(o, _rock_run(dict(o.option))) for o in layer_options()]


def layer_snippet(layer: str, option: dict[str, Any]) -> str:
  """Standalone code defining ``run(x, v0) -> (spikes, membrane)`` for one option set (the reproducers' call)."""
  decays = option.get("leak_mode") == "decays"
  taus = "alpha=torch.full((5,), 0.951229424500714), beta=torch.full((5, 1), 0.951229424500714)" if decays else \
      "tau_mem=torch.full((5,), 0.02), tau_syn=torch.full((5, 1), 0.02)"
  kwargs = "".join(f", {k}=torch.tensor({v!r})" if k == "max_spikes_per_dt" else f", {k}={v!r}"
                   for k, v in option.items())
  return f'''import torch
from rockpool.nn.modules import LIFTorch

DTYPE = torch.float32  # rockpool casts its parameters and states to float32


def run(x, v0):
  layer = LIFTorch(shape=(5,), {taus}, threshold=torch.ones(5), bias=torch.zeros(5), dt=1e-3{kwargs})
  layer._buffers["vmem"] = v0  # the batch's initial membrane (the vmem setter allows only one row)
  spikes, _, rec = layer.evolve(x.transpose(0, 1), record=True)
  return spikes.transpose(0, 1), rec["vmem"].transpose(0, 1)
'''


#: Layers of the library not measured, and why (listed with the results).
LAYERS_NOT_RUN = {"LIFJax": "no layer adapter yet (the same step with a custom_jvp spike and a window of 0.5)"}
