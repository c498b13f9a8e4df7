"""sinabs.activation surrogate gradients as candidates (``backend="torch"``).

Formulas as read from the installed source of sinabs 3.1.3 (``sinabs/activation/
surrogate_gradient_fn.py``, ``spike_generation.py``). A surrogate class is called by the spike
function's backward as ``grad = surrogate(v_mem, spike_threshold)``. The spike function checked is
``SingleSpike.apply(v_mem, spike_threshold, surrogate)``, whose forward is ``(v_mem - θ >= 0).float()``
(the reference's H(0) = 1, float32 output for every dtype). With x = v_mem - θ the candidate is
``SingleSpike.apply(x, 0.0, lambda v, _: surrogate(v + θ, θ))``: sinabs' forward and autograd
Function on x itself (so H is exact at ±tiny, which v = θ + x cannot be) and sinabs' surrogate at
v_mem = θ + x, rounded in the input's dtype as a network's membrane would be. θ = 1 (sinabs'
default ``spike_threshold``) unless the parameter set says otherwise.

- Heaviside(window=1): g = 1[v >= θ - window]/θ = 1[x >= -window]/θ -> ShiftedStep(window), scale 1/θ
  (the docstring calls window relative to the threshold; the code subtracts it as an absolute value)
- Gaussian(mu=0, sigma=0.5, grad_scale=1): g = grad_scale·N(x; mu, σ) -> GaussianGrad(sigma, alpha=grad_scale), 1
  (mu = 0 only)
- MultiGaussian(mu=0, sigma=0.5, h=0.15, s=6, grad_scale=1): g = grad_scale·((1+h)N(x; mu, σ)
  - h·N(x; σ, sσ) - h·N(x; -σ, sσ)) -> MultiGaussianGrad(h, s, sigma, scale=grad_scale), 1 (mu = 0 only)
- SingleExponential(grad_width=0.5, grad_scale=1): g = grad_scale/(θw)·e^(-|x|/(θw)) -> PiecewiseExp(alpha=1/(θw)),
  scale 2·grad_scale (an existing shape up to scale)
- PeriodicExponential(grad_width=0.5, grad_scale=1): g = grad_scale·e^(-|x|/w) below threshold,
  grad_scale·e^(-2d(x)/w) above, d = distance to the nearest multiple of θ ->
  PeriodicExponential(width=w, threshold=θ), scale grad_scale; θ = 2 is checked too (PR #98 fixed
  this function for θ != 1)

Layer ``sinabs.layers.LIF`` (``sinabs/layers/{lif,functional/lif}.py``, ``activation/*.py`` of 3.1.3), one
step as the code runs it (``lif_forward_single``)::

    v = α·v + (1 - α)·x              α = exp(-1/τ_mem), τ in steps (norm_input; without it: v = α·v + x)
    S = ⌊v/θ⌋ where v > 0            MultiSpike (SingleSpike: S = [v ≥ θ]); backward: g(v, θ), no gradient to θ
    v = v - S·θ                      MembraneSubtract, attached (MembraneReset: v·[S = 0] + reset_value)

g is SingleExponential: grad_scale/(θ·w)·exp(-|v - θ|/(θ·w)), a function of (v - θ)/θ scaled by 1/θ
(PiecewiseExp(alpha = 1/w) on (v - θ)/θ with κ = 1/θ, times 2·grad_scale: the layer protocol has no
scale, so the own-surrogate comparison shows that factor 2; the probe runs do not depend on it).
``tau_mem`` is an ``nn.Parameter``
(float32: the layer is converted to the run's dtype), ``spike_threshold`` a parameter with
``requires_grad=False``. Spikes are ``.float()``: float32, so the layer is run in float32. The membrane is
the recorded ``v_mem`` (after the reset). The probe surrogate is
installed as ``surrogate_grad_fn = g((v - θ)/θ)/θ``, the argument sinabs' own surrogates use.

"""

from __future__ import annotations

import dataclasses
import importlib
import types
from typing import Any

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
from verification.targets._common import Mapping, Params, call_string, installed_version, mapped_candidates
from verification.targets._layers import LayerOption, layer_candidate, layer_cites

PACKAGE = "sinabs"
MODULE = "sinabs.activation"
MODULES = ("sinabs.activation.surrogate_gradient_fn", "sinabs.activation.spike_generation")
THRESHOLD = 1.0

_FWD = ("forward (v - θ >= 0).float(): float32 output for every dtype; x = v - θ, the surrogate is called at "
        "v = θ + x")
#: The spike function and its backward, exercised by every candidate.
_SPIKE = ("SingleSpike", "BackwardClass")


def _to_ref(ref_name: str, names: dict[str, str], scale: Any = None):
  """Library parameters -> reference ones by renaming; ``scale(lib)`` where it is not 1."""

  def to_ref(lib: Params) -> tuple[Params, float]:
    return {r: lib[n] for n, r in names.items()}, float(scale(lib)) if scale else 1.0

  def from_ref(ref: Params) -> Params | None:
    return {n: ref[r] for n, r in names.items()} if scale is None else None

  return to_ref, from_ref


def _exp_to_ref(lib: Params) -> tuple[Params, float]:
  return {"alpha": 1.0 / (lib["spike_threshold"] * lib["grad_width"])}, 2.0 * lib["grad_scale"]


def _step_to_ref(lib: Params) -> tuple[Params, float]:
  return {"window": lib["window"]}, 1.0 / lib["spike_threshold"]


def _step_from_ref(ref: Params) -> Params:
  return {"window": ref["window"]}


def _periodic_to_ref(lib: Params) -> tuple[Params, float]:
  return {"width": lib["grad_width"], "threshold": lib["spike_threshold"]}, float(lib["grad_scale"])


def _periodic_from_ref(ref: Params) -> Params:
  return {"grad_width": ref["width"], "spike_threshold": ref["threshold"]}


_T = {"spike_threshold": THRESHOLD}
MAPPINGS: tuple[Mapping, ...] = (
    Mapping("Heaviside", "ShiftedStep", _step_to_ref, _step_from_ref, covers=_SPIKE,
            defaults={"window": 1.0, **_T}, extra=({"window": 0.5, "spike_threshold": 2.0},),
            note=_FWD + "; g = 1[x >= -window]/threshold, window absolute"),
    Mapping("Gaussian", "GaussianGrad", *_to_ref("GaussianGrad", {"sigma": "sigma", "grad_scale": "alpha"}),
            covers=("gaussian",), defaults={"mu": 0.0, "sigma": 0.5, "grad_scale": 1.0, **_T}, note=_FWD),
    Mapping("MultiGaussian", "MultiGaussianGrad",
            *_to_ref("MultiGaussianGrad", {"h": "h", "s": "s", "sigma": "sigma", "grad_scale": "scale"}),
            defaults={"mu": 0.0, "sigma": 0.5, "h": 0.15, "s": 6.0, "grad_scale": 1.0, **_T}, note=_FWD),
    Mapping("SingleExponential", "PiecewiseExp", _exp_to_ref, defaults={"grad_width": 0.5, "grad_scale": 1.0, **_T},
            extra=({"grad_width": 0.5, "grad_scale": 1.0, "spike_threshold": 2.0},),
            note=_FWD + "; g = grad_scale/(θw)·exp(-|x|/(θw)): PiecewiseExp(1/(θw)) × 2·grad_scale"),
    Mapping("PeriodicExponential", "PeriodicExponential", _periodic_to_ref, _periodic_from_ref,
            defaults={"grad_width": 0.5, "grad_scale": 1.0, **_T},
            extra=({"grad_width": 0.5, "grad_scale": 1.0, "spike_threshold": 2.0},), note=_FWD),
)

UNMAPPED: dict[str, str] = {
    "MultiSpike": "multi-spike forward: floor(v/θ) spikes per step, not the step H",
    "MaxSpike": "multi-spike forward (up to max_num_spikes_per_bin spikes per step), not the step H",
    "MaxSpikeInner": "the autograd Function behind MaxSpike (multi-spike forward)",
}


def version() -> str:
  """The installed sinabs version."""
  return installed_version(PACKAGE)


def modules() -> list[types.ModuleType]:
  """The library modules whose exports are adapted."""
  return [importlib.import_module(m) for m in MODULES]


def _spike(single_spike: Any, surrogate: Any, threshold: float) -> Any:
  return lambda t: single_spike.apply(t, 0.0, lambda v, _th: surrogate(v + threshold, threshold))


def candidates() -> list[Candidate]:
  """One candidate per exported surrogate and parameter set: SingleSpike with that surrogate."""
  grads, spikes = modules()
  ns = types.SimpleNamespace(**vars(grads), **{k: v for k, v in vars(spikes).items() if k not in vars(grads)})

  def build(m: Mapping, params: Params, ref: Params):
    theta = float(params["spike_threshold"])
    ctor = {k: v for k, v in params.items() if k != "spike_threshold"}
    call = (f"{MODULES[1]}.SingleSpike.apply(v_mem, {theta!r}, "
            + call_string(f"{MODULES[0]}.{m.export}", ctor) + ") with v_mem = x + spike_threshold")
    return call, torch_bridge.torch_fields(_spike(spikes.SingleSpike, getattr(grads, m.export)(**ctor), theta))

  return mapped_candidates(PACKAGE, version(), ns, MAPPINGS, build)


# --- the layer: sinabs.layers.LIF ---------------------------------------------------------------------

_LIFL = "sinabs/layers/lif.py"
_LIF_DOCS = {
    "leak": f"{_LIFL}:20: 'V_mem(t+1) = max(α V_mem(t) + (1-α) Σ z(t), V_min)'",
    "gain": f"{_LIFL}:20: 'V_mem(t+1) = max(α V_mem(t) + (1-α) Σ z(t), V_min)'",
    "synapse": f"{_LIFL}:36: 'tau_syn: ... If None, no synaptic dynamics are used, which is the default.'",
    "beta_map": f"{_LIFL}:27: 'where α = e^(-1/tau_mem)'",
    "spike_forward": f"{_LIFL}:32: 'if V_mem(t) >= V_th, then V_mem → V_reset'",
    "reset": f"{_LIFL}:32: 'if V_mem(t) >= V_th, then V_mem → V_reset'",
    "reset_when": f"{_LIFL}:32: 'if V_mem(t) >= V_th, then V_mem → V_reset'",
    "membrane_out": f"{_LIFL}:57: 'v_mem: The membrane potential resets according to reset_fn for every spike.'",
}
_LIF_DEFAULT = LIFConfig(
    synapse=Synapse.NONE, leak=Leak.MULTIPLY, beta_map=BetaMap.EXP_MINUS_INV_TAU, gain=Gain.ONE_MINUS_BETA,
    fire_from=FireFrom.CURRENT, surrogate_arg=SurrogateArg.V_MINUS_THETA_OVER_THETA, spike_forward=SpikeForward.GE,
    reset=Reset.TO_VALUE, reset_when=ResetWhen.IMMEDIATE, reset_grad=ResetGrad.ATTACHED,
    membrane_out=MembraneOut.POST_RESET, theta_grad=ThetaGrad.NONE,
)
_NO_NORM = f"{_LIFL}:25: 'V_mem(t+1) = max(α V_mem(t) + Σ z(t), V_min)' (norm_input=False)"
#: option -> (the documented configuration's changes, their citations)
_LIF_OPTIONS: tuple[tuple[dict[str, Any], dict[str, Any], dict[str, str]], ...] = (
    ({}, {}, {}),
    ({"spike_fn": "SingleSpike"}, {}, {}),
    ({"reset_fn": "MembraneReset()"}, {}, {}),
    ({"spike_fn": "SingleSpike", "reset_fn": "MembraneReset()"}, {}, {}),
    ({"norm_input": False}, {"gain": Gain.ONE}, {"gain": _NO_NORM, "leak": _NO_NORM}),
)


def _lif_run(option: dict[str, Any]):
  import torch

  layers = importlib.import_module("sinabs.layers")
  activation = importlib.import_module("sinabs.activation")

  def run(x, v0, p, g=None):
    kwargs: dict[str, Any] = {}
    if "spike_fn" in option:
      kwargs["spike_fn"] = getattr(activation, option["spike_fn"])
    if "reset_fn" in option:
      kwargs["reset_fn"] = activation.MembraneReset()
    if "norm_input" in option:
      kwargs["norm_input"] = option["norm_input"]
    if g is not None:
      kwargs["surrogate_grad_fn"] = lambda v, th: g((v - th) / th) / th
    layer = layers.LIF(tau_mem=2.0, spike_threshold=torch.as_tensor(1.0), record_states=True, **kwargs).to(x.dtype)
    with torch.no_grad():
      layer.tau_mem.copy_(p["beta"])
      layer.spike_threshold.copy_(p["theta"])
    layer.init_state_with_shape(tuple(v0.shape))
    layer.v_mem = v0
    spikes = layer(x.transpose(0, 1)).transpose(0, 1)
    membrane = layer.recordings["v_mem"].transpose(0, 1)
    leaves = {"beta": layer.tau_mem}
    if layer.spike_threshold.requires_grad:
      leaves["theta"] = layer.spike_threshold
    return spikes, membrane, leaves

  return run


def layer_options() -> list[LayerOption]:
  """sinabs.layers.LIF's defaults and options, with the configuration its documentation states."""
  out = []
  for option, changes, option_cites in _LIF_OPTIONS:
    out.append(LayerOption(
        library=PACKAGE, version=version(), layer="LIF", option=option,
        documented=dataclasses.replace(_LIF_DEFAULT, **changes),
        cites=layer_cites({**_LIF_DOCS, **option_cites,
                           "learnable beta": f"{_LIFL}:90: tau_mem is an nn.Parameter (trainable by default)"}),
        params={"beta": 5.0, "theta": 1.0, "v_reset": 0.0},
        surrogate=("PiecewiseExp", {"alpha": 2.0}), learnable=("beta",), varies=("theta",), dtype="float32",
        note="spikes are .float() (float32), so the layer runs in float32; tau_mem is an nn.Parameter; spike_threshold "
             "has requires_grad=False; the documented reset to V_reset is read at V_reset = 0",
    ))
  return out


def layer_candidates() -> list[Any]:
  """One layer candidate per documented option set of ``sinabs.layers.LIF``."""
  return [layer_candidate(o, _lif_run(dict(o.option))) for o in layer_options()]


def layer_snippet(layer: str, option: dict[str, Any]) -> str:
  """Standalone code defining ``run(x, v0) -> (spikes, membrane)`` for one option set (the reproducers' call)."""
  kwargs = "".join(f", {k}=sinabs.activation.{v}" if k in ("spike_fn", "reset_fn") else f", {k}={v!r}"
                   for k, v in option.items())
  return f'''import torch
import sinabs.activation
import sinabs.layers

DTYPE = torch.float32  # spikes are .float() whatever the membrane's dtype


def run(x, v0):
  layer = sinabs.layers.LIF(tau_mem=5.0, spike_threshold=torch.as_tensor(1.0), record_states=True{kwargs})
  layer.init_state_with_shape(tuple(v0.shape))
  layer.v_mem = v0
  spikes = layer(x.transpose(0, 1)).transpose(0, 1)
  return spikes, layer.recordings["v_mem"].transpose(0, 1)
'''
