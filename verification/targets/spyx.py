"""spyx.axn as candidates: each factory returns a jitted ``jax.custom_gradient`` spike function.

Formulas as read from the installed source of spyx 1.0.0 (``spyx/axn.py``). The forward of every
factory is ``heaviside(x) = where(x > 0, 1, 0)``, so H(0) = 0: a convention difference from the
reference (H(0) = 1). ``jax.custom_gradient`` has no forward mode (jvp, jacfwd raise).

- custom() (bwd = identity): g = 1 -> StraightThrough(), scale 1
- tanh(k=1): g = 4/(e^(-kx) + e^(kx))² = sech²(kx) -> Tanh(k), scale 1
- boxcar(width=2, height=0.5): g = h·heaviside(w/2 - |x|), so h for |x| < w/2 and 0 at |x| = w/2
  -> Boxcar(width, height), scale 1
- triangular(k=2): g = max(0, 1 - |kx|) -> ReluGrad(alpha=k, width=1/k), scale 1
- arctan(k=2): g = 1/((1 + (kπx)²)π) -> Arctan(alpha=2k), scale 1/(kπ)
- superspike(k=25): g = 1/(1 + k|x|)² -> InvSquareGrad(alpha=k), scale 1

No candidate has a ``factory``: each factory returns ``jax.jit`` of a function closing over its
parameter, so a traced parameter (``jax.grad`` in k) fails with "No constant handler for type:
LinearizeTracer" (measured on spyx 1.0.0); the parameters check skips these candidates.
"""

from __future__ import annotations

import importlib
import math
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
from verification.targets._layers import LayerOption, jax_spike, layer_candidate, layer_cites

PACKAGE = "spyx"
MODULE = "spyx.axn"

_H0 = "forward is x > 0, so H(0) = 0 (the reference has H(0) = 1)"


def _triangular_to_ref(lib: Params) -> tuple[Params, float]:
  """max(0, 1 - |kx|) = k·max(1/k - |x|, 0) = ReluGrad(alpha=k, width=1/k)."""
  return {"alpha": lib["k"], "width": 1.0 / lib["k"]}, 1.0


def _triangular_from_ref(ref: Params) -> Params:
  return {"k": 1.0 / ref["width"]}


def _arctan_to_ref(lib: Params) -> tuple[Params, float]:
  """1/(π(1 + (kπx)²)) = (1/(kπ))·(α/2)/(1 + (παx/2)²) with α = 2k."""
  return {"alpha": 2.0 * lib["k"]}, 1.0 / (lib["k"] * math.pi)


def _arctan_from_ref(ref: Params) -> Params:
  return {"k": ref["alpha"] / 2.0}


MAPPINGS: tuple[Mapping, ...] = (
    Mapping("custom", "StraightThrough", lambda lib: ({}, 1.0), defaults={}, note=_H0),
    Mapping("tanh", "Tanh", *same("k"), note=_H0),
    Mapping(
        "boxcar", "Boxcar", *same("width", "height"),
        note=_H0 + "; g = 0 at exactly |x| = width/2 (the reference includes the ends)",
    ),
    Mapping("triangular", "ReluGrad", _triangular_to_ref, _triangular_from_ref, note=_H0),
    Mapping("arctan", "Arctan", _arctan_to_ref, _arctan_from_ref, note=_H0 + "; mass 1/(kπ), not 1"),
    Mapping("superspike", "InvSquareGrad", *renamed({"k": "alpha"}), note=_H0),
)

UNMAPPED: dict[str, str] = {
    "heaviside": "the forward step alone (no custom gradient: its derivative is 0); used by every factory",
    "experimental.stochastic.sigmoid_bernoulli": "stochastic: the forward samples Bernoulli spikes from a key",
    "experimental.stochastic.refractory_sigmoid_bernoulli": "stochastic: the forward samples Bernoulli spikes",
}


def version() -> str:
  """The installed spyx version."""
  return installed_version(PACKAGE)


def _module() -> ModuleType:
  return importlib.import_module(MODULE)


def candidates() -> list[Candidate]:
  """One candidate per factory and parameter set; ``fn`` is what the factory returns."""
  mod = _module()

  def build(m: Mapping, params: Params, ref: Params):
    return call_string(f"{MODULE}.{m.export}", params), {"fn": getattr(mod, m.export)(**params)}

  return mapped_candidates(PACKAGE, version(), mod, MAPPINGS, build)


# --- the layer: spyx.nn.LIF (flax nnx) ----------------------------------------------------------------
#
# One step as ``LIF.__call__`` of 1.0.0 runs it (``spyx/nn.py`` L214-217)::
#
#     β = clip(beta, 0, 1)             L214
#     S = spike(V - θ)                 L215: the membrane BEFORE this step's input (superspike k = 25, H: x > 0)
#     V = β·V + x - S·θ                L216: the reset in the same update, attached
#
# ``beta`` is an ``nnx.Param`` even when given as a float (L207); ``threshold`` is a plain attribute. The
# returned V is after the reset. The layer is a JAX candidate: its run builds the module from the parameters
# passed in (so their gradients are the module's) and loops over time in Python (traced once per probe).

_NN = "spyx/nn.py"
SPYX_DOCS: dict[str, str] = {
    "beta_map": f"{_NN}:191: ':beta: decay rate.'",
    "reset": f"{_NN}:192: ':threshold: threshold for reset. Defaults to 1.'",
}
SPYX_DEFAULT = LIFConfig(
    synapse=Synapse.NONE, leak=Leak.MULTIPLY, beta_map=BetaMap.CLAMP_0_1, gain=Gain.ONE,
    fire_from=FireFrom.PREVIOUS, surrogate_arg=SurrogateArg.V_MINUS_THETA, spike_forward=SpikeForward.GT,
    reset=Reset.SUBTRACT_THETA, reset_when=ResetWhen.IMMEDIATE, reset_grad=ResetGrad.ATTACHED,
    membrane_out=MembraneOut.POST_RESET, theta_grad=ThetaGrad.AUTODIFF,
)


def _lif_run(option: dict[str, Any]):
  import jax.numpy as jnp

  nn = importlib.import_module("spyx.nn")

  def run(x, v0, p, g=None):
    activation = None if g is None else jax_spike(g, ge=False)  # spyx's heaviside is x > 0
    rngs = nn.nnx.Rngs(0)  # flax.nnx, as spyx.nn imports it
    layer = nn.LIF((x.shape[-1],), beta=p["beta"], threshold=p["theta"], activation=activation, rngs=rngs)
    v, spikes, membrane = v0, [], []
    for t in range(x.shape[0]):
      s, v = layer(x[t], v)
      spikes.append(s)
      membrane.append(v)
    return jnp.stack(spikes), jnp.stack(membrane), {}

  return run


def layer_options() -> list[LayerOption]:
  """spyx.nn.LIF with beta given (a float: beta=None draws a random per-neuron β), documented and read."""
  return [LayerOption(
      library=PACKAGE, version=version(), layer="LIF", option={"beta": 0.8}, documented=SPYX_DEFAULT,
      cites=layer_cites(SPYX_DOCS), params={"beta": 0.8, "theta": 1.0}, surrogate=("InvSquareGrad", {"alpha": 25.0}),
      learnable=(), varies=("theta",), framework="jax", dtype="float64",
      note="the docstrings state only 'beta: decay rate' and 'threshold: threshold for reset': every other setting "
           "is read from the code (L214-216); beta is an nnx.Param even when given as a float (L207)",
  )]


def layer_candidates() -> list[Any]:
  """The layer candidate of ``spyx.nn.LIF``."""
  return [layer_candidate(o, _lif_run(dict(o.option))) for o in layer_options()]


def layer_snippet(layer: str, option: dict[str, Any]) -> str:
  """Standalone code defining ``run(x, v0) -> (spikes, membrane)`` (the reproducers' call)."""
  return '''import jax
import jax.numpy as jnp
from flax import nnx
import spyx.nn

jax.config.update("jax_enable_x64", True)


def run(x, v0):
  layer = spyx.nn.LIF((x.shape[-1],), beta=0.8, threshold=1.0, rngs=nnx.Rngs(0))
  v, spikes, membrane = v0, [], []
  for t in range(x.shape[0]):
    s, v = layer(x[t], v)
    spikes.append(s)
    membrane.append(v)
  return jnp.stack(spikes), jnp.stack(membrane)
'''
