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

import importlib
import types
from typing import Any

from verification.core import torch_bridge
from verification.core.candidate import Candidate
from verification.targets._common import Mapping, Params, installed_version, mapped_candidates

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
