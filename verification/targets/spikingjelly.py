"""spikingjelly.activation_based.surrogate as candidates, through torch autograd on the CPU.

Formulas as read from the installed source of spikingjelly 2.0.0
(``spikingjelly/activation_based/surrogate.py``). Every forward is ``heaviside(x) = (x >= 0).to(x)``,
the reference's convention, in the input's dtype. Each module ``NAME(**params)`` calls an
``autograd.Function`` (the lowercase export) whose backward is the exported ``*_backward``; both
are covered by the module's candidates. ``primitive_function`` (P) and the static ``backward``
(g = backward(1, x, ...)) are exposed as ``surrogate_fun`` and ``surrogate_grad`` on NumPy arrays.

- PiecewiseQuadratic(alpha=1): g = α - α²|x|, 0 where |x| > 1/α -> PiecewiseQuadratic(alpha), 1
- PiecewiseExp(alpha=1): g = (α/2)e^(-α|x|) -> PiecewiseExp(alpha), 1
- Sigmoid(alpha=4): g = α·σ(αx)(1 - σ(αx)) -> Sigmoid(alpha), 1
- SoftSign(alpha=2): g = 1/(2α(1/α + |x|)²) = α/(2(1 + α|x|)²) -> SoftSign(alpha), 1
- SuperSpike(alpha=1): g = α/(|x| + 1)² -> InvSquareGrad(alpha=1), scale α (α multiplies, it is no slope)
- ATan(alpha=2): g = (α/2)/(1 + (πα/2·x)²) -> Arctan(alpha), 1
- NonzeroSignLogAbs(alpha=1): g = 1/(1/α + |x|) -> NonzeroSignLog(alpha), 1
- Erf(alpha=2): g = e^(-(αx)²)·α/√π -> ERF(alpha), 1
- PiecewiseLeakyReLU(w=1, c=0.01): g = 1/(2w) for |x| < w, c otherwise (c at |x| = w) -> PiecewiseLeakyRelu(c, w), 1
- SquarewaveFourierSeries(n=2, T_period=8): g = (4/T)·Σ_{i=1..n-1} cos((2i-1)ωx), ω = 2π/T (n - 1 terms,
  as its docstring's P says) -> SquarewaveFourierSeries(n=n-1, t_period=T), 1; n = 1 gives g = 0 (unmapped)
- S2NN(alpha=4, beta=1): g = α·σ(αx)(1 - σ(αx)) if x < 0 else β/(x + 1); P uses log(|x + 1| + 1e-5)
  -> S2NN(alpha, beta, epsilon=1e-5), 1
- QPseudoSpike(alpha=2): g = (1 + 2|x|/(α-1))^(-α) (needs α > 1) -> NormalisedQPseudoSpike(nu=α-1), 1
  (braintools' QPseudoSpike has α+1 in place of α-1: another shape)
- LeakyKReLU(leak=0, k=1): g = k for x >= 0, leak otherwise -> LeakyRelu(alpha=leak, beta=k), 1
- FakeNumericalGradient(alpha=0.3): g = clamp_max(sgn(x)/x, α), sgn(x) = +1 for x >= 0 (so -1/x for x < 0)
  -> FakeNumericalGradient(alpha), 1
- LogTailedReLU(alpha=0): g = 1/x for x > 1, α for x <= 0, 1 between -> LogTailedRelu(alpha), 1
- DeterministicPass(): g = 1 -> StraightThrough(), 1
- Rect(alpha=1): g = α for |x| < 0.5/α, 0 otherwise -> Boxcar(width=1/α, height=α), 1
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

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

PACKAGE = "spikingjelly"
MODULE = "spikingjelly.activation_based.surrogate"


def _pair(fn: str) -> tuple[str, str]:
  """The autograd Function and its backward helper, both exported."""
  return fn, f"{fn}_backward"


def _super_spike_to_ref(lib: Params) -> tuple[Params, float]:
  return {"alpha": 1.0}, float(lib["alpha"])


def _fourier_to_ref(lib: Params) -> tuple[Params, float]:
  return {"n": int(lib["n"]) - 1, "t_period": lib["T_period"]}, 1.0


def _fourier_from_ref(ref: Params) -> Params:
  return {"n": int(ref["n"]) + 1, "T_period": ref["t_period"]}


def _s2nn_to_ref(lib: Params) -> tuple[Params, float]:
  return {"alpha": lib["alpha"], "beta": lib["beta"], "epsilon": 1e-5}, 1.0


def _s2nn_from_ref(ref: Params) -> Params:
  return {"alpha": ref["alpha"], "beta": ref["beta"]}


def _qps_to_ref(lib: Params) -> tuple[Params, float]:
  return {"nu": lib["alpha"] - 1.0}, 1.0


def _qps_from_ref(ref: Params) -> Params:
  return {"alpha": ref["nu"] + 1.0}


def _rect_to_ref(lib: Params) -> tuple[Params, float]:
  return {"width": 1.0 / lib["alpha"], "height": lib["alpha"]}, 1.0


def _rect_from_ref(ref: Params) -> Params | None:
  return {"alpha": ref["height"]} if math.isclose(ref["width"] * ref["height"], 1.0, rel_tol=1e-12) else None


MAPPINGS: tuple[Mapping, ...] = (
    Mapping("PiecewiseQuadratic", "PiecewiseQuadratic", *same("alpha"), covers=_pair("piecewise_quadratic")),
    Mapping("PiecewiseExp", "PiecewiseExp", *same("alpha"), covers=_pair("piecewise_exp")),
    Mapping("Sigmoid", "Sigmoid", *same("alpha"), covers=_pair("sigmoid")),
    Mapping("SoftSign", "SoftSign", *same("alpha"), covers=_pair("soft_sign")),
    Mapping(
        "SuperSpike", "InvSquareGrad", _super_spike_to_ref, covers=_pair("super_spike"),
        extra=({"alpha": 4.0}, {"alpha": 0.25}),
        note="alpha multiplies g (scale alpha); the width is fixed at 1",
    ),
    Mapping("ATan", "Arctan", *same("alpha"), covers=_pair("atan")),
    Mapping("NonzeroSignLogAbs", "NonzeroSignLog", *same("alpha"), covers=_pair("nonzero_sign_log_abs")),
    Mapping("Erf", "ERF", *same("alpha"), covers=_pair("erf")),
    Mapping(
        "PiecewiseLeakyReLU", "PiecewiseLeakyRelu", *same("w", "c"), covers=_pair("piecewise_leaky_relu"),
        note="g = c at exactly |x| = w (the reference has 1/(2w) there)",
    ),
    Mapping(
        "SquarewaveFourierSeries", "SquarewaveFourierSeries", _fourier_to_ref, _fourier_from_ref,
        covers=("squarewave_fourier_series",), extra=({"n": 3},),
        note="spikingjelly's n sums n - 1 terms (as its docstring says): reference n = n - 1",
    ),
    Mapping(
        "S2NN", "S2NN", _s2nn_to_ref, _s2nn_from_ref, covers=("s2nn",),
        note="P uses log(|x + 1| + 1e-5): epsilon = 1e-5",
    ),
    Mapping(
        "QPseudoSpike", "NormalisedQPseudoSpike", _qps_to_ref, _qps_from_ref, covers=("q_pseudo_spike",),
        note="g = (1 + 2|x|/(alpha-1))^(-alpha), mass 1, alpha > 1: nu = alpha - 1",
    ),
    Mapping("LeakyKReLU", "LeakyRelu", *renamed({"leak": "alpha", "k": "beta"}), covers=_pair("leaky_k_relu")),
    Mapping(
        "FakeNumericalGradient", "FakeNumericalGradient", *same("alpha"), covers=_pair("fake_numerical_gradient"),
    ),
    Mapping("LogTailedReLU", "LogTailedRelu", *same("alpha"), covers=_pair("log_tailed_relu")),
    Mapping("DeterministicPass", "StraightThrough", lambda lib: ({}, 1.0), covers=("deterministic_pass",)),
    Mapping(
        "Rect", "Boxcar", _rect_to_ref, _rect_from_ref, covers=_pair("rect"),
        note="g = 0 at exactly |x| = 0.5/alpha (the reference includes the ends)",
    ),
)

UNMAPPED: dict[str, str] = {
    "heaviside": "the forward step alone (no surrogate gradient); used by every surrogate",
    "SurrogateFunctionBase": "the abstract base module",
    "PoissonPass": "stochastic: the forward samples torch.bernoulli(x), not a step",
    "poisson_pass": "stochastic: the autograd Function behind PoissonPass",
    "MultiLevelSpikeCount": "the forward is a multi-level spike count (0..max_spike_count), not the step H",
    "check_manual_grad": "a testing utility, not a surrogate",
    "plot_surrogate_function": "a plotting utility, not a surrogate",
}


def version() -> str:
  """The installed spikingjelly version."""
  return installed_version(PACKAGE)


def _module() -> ModuleType:
  return importlib.import_module(MODULE)


def _primitive(cls: Any, params: Params) -> Callable[[np.ndarray], np.ndarray] | None:
  """P on NumPy arrays, where the module's ``primitive_function`` is implemented."""
  fn = getattr(cls, "primitive_function", None)
  if fn is None:
    return None
  probe = torch_bridge.to_torch(np.zeros(1))
  try:
    fn(probe, **params)
  except (NotImplementedError, TypeError):
    return None
  return lambda x: torch_bridge.elementwise(lambda t: fn(t, **params), x)


def _grad(cls: Any, params: Params) -> Callable[[np.ndarray], np.ndarray] | None:
  """g on NumPy arrays from the module's static ``backward(grad_output, x, *params)``."""
  fn = getattr(cls, "backward", None)
  if fn is None or set(list(inspect.signature(fn).parameters)[2:]) != set(params):
    return None
  return lambda x: torch_bridge.elementwise(lambda t: fn(torch_bridge.to_torch(np.ones_like(x)), t, **params), x)


def candidates() -> list[Candidate]:
  """One candidate per exported surrogate and parameter set: forward and VJP through torch."""
  mod = _module()

  def build(m: Mapping, params: Params, ref: Params):
    if m.reference == "SquarewaveFourierSeries" and ref["n"] < 1:
      return None  # n = 1 sums no term at all: g = 0, which no reference parameter set is
    cls = getattr(mod, m.export)
    return call_string(f"{MODULE}.{m.export}", params) + "(x)", {
        **torch_bridge.torch_fields(cls(**params)),
        "surrogate_fun": _primitive(cls, params), "surrogate_grad": _grad(cls, params)}

  return mapped_candidates(PACKAGE, version(), mod, MAPPINGS, build)
