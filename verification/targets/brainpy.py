"""brainpy.math.surrogate as candidates: in brainpy 2.8.2 it is braintools' module itself.

``brainpy/math/__init__.py`` sets ``surrogate = braintools.surrogate``: the same classes and
functional forms, so the formulas, mappings and unmapped names are braintools' (see
:mod:`verification.targets.braintools`), reached through brainpy's name. What is checked is that
brainpy exports them unchanged, with the braintools version brainpy installs.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

import jax

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
from verification.core.candidate import Candidate
from verification.targets import braintools as _braintools
from verification.targets._common import Mapping, call_string, installed_version, mapped_candidates

PACKAGE = "brainpy"
MODULE = "brainpy.math.surrogate"
MAPPINGS = _braintools.MAPPINGS
UNMAPPED = dict(_braintools.UNMAPPED)


def version() -> str:
  """The installed brainpy version."""
  return installed_version(PACKAGE)


def module() -> types.ModuleType:
  """``brainpy.math.surrogate`` (an attribute of brainpy.math, not a submodule), keeping JAX's 64-bit
  setting as it was (brainpy imports brainstate, which turns it off)."""
  x64 = bool(jax.config.jax_enable_x64)
  try:
    return importlib.import_module("brainpy.math").surrogate
  finally:
    jax.config.update("jax_enable_x64", x64)


def modules() -> list[types.ModuleType]:
  """The library modules whose exports are adapted."""
  return [module()]


def candidates() -> list[Candidate]:
  """One candidate per exported surrogate and parameter set, as for braintools."""
  mod = module()

  def build(m: Mapping, params: dict, ref: dict):
    call = call_string(f"{MODULE}.{m.export}", params)
    if m.export not in _braintools._SURROGATES:  # a functional form: the input comes first
      call = call.replace("(", "(x, ", 1)
    return call, _braintools._build(mod, m, params)

  return mapped_candidates(PACKAGE, version(), mod, MAPPINGS, build)


# --- the layer: brainpy.state.LIF ---------------------------------------------------------------------
#
# One step as ``LIF.update`` runs it (brainpy 2.8.2 re-exports ``brainpy_state`` 0.1.0 as ``brainpy.state``;
# ``brainpy_state/_brainpy/lif.py`` L278-293)::
#
#     S' = spk_fun((V - θ)/(θ - V_reset))          L280-285: the previous membrane's spike
#     V = V - (θ - V_reset)·S'                      L286-287 soft; hard: (sg(V) - V_reset)·S'
#     V = exp_euler(dv, V),  dv = (-V + V_rest + R·x)/τ   L289-290: V = β·V + (1 - β)(V_rest + R·x), β = e^(-dt/τ)
#     return spk_fun((V - θ)/(θ - V_reset))         L293
#
# The layer runs unitless (floats for R, τ, θ, V_reset, V_rest) with dt = 1 from brainstate's environment; its
# state V is a HiddenState, set to v0 after ``init_state``. JAX candidate: a fresh layer per run, a Python loop.

_BLIF = "brainpy_state/_brainpy/lif.py"
BRAINPY_DOCS: dict[str, str] = {
    "leak": f"{_BLIF}:173: 'τ dV/dt = -(V - V_rest) + R·I(t)'",
    "gain": f"{_BLIF}:173: 'τ dV/dt = -(V - V_rest) + R·I(t)'; {_BLIF}:220: 'The time-dependent dynamics are "
            "integrated using an exponential Euler method.'",
    "beta_map": f"{_BLIF}:220: 'The time-dependent dynamics are integrated using an exponential Euler method.'",
    "spike_forward": f"{_BLIF}:177: 'If V ≥ V_th: emit spike and reset V = V_reset'",
    "reset": f"{_BLIF}:199: \"'soft': subtract threshold V = V - V_th\" (spk_reset default 'soft', L197)",
}
BRAINPY_DEFAULT = LIFConfig(
    synapse=Synapse.NONE, leak=Leak.TOWARD_LEAK, beta_map=BetaMap.EXP_MINUS_DT_OVER_TAU,
    gain=Gain.PARAM_ONE_MINUS_BETA, fire_from=FireFrom.CURRENT, surrogate_arg=SurrogateArg.V_MINUS_THETA_OVER_RANGE,
    spike_forward=SpikeForward.GE, reset=Reset.SUBTRACT_THETA, reset_when=ResetWhen.NEXT_BEFORE_LEAK,
    reset_grad=ResetGrad.ATTACHED, membrane_out=MembraneOut.POST_RESET, theta_grad=ThetaGrad.AUTODIFF,
)
_HARD_DOC = f"{_BLIF}:200: \"'hard': strict reset using stop_gradient\"; {_BLIF}:177: 'reset V = V_reset'"
#: option -> (the documented configuration's changes, their citations, parameter changes)
BRAINPY_OPTIONS: tuple[tuple[dict[str, Any], dict[str, Any], dict[str, str], dict[str, float]], ...] = (
    ({"V_reset": -0.3}, {}, {}, {"v_reset": -0.3}),  # first: where the reset's forward shows θ - V_reset
    ({}, {}, {}, {}),
    ({"spk_reset": "hard"}, {"reset": Reset.TO_VALUE, "reset_grad": ResetGrad.DETACHED},
     {"reset": _HARD_DOC, "reset_grad": _HARD_DOC}, {}),
    ({"spk_reset": "hard", "V_reset": -0.3}, {"reset": Reset.TO_VALUE, "reset_grad": ResetGrad.DETACHED},
     {"reset": _HARD_DOC, "reset_grad": _HARD_DOC}, {"v_reset": -0.3}),
)


def _state_module() -> types.ModuleType:
  """(brainpy, brainstate, braintools), keeping JAX's 64-bit setting as it was."""
  x64 = bool(jax.config.jax_enable_x64)
  try:
    return types.SimpleNamespace(**{n: importlib.import_module(n) for n in ("brainpy", "brainstate", "braintools")})
  finally:
    jax.config.update("jax_enable_x64", x64)


def _lif_run(option: dict[str, Any]):
  import jax.numpy as jnp

  from verification.targets._layers import jax_spike

  mods = _state_module()

  def run(x, v0, p, g=None):
    kwargs = {"spk_reset": option["spk_reset"]} if "spk_reset" in option else {}
    if g is not None:
      kwargs["spk_fun"] = jax_spike(g, ge=True)  # braintools' forward is x >= 0
    with mods.brainstate.environ.context(dt=p["dt"]):
      layer = mods.brainpy.state.LIF(x.shape[-1], R=p["gain"], tau=p["beta"], V_th=p["theta"], V_reset=p["v_reset"],
                                     V_rest=p["v_leak"], **kwargs)
      layer.init_state(batch_size=x.shape[1])
      layer.V.value = v0
      spikes, membrane = [], []
      for t in range(x.shape[0]):
        spikes.append(layer.update(x[t]))
        membrane.append(layer.V.value)
    return jnp.stack(spikes), jnp.stack(membrane), {}

  return run


def layer_options() -> list[Any]:
  """brainpy.state.LIF's defaults and options, with the configuration its docstring states."""
  import dataclasses

  from verification.targets._layers import LayerOption, layer_cites

  out = []
  for option, changes, option_cites, params in BRAINPY_OPTIONS:
    out.append(LayerOption(
        library=PACKAGE, version=version(), layer="state.LIF", option=option,
        documented=dataclasses.replace(BRAINPY_DEFAULT, **changes), cites=layer_cites({**BRAINPY_DOCS, **option_cites}),
        params={"beta": 5.0, "theta": 1.0, "v_reset": 0.0, "v_leak": 0.0, "gain": 1.0, "dt": 1.0, **params},
        surrogate=("ReluGrad", {"alpha": 0.3, "width": 1.0}), learnable=(), varies=("theta",), framework="jax",
        note="run unitless (R, tau, V_th, V_reset, V_rest floats, dt = 1 from brainstate.environ); nothing is a "
             "ParamState by default, so nothing is learnable unless the user wraps it",
    ))
  return out


def layer_candidates() -> list[Any]:
  """One layer candidate per documented option set of ``brainpy.state.LIF``."""
  from verification.targets._layers import layer_candidate

  return [layer_candidate(o, _lif_run(dict(o.option))) for o in layer_options()]


def layer_snippet(layer: str, option: dict[str, Any]) -> str:
  """Standalone code defining ``run(x, v0) -> (spikes, membrane)`` for one option set (the reproducers' call)."""
  kwargs = "".join(f", {k}={v!r}" for k, v in option.items())
  if "V_reset" not in option:
    kwargs += ", V_reset=0.0"
  return f'''import brainpy
import brainstate
import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)  # after brainpy's import, which turns it off
DTYPE = jnp.float64


def run(x, v0):
  with brainstate.environ.context(dt=1.0):
    layer = brainpy.state.LIF(x.shape[-1], R=1.0, tau=5.0, V_th=1.0, V_rest=0.0{kwargs})
    layer.init_state(batch_size=x.shape[1])
    layer.V.value = v0
    spikes, membrane = [], []
    for t in range(x.shape[0]):
      spikes.append(layer.update(x[t]))
      membrane.append(layer.V.value)
  return jnp.stack(spikes), jnp.stack(membrane)
'''


#: Layers of the library not measured, and why (listed with the results).
LAYERS_NOT_RUN = {"brainpy.dyn.Lif": "no layer adapter yet (training-mode soft reset, detach_spk)"}
