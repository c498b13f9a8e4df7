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
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

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
