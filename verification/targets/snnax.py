"""snnax.functional.surrogate as candidates (``backend="jax"``).

Formulas as read from the installed source of snnax 0.0.1 (``snnax/functional/surrogate.py``).
``import snnax`` fails in 0.0.1 (``snnax/snn/__init__.py`` imports ``snnax.snn.init``, which the
wheel does not contain), so the surrogate module is loaded from its file; it needs only jax and
chex. Each factory returns a ``jax.custom_jvp`` function with forward ``jnp.heaviside(x, 1.)``
(H(0) = 1, the reference's convention).

- superspike_surrogate(beta=10): documented as SuperSpike (Zenke and Vogels 2021: 1/(β|x| + 1)²);
  the tangent is ẋ/(1 + β|x|), not squared -> InvSquareGrad(alpha=beta), scale 1 (what the code
  computes is NonzeroSignLog(alpha=beta)/beta)
- sigmoid_surrogate(beta=1): tangent ``jnn.sigmoid(x, beta)·(1 - beta·jnn.sigmoid(x, beta))·ẋ``;
  ``jax.nn.sigmoid`` takes one argument, so every derivative raises TypeError. Documented as the
  sigmoid surrogate (the derivative of σ(βx)) -> Sigmoid(alpha=beta), scale 1
- piecewise_surrogate(beta=0.5): g = 1 for -β < x < β, else 0 -> Boxcar(width=2β, height=1), scale 1
  (g = 0 at exactly |x| = β, where the reference includes the ends)
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
import types
from pathlib import Path
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
from verification.core.candidate import Candidate
from verification.targets._common import (
  Mapping,
  Params,
  call_string,
  installed_version,
  mapped_candidates,
  renamed,
)

PACKAGE = "snnax"
MODULE = "snnax.functional.surrogate"


def _boxcar_to_ref(lib: Params) -> tuple[Params, float]:
  return {"width": 2.0 * lib["beta"], "height": 1.0}, 1.0


def _boxcar_from_ref(ref: Params) -> Params | None:
  return {"beta": ref["width"] / 2.0} if math.isclose(ref["height"], 1.0) else None


MAPPINGS: tuple[Mapping, ...] = (
    Mapping("superspike_surrogate", "InvSquareGrad", *renamed({"beta": "alpha"}),
            note="documented SuperSpike 1/(beta|x| + 1)^2; the tangent is 1/(1 + beta|x|), not squared"),
    Mapping("sigmoid_surrogate", "Sigmoid", *renamed({"beta": "alpha"}),
            note="the tangent calls jax.nn.sigmoid(x, beta), which takes one argument"),
    Mapping("piecewise_surrogate", "Boxcar", _boxcar_to_ref, _boxcar_from_ref,
            note="g = 0 at exactly |x| = beta (the reference includes the ends)"),
)

UNMAPPED: dict[str, str] = {}


def version() -> str:
  """The installed snnax version."""
  return installed_version(PACKAGE)


def module() -> types.ModuleType:
  """``snnax.functional.surrogate``, imported normally or, where ``import snnax`` fails, from its file."""
  try:
    return importlib.import_module(MODULE)
  except ImportError:
    for name in [n for n in sys.modules if n == "snnax" or n.startswith("snnax.")]:
      del sys.modules[name]  # the half-initialised package of the failed import
  spec = importlib.util.find_spec("snnax")
  if spec is None or not spec.submodule_search_locations:
    raise ImportError("snnax is not installed")
  path = Path(next(iter(spec.submodule_search_locations))) / "functional" / "surrogate.py"
  file_spec = importlib.util.spec_from_file_location(MODULE, path)
  mod = importlib.util.module_from_spec(file_spec)
  file_spec.loader.exec_module(mod)
  return mod


def modules() -> list[types.ModuleType]:
  """The library modules whose exports are adapted."""
  return [module()]


def candidates() -> list[Candidate]:
  """One candidate per exported surrogate and parameter set: the factory's spike function."""
  mod = module()

  def build(m: Mapping, params: Params, ref: Params):
    return call_string(f"{MODULE}.{m.export}", params) + "(x)", {"fn": getattr(mod, m.export)(**params)}

  return mapped_candidates(PACKAGE, version(), mod, MAPPINGS, build)


# --- the layer: snnax.snn.LIF (equinox) ---------------------------------------------------------------
#
# One step as ``LIF.__call__`` of 0.0.1 runs it (``snnax/snn/layers/lif.py`` L151-171), state [v, i, S]::
#
#     r = v·S  (reset_val None)  or  (v - reset_val)·S        L153-156: the PREVIOUS step's spike
#     v = v - stop_gradient(r)   (stop_reset_grad=True)       L159-160: reset before the leak, detached
#     α = clamp(0.5, d[0], 1);  β = clamp(0.5, d[1], 1)       L162-163: decays below 0.5 silently raised
#     v = α·v + (1 - α)·i                                     L165: the previous step's current
#     i = β·i + (1 - β)·x                                     L166: the input reaches v one step late
#     S = spike_fn(v - θ)                                     L168: superspike_surrogate(10.), H(0) = 1
#
# ``import snnax`` fails in 0.0.1 (see ``module``), so the layer module is imported from its files under a
# private package name where the normal import fails. A JAX candidate: its run builds the module from the
# parameters passed in (decay_constants = [β, β_syn]) and loops over time in Python; the spike it carries in
# its state starts as its own spike of v0 (the reference's previous spike at t = 0 is H(v0 - θ)).

_LIF = "snnax/snn/layers/lif.py"
LAYER_MODULE = "snnax.snn.layers.lif"
SNNAX_DOCS: dict[str, str] = {
    "beta_map": f"{_LIF}:111-113: '`decay_constants`: Decay constants for the LIF neuron. Index 0 describes the "
                "decay constant of the membrane potential, Index 1 describes the decay constant of the synaptic "
                "current.'",
    "synapse": f"{_LIF}:89-91: 'Implementation of a leaky integrate-and-fire neuron with synaptic currents. Requires "
               "two decay constants to describe decay of membrane potential and synaptic current.'",
    "reset": f"{_LIF}:116: '`reset_val`: Reset value after a spike has been emitted. Defaults to None.'",
    "reset_grad": f"{_LIF}:118: '`stop_reset_grad`: Boolean to control if the gradient is propagated through the "
                  "refectory potential.' (default True, L103)",
}
SNNAX_DEFAULT = LIFConfig(
    synapse=Synapse.LAGGED, leak=Leak.MULTIPLY, beta_map=BetaMap.IDENTITY, gain=Gain.ONE_MINUS_BETA,
    fire_from=FireFrom.CURRENT, surrogate_arg=SurrogateArg.V_MINUS_THETA, spike_forward=SpikeForward.GE,
    reset=Reset.TO_ZERO, reset_when=ResetWhen.NEXT_BEFORE_LEAK, reset_grad=ResetGrad.DETACHED,
    membrane_out=MembraneOut.POST_RESET, theta_grad=ThetaGrad.AUTODIFF,
)
_DECAYS = {"beta": 0.8, "alpha_syn": 0.7}
#: option -> (the documented configuration's changes, the parameters it runs at)
SNNAX_OPTIONS: tuple[tuple[dict[str, Any], dict[str, Any], dict[str, float]], ...] = (
    ({}, {}, _DECAYS),
    ({"stop_reset_grad": False}, {"reset_grad": ResetGrad.ATTACHED}, _DECAYS),
    ({"reset_val": -0.3}, {"reset": Reset.TO_VALUE}, {**_DECAYS, "v_reset": -0.3}),
    ({"decay_constants": (0.3, 0.3)}, {}, {"beta": 0.3, "alpha_syn": 0.3}),
)


def layer_module() -> types.ModuleType:
  """``snnax.snn.layers.lif``, imported normally or, where ``import snnax`` fails, from its files as the
  package ``_snnax`` (bare packages over the installed folders: their ``__init__`` files are not run)."""
  try:
    return importlib.import_module(LAYER_MODULE)
  except ImportError:
    for name in [n for n in sys.modules if n == "snnax" or n.startswith("snnax.")]:
      del sys.modules[name]
  spec = importlib.util.find_spec("snnax")
  if spec is None or not spec.submodule_search_locations:
    raise ImportError("snnax is not installed")
  root = Path(next(iter(spec.submodule_search_locations)))
  for name, sub in (("_snnax", ""), ("_snnax.functional", "functional"), ("_snnax.snn", "snn"),
                    ("_snnax.snn.layers", "snn/layers")):
    if name not in sys.modules:
      package = types.ModuleType(name)
      package.__path__ = [str(root / sub)]
      sys.modules[name] = package
  return importlib.import_module("_snnax.snn.layers.lif")


def _lif_run(option: dict[str, Any]):
  import jax.numpy as jnp

  from verification.targets._layers import jax_spike

  lif = layer_module()

  def run(x, v0, p, g=None):
    kwargs: dict[str, Any] = {k: v for k, v in option.items() if k == "stop_reset_grad"}
    if "reset_val" in option:
      kwargs["reset_val"] = p["v_reset"]
    if g is not None:
      kwargs["spike_fn"] = jax_spike(g, ge=True)  # snnax's forward is jnp.heaviside(x, 1.)
    layer = lif.LIF(jnp.stack([p["beta"], p["alpha_syn"]]), threshold=p["theta"], **kwargs)
    # the initial spike the layer carries is its own spike of v0 (the reference recomputes it as H(v0 - θ))
    state, spikes, membrane = [v0, jnp.zeros_like(v0), layer.spike_fn(v0 - p["theta"])], [], []
    for t in range(x.shape[0]):
      state, s = layer(state, x[t])
      spikes.append(s)
      membrane.append(state[0])
    return jnp.stack(spikes), jnp.stack(membrane), {}

  return run


def layer_options() -> list[Any]:
  """snnax's LIF at its defaults and options, with the configuration its docstrings state."""
  from verification.targets._layers import LayerOption, layer_cites

  out = []
  for option, changes, params in SNNAX_OPTIONS:
    out.append(LayerOption(
        library=PACKAGE, version=version(), layer="LIF", option=option,
        documented=dataclasses.replace(SNNAX_DEFAULT, **changes), cites=layer_cites(SNNAX_DOCS),
        params={**params, "theta": 1.0}, surrogate=("InvSquareGrad", {"alpha": 10.0}),
        learnable=("beta", "alpha_syn"), varies=("theta",), framework="jax", dtype="float64",
        note="decay_constants is a TrainableArray (learnable); the default spike_fn superspike_surrogate(10.) is "
             "documented as SuperSpike 1/(1 + 10|x|)², its tangent is 1/(1 + 10|x|): the mirror is the documented "
             "one, so the own-surrogate comparison shows that difference; the probe runs do not depend on it",
    ))
  return out


def layer_candidates() -> list[Any]:
  """One layer candidate per documented option set of snnax's ``LIF``."""
  from verification.targets._layers import layer_candidate

  return [layer_candidate(o, _lif_run(dict(o.option))) for o in layer_options()]


def layer_snippet(layer: str, option: dict[str, Any]) -> str:
  """Standalone code defining ``run(x, v0) -> (spikes, membrane)`` for one option set (the reproducers' call)."""
  decays = option.get("decay_constants", (0.8, 0.7))
  kwargs = "".join(f", {k}={v!r}" for k, v in option.items() if k != "decay_constants")
  return f'''import importlib.util
import sys
import types
from pathlib import Path

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)
DTYPE = jnp.float64
try:
  from snnax.snn.layers.lif import LIF
except ImportError:  # snnax 0.0.1: `import snnax` fails (snnax.snn imports a missing module): import the files
  for name in [n for n in sys.modules if n == "snnax" or n.startswith("snnax.")]:
    del sys.modules[name]
  root = Path(next(iter(importlib.util.find_spec("snnax").submodule_search_locations)))
  for name, sub in (("_snnax", ""), ("_snnax.functional", "functional"), ("_snnax.snn", "snn"),
                    ("_snnax.snn.layers", "snn/layers")):
    sys.modules[name] = types.ModuleType(name)
    sys.modules[name].__path__ = [str(root / sub)]
  from _snnax.snn.layers.lif import LIF


def run(x, v0):
  layer = LIF(jnp.array({list(decays)!r}){kwargs})
  state, spikes, membrane = [v0, jnp.zeros_like(v0), layer.spike_fn(v0 - 1.0)], [], []
  for t in range(x.shape[0]):
    state, s = layer(state, x[t])
    spikes.append(s)
    membrane.append(state[0])
  return jnp.stack(spikes), jnp.stack(membrane)
'''
