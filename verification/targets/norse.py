"""norse.torch.functional threshold functions as candidates (``backend="torch"``).

Formulas as read from the installed source of norse 1.1.0 (``norse/torch/functional/threshold.py``
and ``superspike.py``). Every forward is norse's ``heaviside(x) = (x > 0).to(x.dtype)``: H(0) = 0
(a convention difference from the reference), in the input's dtype. Each ``*_fn(x, k)`` calls an
``autograd.Function`` (covered by it); the LIF neurons pass ``LIFParameters.alpha`` (default 100)
as the second argument, so that is the default checked where the function has none.

- super_fn(x, alpha=100) / SuperSpike: documented as SuperSpike (Zenke and Ganguli 2018, "beta ->
  alpha"), g = 1/(α|x| + 1)²; the backward computes ``grad_output / (|x| + 1)²``, ignoring alpha
  -> InvSquareGrad(alpha), scale 1 (agrees only at alpha = 1)
- heavi_erfc_fn(x, k) / HeaviErfc: g = 2e^(-(kx)²)/√π -> ERF(alpha=k), scale 2/k (the documented
  h = 1/2 + erfc(kx)/2 has derivative -k·e^(-(kx)²)/√π: the code drops k and the sign)
- heavi_tanh_fn(x, k) / HeaviTanh: g = 1 - tanh²(kx) = sech²(kx) -> Tanh(k), scale 1 (the
  documented h = 1/2 + tanh(kx)/2 has derivative (k/2)·sech²(kx))
- heavi_circ_fn(x, k) / HeaviCirc: g = 2α·(1/(2√(x² + α²)) - x²/(2(x² + α²)^(3/2))) = α³/(x² + α²)^(3/2)
  -> Circ(alpha=k), scale 1: 2α times the derivative of the documented, normalised primitive
  h = 1/2 + x/(2√(x² + α²)), so the mass is 2α, not 1
- triangle_fn(x, alpha=0.3) / Triangle: g = α·relu(1 - |x|) -> ReluGrad(alpha, width=1), scale 1

Layers ``LIFCell``, ``LIFRecurrentCell`` and ``LIFBoxCell`` (``norse/torch/module/{lif,lif_box}.py``,
``functional/{lif,lif_box,reset}.py`` of 1.1.0), one forward-Euler step as the code runs it::

    i' = i + x                       (the recurrent cell: i + W_in·x + W_rec·z, here W_in = 1, W_rec = 0)
    v' = v + dt·τ_mem⁻¹·(v_leak - v + i')            β = 1 - dt·τ_mem⁻¹ = 0.9, gain 1 - β (LIFBoxCell: i' = x)
    i  = i' - dt·τ_syn⁻¹·i'                          the current decays by 1 - dt·τ_syn⁻¹ = 0.8
    z  = sg(v' - v_th)                               H strict ``>``; method "super": SuperSpike
    v  = (1 - z)·v' + z·v_reset                      LIFCell (lif_feed_forward_step L345): attached;
                                                     LIFRecurrentCell (lif_step L238): z.detach() in the reset
    LIFBoxCell reset_method=reset_subtract: (1 - z)·v' + z·(v' - v_th) = v' - z·v_th, attached

The returned membrane is the state's v, after the reset. Custom surrogates are chosen by name only
(``LIFParameters.method``), so the layers take no probe surrogate. SuperSpike in 1.1.0 ignores alpha
(g = 1/(|u| + 1)²: alpha = 1 whatever is asked), so each cell is also measured at ``alpha=1`` (where the
two agree) and with ``method="triangle"`` (g = α·relu(1 - |u|) at α = 0.25, mirrored exactly: alpha is
stored as a float32 tensor whatever the dtype), which separates the wiring from the surrogate.
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
from verification.targets._common import Mapping, Params, call_string, installed_version, mapped_candidates, same
from verification.targets._layers import LayerOption, layer_candidate, layer_cites, value

PACKAGE = "norse"
MODULE = "norse.torch.functional"
MODULES = ("norse.torch.functional.threshold", "norse.torch.functional.superspike")
#: norse's LIFParameters.alpha: what the neurons pass as k where the function has no default.
LIF_ALPHA = 100.0

_FWD = "forward is (x > 0): H(0) = 0 (the reference has H(0) = 1)"


def _k(ref_name: str):
  def to_ref(lib: Params) -> tuple[Params, float]:
    return {ref_name: lib["k"]}, 1.0

  def from_ref(ref: Params) -> Params:
    return {"k": ref[ref_name]}

  return to_ref, from_ref


def _erfc_to_ref(lib: Params) -> tuple[Params, float]:
  return {"alpha": lib["k"]}, 2.0 / lib["k"]


def _triangle_to_ref(lib: Params) -> tuple[Params, float]:
  return {"alpha": lib["alpha"], "width": 1.0}, 1.0


def _triangle_from_ref(ref: Params) -> Params | None:
  return {"alpha": ref["alpha"]} if ref["width"] == 1.0 else None


MAPPINGS: tuple[Mapping, ...] = (
    Mapping("super_fn", "InvSquareGrad", *same("alpha"), covers=("SuperSpike",), extra=({"alpha": 1.0},),
        note=_FWD + "; documented SuperSpike 1/(alpha|x| + 1)^2, the backward uses 1/(|x| + 1)^2"),
    Mapping("heavi_erfc_fn", "ERF", _erfc_to_ref, lambda ref: {"k": ref["alpha"]}, covers=("HeaviErfc",),
            defaults={"k": LIF_ALPHA}, note=_FWD + "; g = 2exp(-(kx)^2)/sqrt(pi): scale 2/k"),
    Mapping("heavi_tanh_fn", "Tanh", *_k("k"), covers=("HeaviTanh",), defaults={"k": LIF_ALPHA},
            note=_FWD + "; g = sech^2(kx), not the documented h' = (k/2)sech^2(kx)"),
    Mapping("heavi_circ_fn", "Circ", *_k("alpha"), covers=("HeaviCirc",), defaults={"k": LIF_ALPHA},
            note=_FWD + "; g = 2alpha times the derivative of the documented primitive (mass 2alpha)"),
    Mapping("triangle_fn", "ReluGrad", _triangle_to_ref, _triangle_from_ref, covers=("Triangle",), note=_FWD),
)

UNMAPPED: dict[str, str] = {
    "logistic_fn": "stochastic: the forward samples Bernoulli(1/2 + tanh(kx)/2), not a step",
    "Logistic": "stochastic: the autograd Function behind logistic_fn",
    "circ_dist_fn": "stochastic: the forward samples Bernoulli(1/2 + x/(2 sqrt(x^2 + alpha^2)))",
    "CircDist": "stochastic: the autograd Function behind circ_dist_fn",
    "threshold": "dispatches by method name to heaviside or the functions checked here (super, triangle, tanh, circ, "
                 "heavi_erfc)",
    "sign": "forward 2H(x) - 1 in {-1, 1}, not the step H",
}


def version() -> str:
  """The installed norse version."""
  return installed_version(PACKAGE)


def modules() -> list[types.ModuleType]:
  """The library modules whose exports are adapted."""
  return [importlib.import_module(m) for m in MODULES]


def _namespace() -> types.SimpleNamespace:
  merged: dict[str, Any] = {}
  for mod in modules():
    merged.update({k: v for k, v in vars(mod).items() if not k.startswith("_")})
  return types.SimpleNamespace(**merged)


def _where(name: str) -> str:
  return MODULES[1] if name in ("super_fn", "SuperSpike") else MODULES[0]


def candidates() -> list[Candidate]:
  """One candidate per exported surrogate and parameter set: the torch spike function."""
  ns = _namespace()

  def build(m: Mapping, params: Params, ref: Params):
    fn = getattr(ns, m.export)
    values = dict(params)
    call = call_string(f"{_where(m.export)}.{m.export}", values).replace("(", "(x, ", 1)
    return call, torch_bridge.torch_fields(lambda t: fn(t, *values.values()))

  return mapped_candidates(PACKAGE, version(), ns, MAPPINGS, build)


# --- the layers: LIFCell, LIFRecurrentCell, LIFBoxCell -------------------------------------------------

_MOD = "norse/torch/module/lif.py"
_BOX = "norse/torch/module/lif_box.py"


def _cell_docs(path: str, euler: int, ode: int, jump: int, reset: int) -> dict[str, str]:
  step = f"{path}:{euler}: 'a single euler-integration step'; {path}:{ode}: 'v̇ = 1/τ_mem (v_leak - v + i)'"
  return {
      "leak": step, "beta_map": step, "gain": step,
      "fire_from": f"{path}:{jump}: 'z = Θ(v - v_th)'", "surrogate_arg": f"{path}:{jump}: 'z = Θ(v - v_th)'",
      "reset": f"{path}:{reset}: 'v = (1-z) v + z v_reset'", "reset_when": f"{path}:{reset}: 'v = (1-z) v + z v_reset'",
      "reset_grad": f"{path}:{reset}: 'v = (1-z) v + z v_reset' (z differentiated as written: attached)",
      "membrane_out": f"{path}:{reset}: the transition equation gives the state's v",
  }


_CELL_DEFAULT = LIFConfig(
    synapse=Synapse.ADD_THEN_DECAY, leak=Leak.TOWARD_LEAK, beta_map=BetaMap.ONE_MINUS_DT_OVER_TAU,
    gain=Gain.ONE_MINUS_BETA, fire_from=FireFrom.CURRENT, surrogate_arg=SurrogateArg.V_MINUS_THETA,
    spike_forward=SpikeForward.GT, reset=Reset.TO_VALUE, reset_when=ResetWhen.IMMEDIATE,
    reset_grad=ResetGrad.ATTACHED, membrane_out=MembraneOut.POST_RESET, theta_grad=ThetaGrad.AUTODIFF,
)
#: alpha 0.25: norse stores alpha as a float32 tensor (``torch.as_tensor(p.alpha)``), exact only for such values
_TRIANGLE = {"method": "triangle", "alpha": 0.25}
#: SuperSpike at alpha = 1, where 1.1.0's backward (which ignores alpha) and the documented one agree
_SUPER_1 = {"alpha": 1.0}
#: layer -> (documentation lines: euler, ODE, jump, transition), its options
_CELLS: dict[str, tuple[str, tuple[int, int, int, int], tuple[dict[str, Any], ...]]] = {
    "LIFCell": (_MOD, (30, 38, 45, 51), ({}, _SUPER_1, _TRIANGLE)),
    "LIFRecurrentCell": (_MOD, (104, 111, 118, 124), ({}, _SUPER_1, _TRIANGLE)),
    "LIFBoxCell": (_BOX, (17, 24, 29, 34), ({}, _SUPER_1, _TRIANGLE, {"reset_method": "reset_subtract", **_TRIANGLE})),
}


def _cell_config(layer: str, option: dict[str, Any]) -> tuple[LIFConfig, dict[str, str]]:
  path, lines, _ = _CELLS[layer]
  docs = _cell_docs(path, *lines)
  if layer == "LIFBoxCell":  # "without current terms": the input is the current
    docs["synapse"] = f"{_BOX}:17: 'a lif neuron-model without current terms'"
    return dataclasses.replace(_CELL_DEFAULT, synapse=Synapse.NONE), docs
  docs["synapse"] = (f"{_MOD}:125: 'i = i + w_input z_in'" if layer == "LIFRecurrentCell"
                     else "not stated in the documentation; read from the code")
  return _CELL_DEFAULT, docs


def _cell_surrogate(option: dict[str, Any]) -> tuple[str, dict[str, float]]:
  if option.get("method") == "triangle":
    return "ReluGrad", {"alpha": float(option["alpha"]), "width": 1.0}
  return "InvSquareGrad", {"alpha": float(option.get("alpha", LIF_ALPHA))}


def _cell_run(layer: str, option: dict[str, Any]):
  import torch

  module = importlib.import_module("norse.torch")
  lif = importlib.import_module("norse.torch.functional.lif")
  box = importlib.import_module("norse.torch.functional.lif_box")
  method, alpha = option.get("method", "super"), option.get("alpha", LIF_ALPHA)

  def run(x, v0, p, g=None):
    n = x.shape[-1]
    i0 = torch.zeros_like(v0)
    if layer == "LIFBoxCell":
      resets = importlib.import_module("norse.torch.functional.reset")
      reset = getattr(resets, option.get("reset_method", "reset_value"))
      params = box.LIFBoxParameters(tau_mem_inv=p["beta"], v_leak=p["v_leak"], v_th=p["theta"],
                                           v_reset=p["v_reset"], method=method, alpha=torch.as_tensor(alpha),
                                           reset_method=reset)
      cell, state = module.LIFBoxCell(params, dt=value(p["dt"])), box.LIFBoxFeedForwardState(v=v0)
    else:
      params = lif.LIFParameters(tau_syn_inv=p["alpha_syn"], tau_mem_inv=p["beta"], v_leak=p["v_leak"],
                                        v_th=p["theta"], v_reset=p["v_reset"], method=method, alpha=alpha)
      if layer == "LIFCell":
        cell, state = module.LIFCell(params, dt=value(p["dt"])), lif.LIFFeedForwardState(v=v0, i=i0)
      else:
        eye = torch.eye(n, dtype=x.dtype)
        cell = module.LIFRecurrentCell(n, n, params, input_weights=eye, recurrent_weights=torch.zeros_like(eye),
                                       dt=value(p["dt"])).to(x.dtype)
        state = lif.LIFState(z=torch.zeros_like(v0), v=v0, i=i0)
    spikes, mems = [], []
    for t in range(x.shape[0]):
      z, state = cell(x[t], state)
      spikes.append(z)
      mems.append(state.v)
    leaves = {k: p[k] for k in ("beta", "alpha_syn", "theta", "v_reset", "v_leak") if torch.is_tensor(p[k])}
    return torch.stack(spikes), torch.stack(mems), leaves

  return run


def layer_options() -> list[LayerOption]:
  """The cells' defaults and options, with the configuration their documentation states."""
  out = []
  for layer, (_, _, options) in _CELLS.items():
    for option in options:
      documented, docs = _cell_config(layer, option)
      if option.get("reset_method") == "reset_subtract":
        documented = dataclasses.replace(documented, reset=Reset.SUBTRACT_THETA)
        docs["reset"] = "norse/torch/functional/reset.py:22: 'def reset_subtract' (no docstring; the name)"
      out.append(LayerOption(
          library=PACKAGE, version=version(), layer=layer, option=option, documented=documented,
          cites=layer_cites(docs),
          params={"beta": 100.0, "alpha_syn": 200.0, "dt": 1e-3, "theta": 1.0, "v_reset": 0.0, "v_leak": 0.0},
          surrogate=_cell_surrogate(option), learnable=(), dtype="float64",
          note="no parameter is registered (LIFParameters is a NamedTuple of tensors); the initial current is 0",
      ))
  return out


def layer_candidates() -> list[Any]:
  """One layer candidate per documented option set of the cells (no probe surrogate: norse names its surrogates)."""
  return [layer_candidate(o, _cell_run(o.layer, dict(o.option)), accepts_probe=False) for o in layer_options()]


def layer_snippet(layer: str, option: dict[str, Any]) -> str:
  """Standalone code defining ``run(x, v0) -> (spikes, membrane)`` for one cell and option set (the reproducers')."""
  method, alpha = option.get("method", "super"), float(option.get("alpha", LIF_ALPHA))
  if layer == "LIFBoxCell":
    reset = option.get("reset_method", "reset_value")
    build = (f"cell = norse.torch.LIFBoxCell(lif_box.LIFBoxParameters(**BOX, method={method!r}, "
             f"alpha=torch.as_tensor({alpha}), reset_method=norse.torch.functional.reset.{reset}), dt=0.001)\n"
             "  state = lif_box.LIFBoxFeedForwardState(v=v0)")
  elif layer == "LIFCell":
    build = (f"cell = norse.torch.LIFCell(lif.LIFParameters(**P, method={method!r}, alpha={alpha}), dt=0.001)\n"
             "  state = lif.LIFFeedForwardState(v=v0, i=torch.zeros_like(v0))")
  else:
    build = ("eye = torch.eye(x.shape[-1], dtype=x.dtype)\n"
             "  cell = norse.torch.LIFRecurrentCell(x.shape[-1], x.shape[-1], "
             f"lif.LIFParameters(**P, method={method!r}, alpha={alpha}), input_weights=eye, "
             "recurrent_weights=0 * eye, dt=0.001).to(x.dtype)\n"
             "  state = lif.LIFState(z=torch.zeros_like(v0), v=v0, i=torch.zeros_like(v0))")
  return f'''import torch
import norse.torch
import norse.torch.functional.reset
from norse.torch.functional import lif, lif_box

DTYPE = torch.float64
# the defaults, as float64 tensors (LIFParameters' own defaults are float32)
BOX = {{k: torch.tensor(v, dtype=DTYPE) for k, v in dict(tau_mem_inv=100.0, v_leak=0.0, v_th=1.0, v_reset=0.0).items()}}
P = {{**BOX, "tau_syn_inv": torch.tensor(200.0, dtype=DTYPE)}}


def run(x, v0):
  {build}
  spikes, membrane = [], []
  for t in range(x.shape[0]):
    z, state = cell(x[t], state)
    spikes.append(z)
    membrane.append(state.v)
  return torch.stack(spikes), torch.stack(membrane)
'''
