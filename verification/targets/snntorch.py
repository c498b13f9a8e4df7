"""snntorch.surrogate as candidates (``backend="torch"``): torch autograd on the CPU, and torch's transforms.

Formulas as read from the installed source of snntorch 1.0.0 (``snntorch/surrogate.py``). Every
forward is ``(x > 0).float()``: H(0) = 0 (a convention difference from the reference) and the
output is float32 whatever the input's dtype. Each factory returns a closure over an
``autograd.Function``; the exported class is covered by its factory, except where noted.

- straight_through_estimator(): g = 1 -> StraightThrough(), scale 1
- triangular(threshold=1): g = threshold for x < 0, -threshold for x >= 0 (the derivative of a
  triangle, as its docstring says, not a triangular window) -> LeakyRelu(alpha=t, beta=-t), scale 1
- fast_sigmoid(slope=25): g = 1/(slope·|x| + 1)² -> InvSquareGrad(alpha=slope), scale 1
- atan(alpha=2): g = (α/2)/(1 + (παx/2)²) -> Arctan(alpha), scale 1
- heaviside(): g = (x > 0), the forward's own output -> LeakyRelu(alpha=0, beta=1), scale 1 (g(0) = 0 there)
- sigmoid(slope=25): g = slope·e^(-slope·x)/(e^(-slope·x) + 1)² -> Sigmoid(alpha=slope), scale 1
- spike_rate_escape(beta=1, slope=25): g = slope·e^(-β|x - 1|) -> SpikeRateEscape(beta, slope), scale 1
- SFS(slope=25, B=1): g = (x > B)/(slope·|x| + 1)² -> SparseFastSigmoid(slope, b=B), scale 1
- LSO(slope=0.1): documented g = 1 for x > 0, slope otherwise -> LeakyRelu(alpha=slope, beta=1), scale 1;
  the factory calls ``StochasticSpikeOperator.apply(x, slope)``, which takes (x, mean, variance)
- LeakySpikeOperator.apply(x, slope): g = out + slope·(1 - out) with out = (x > 0) -> the same
  LeakyRelu; its backward returns one gradient for two inputs

Layer ``snntorch.Leaky`` (``snntorch/_neurons/leaky.py``, ``neurons.py`` of 1.0.0), one step as the code runs it
(``forward``, L196-236)::

    r_t = H(U_{t-1} - θ)           detached (mem_reset: ``spike_grad(mem - θ).clone().detach()``), H strict ``>``
    U_t = clamp(β, 0, 1)·U_{t-1} + x_t - r_t·θ          subtract (zero: clamp(β)·(1 - r_t)·U_{t-1} + x_t; none: no r)
    S_t = g_s·sg(U_t - θ)                              surrogate atan(alpha=2) on U - θ
    reset_delay=False: U_t -= (S_t/g_s - r_t)·θ        (zero: U_t -= (S_t/g_s - r_t)·U_t): same step, attached

The returned membrane is U_t (before its own reset, which the next step applies). Spikes are
``(x > 0).float()``: float32 whatever the membrane's dtype (the layer runs in float64 otherwise). An initial
membrane whose shape differs from the input's is silently replaced by zeros (L206), so ``v0`` is fed at the
input's shape.
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
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
from verification.targets._common import (
  Mapping,
  Params,
  call_string,
  installed_version,
  mapped_candidates,
  renamed,
  same,
)
from verification.targets._layers import LayerOption, layer_candidate, layer_cites

PACKAGE = "snntorch"
MODULE = "snntorch.surrogate"

_FWD = "forward is (x > 0).float(): H(0) = 0 (the reference has H(0) = 1) and float32 output for every dtype"


def _triangular_to_ref(lib: Params) -> tuple[Params, float]:
  return {"alpha": lib["threshold"], "beta": -lib["threshold"]}, 1.0


def _leaky_to_ref(lib: Params) -> tuple[Params, float]:
  return {"alpha": lib["slope"], "beta": 1.0}, 1.0


def _leaky_from_ref(ref: Params) -> Params | None:
  return {"slope": ref["alpha"]} if ref["beta"] == 1.0 else None


MAPPINGS: tuple[Mapping, ...] = (
    Mapping(
        "straight_through_estimator", "StraightThrough", lambda lib: ({}, 1.0),
        covers=("StraightThroughEstimator",), note=_FWD,
    ),
    Mapping(
        "triangular", "LeakyRelu", _triangular_to_ref, covers=("Triangular",), extra=({"threshold": 0.25},),
        note=_FWD + "; named triangular, its gradient is +threshold below 0 and -threshold from 0 on",
    ),
    Mapping("fast_sigmoid", "InvSquareGrad", *renamed({"slope": "alpha"}), covers=("FastSigmoid",), note=_FWD),
    Mapping("atan", "Arctan", *same("alpha"), covers=("ATan",), note=_FWD),
    Mapping(
        "heaviside", "LeakyRelu", lambda lib: ({"alpha": 0.0, "beta": 1.0}, 1.0), covers=("Heaviside",),
        note=_FWD + "; g is the forward's output, so g(0) = 0 where the reference gives beta = 1",
    ),
    Mapping("sigmoid", "Sigmoid", *renamed({"slope": "alpha"}), covers=("Sigmoid",), note=_FWD),
    Mapping(
        "spike_rate_escape", "SpikeRateEscape", *same("beta", "slope"), covers=("SpikeRateEscape",), note=_FWD,
    ),
    Mapping(
        "SFS", "SparseFastSigmoid", *renamed({"slope": "slope", "B": "b"}), covers=("SparseFastSigmoid",), note=_FWD,
    ),
    Mapping("LSO", "LeakyRelu", _leaky_to_ref, _leaky_from_ref, note=_FWD),
    Mapping("LeakySpikeOperator", "LeakyRelu", _leaky_to_ref, _leaky_from_ref, defaults={"slope": 0.1}, note=_FWD),
)

UNMAPPED: dict[str, str] = {
    "SSO": "stochastic: below threshold the gradient is uniform noise (torch.rand_like)",
    "StochasticSpikeOperator": "stochastic: the autograd Function behind SSO",
    "custom_surrogate": "the gradient is a user-supplied function (no formula of the library's own)",
    "CustomSurrogate": "the autograd Function behind custom_surrogate (user-supplied gradient)",
}

#: Exported autograd Functions called directly (``Class.apply(x, *values)``), not through a factory.
_APPLY = {"LeakySpikeOperator"}


def version() -> str:
  """The installed snntorch version."""
  return installed_version(PACKAGE)


def _module() -> ModuleType:
  return importlib.import_module(MODULE)


def _spike(mod: ModuleType, m: Mapping, params: Params) -> Any:
  target = getattr(mod, m.export)
  if m.export in _APPLY:
    values = tuple(params.values())
    return lambda t: target.apply(t, *values)
  return target(**params)


def _call(m: Mapping, params: Params) -> str:
  if m.export in _APPLY:
    return f"{MODULE}.{m.export}.apply(x, {', '.join(repr(v) for v in params.values())})"
  return call_string(f"{MODULE}.{m.export}", params) + "(x)"


def candidates() -> list[Candidate]:
  """One candidate per exported surrogate and parameter set: forward and VJP through torch."""
  mod = _module()

  def build(m: Mapping, params: Params, ref: Params):
    return _call(m, params), torch_bridge.torch_fields(_spike(mod, m, params))

  return mapped_candidates(PACKAGE, version(), mod, MAPPINGS, build)


# --- the layer: snntorch.Leaky -------------------------------------------------------------------------

_LEAKY = "snntorch/_neurons/leaky.py"
_NEURONS = "snntorch/_neurons/neurons.py"

#: What Leaky's documentation states (snntorch 1.0.0), field by field, with the line it comes from.
LEAKY_DOCS: dict[str, str] = {
    "synapse": f"{_LEAKY}:9: 'Input is assumed to be a current injection.'",
    "leak": f"{_LEAKY}:18: 'U[t+1] = βU[t] + I_in[t+1] - RU_thr'",
    "beta_map": f"{_LEAKY}:61: 'beta: membrane potential decay rate. Clipped between 0 and 1 during the forward-pass.'",
    "gain": f"{_LEAKY}:18: 'U[t+1] = βU[t] + I_in[t+1] - RU_thr'",
    "fire_from": f"{_LEAKY}:11: 'For U[T] > U_thr ⇒ S[T+1] = 1'; {_LEAKY}:116: 'reset_delay: If True, a spike is "
                 "returned with a one-step delay after the threshold is reached. Defaults to True'",
    "surrogate_arg": f"{_LEAKY}:71: 'spike_grad: Surrogate gradient for the term dS/dU'",
    "spike_forward": f"{_LEAKY}:11: 'For U[T] > U_thr ⇒ S[T+1] = 1'",
    "reset": f"{_LEAKY}:13: 'If reset_mechanism = \"subtract\", then U[t+1] will have threshold subtracted from it "
             "whenever the neuron emits a spike'",
    "reset_when": f"{_LEAKY}:18: 'U[t+1] = βU[t] + I_in[t+1] - RU_thr' (R from the spike S[t+1] of line 11)",
    "reset_grad": f"{_NEURONS}:103: 'mem_reset: Generates detached reset signal if mem > threshold.'",
}
#: The documented configuration of the defaults: the spike of U[t] emitted at t+1 (line 11), the reset in
#: that same update after the leak (line 18), i.e. a spike from the previous membrane with an immediate reset.
LEAKY_DEFAULT = LIFConfig(
    synapse=Synapse.NONE, leak=Leak.MULTIPLY, beta_map=BetaMap.CLAMP_0_1, gain=Gain.ONE,
    fire_from=FireFrom.PREVIOUS, surrogate_arg=SurrogateArg.V_MINUS_THETA, spike_forward=SpikeForward.GT,
    reset=Reset.SUBTRACT_THETA, reset_when=ResetWhen.IMMEDIATE, reset_grad=ResetGrad.DETACHED,
    membrane_out=MembraneOut.POST_RESET, theta_grad=ThetaGrad.AUTODIFF,
)
_ZERO_DOC = (f"{_LEAKY}:20: 'If reset_mechanism = \"zero\", then U[t+1] will be set to 0 whenever the neuron emits a "
             "spike: U[t+1] = βU[t] + I_syn[t+1] - R(βU[t] + I_in[t+1])'")
_NONE_DOC = f"{_LEAKY}:97: 'Reset-by-subtraction: \"subtract\", reset-to-zero: \"zero\", none: \"none\"'"
_DELAY_DOC = (f"{_LEAKY}:116: 'reset_delay: If True, a spike is returned with a one-step delay after the threshold "
              "is reached' (False: the spike is returned in the step it is reached)")

#: option -> (the documented configuration's changes from the defaults', the citation of each change)
LEAKY_OPTIONS: tuple[tuple[dict[str, Any], dict[str, Any], dict[str, str]], ...] = (
    ({}, {}, {}),
    ({"reset_mechanism": "zero"}, {"reset": Reset.TO_ZERO}, {"reset": _ZERO_DOC, "reset_when": _ZERO_DOC}),
    ({"reset_mechanism": "none"}, {"reset": Reset.NONE}, {"reset": _NONE_DOC}),
    ({"reset_delay": False}, {"fire_from": FireFrom.CURRENT}, {"fire_from": _DELAY_DOC}),
    ({"reset_delay": False, "reset_mechanism": "zero"}, {"fire_from": FireFrom.CURRENT, "reset": Reset.TO_ZERO},
     {"fire_from": _DELAY_DOC, "reset": _ZERO_DOC, "reset_when": _ZERO_DOC}),
    ({"learn_beta": True}, {}, {}),
    ({"learn_threshold": True}, {}, {}),
    ({"graded_spikes_factor": 2.0}, {}, {}),
)
_LEARN_DOC = {
    "beta": f"{_LEAKY}:90: 'learn_beta: Option to enable learnable beta. Defaults to False'",
    "theta": f"{_LEAKY}:93: 'learn_threshold: Option to enable learnable threshold. Defaults to False'",
}


def _leaky_run(option: dict[str, Any]):
  import torch

  snn = importlib.import_module("snntorch")
  surrogate = importlib.import_module("snntorch.surrogate")

  def run(x, v0, p, g=None):
    spike_grad = surrogate.atan(alpha=2.0) if g is None else surrogate.custom_surrogate(
        lambda u, grad, out: grad * g(u))
    layer = snn.Leaky(beta=p["beta"], threshold=p["theta"], spike_grad=spike_grad, graded_spikes_factor=p["g_s"],
                      **{k: v for k, v in option.items() if k != "graded_spikes_factor"})
    mem, spikes, mems = v0, [], []
    for t in range(x.shape[0]):
      spk, mem = layer(x[t], mem)
      spikes.append(spk)
      mems.append(mem)
    leaves = {name: getattr(layer, attr) for name, attr in (("beta", "beta"), ("theta", "threshold"),
                                                            ("g_s", "graded_spikes_factor"))
              if torch.is_tensor(getattr(layer, attr)) and getattr(layer, attr).requires_grad}
    return torch.stack(spikes), torch.stack(mems), leaves

  return run


def layer_options() -> list[LayerOption]:
  """Leaky's defaults and each option, with the configuration the documentation states for it."""
  out = []
  for option, changes, option_cites in LEAKY_OPTIONS:
    learnable = tuple(n for n, flag in (("beta", "learn_beta"), ("theta", "learn_threshold")) if option.get(flag))
    out.append(LayerOption(
        library=PACKAGE, version=version(), layer="Leaky", option=option,
        documented=dataclasses.replace(LEAKY_DEFAULT, **changes),
        cites=layer_cites({**LEAKY_DOCS, **option_cites, **{f"learnable {n}": _LEARN_DOC[n] for n in learnable}}),
        params={"beta": 0.8, "theta": 1.0, "g_s": float(option.get("graded_spikes_factor", 1.0))},
        surrogate=("Arctan", {"alpha": 2.0}), learnable=learnable, varies=("theta",), dtype="float32",
        note="spikes are (x > 0).float(): float32 whatever the membrane's dtype, so the layer is run and judged "
             "in float32",
    ))
  return out


def layer_candidates() -> list[Any]:
  """One layer candidate per documented option set of ``snntorch.Leaky``."""
  return [layer_candidate(o, _leaky_run(dict(o.option))) for o in layer_options()]


def layer_snippet(layer: str, option: dict[str, Any]) -> str:
  """Standalone code defining ``run(x, v0) -> (spikes, membrane)`` for one option set (the reproducers' call)."""
  kwargs = "".join(f", {k}={v!r}" for k, v in option.items())
  return f'''import torch
import snntorch

DTYPE = torch.float32  # spikes are (x > 0).float() whatever the membrane's dtype


def run(x, v0):
  layer = snntorch.Leaky(beta=0.8, threshold=1.0, spike_grad=snntorch.surrogate.atan(alpha=2.0){kwargs})
  mem, spikes, membrane = v0, [], []
  for t in range(x.shape[0]):
    spk, mem = layer(x[t], mem)
    spikes.append(spk)
    membrane.append(mem)
  return torch.stack(spikes), torch.stack(membrane)
'''
