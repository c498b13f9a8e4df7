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

Layers ``LIFNode`` and ``ParametricLIFNode`` (``spikingjelly/activation_based/neuron/{lif,plif,base_node}.py``,
``functional/neuron.py`` of 2.0.0), one step as the code runs it (``lif_charge``, ``lif_step``, ``voltage_reset``)::

    H_t = V_{t-1} + (X_t - (V_{t-1} - V_reset))/τ     decay_input=False: V_{t-1} - (V_{t-1} - V_reset)/τ + X_t
    S_t = sg(H_t - θ)                                  H(0) = 1; surrogate Sigmoid(alpha=4) on H - θ
    V_t = S_t·V_reset + (1 - S_t)·H_t                  v_reset=None: V_t = H_t - S_t·θ (and the leak toward 0)
    detach_reset=True: S_t in the reset branch only is detached

β = 1 - 1/τ (PLIF: 1/τ = σ(w), w learnable), the input gain 1/τ with ``decay_input`` (1 without), the leak
toward V_reset. ``tau``, ``v_threshold`` and ``v_reset`` must be Python floats (asserted), so they get no
gradient; PLIF's ``w`` does. The membrane is ``v_seq`` (``store_v_seq=True``), after the reset. 2.0.0 has no
``backend`` argument: on the CPU every run is the torch reference path; the CUDA and Triton kernels it selects
on a GPU are not run here.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
from collections.abc import Callable
from types import ModuleType
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
from verification.targets._common import (
    Mapping,
    Params,
    call_string,
    installed_version,
    mapped_candidates,
    renamed,
    same,
)
from verification.targets._layers import LayerOption, layer_candidate, layer_cites, torch_spike, value

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


# --- the layers: LIFNode and ParametricLIFNode --------------------------------------------------------

#: Layer paths not run here, with the reason (listed with the measured results).
LAYERS_NOT_RUN = {
    "CUDA and Triton kernels of LIFNode/ParametricLIFNode": "selected on a CUDA device only (2.0.0 has no backend "
    "argument: the device picks the kernel); no GPU here, so only the CPU's torch path is measured",
}

_LIF = "spikingjelly/activation_based/neuron/lif.py"
_PLIF = "spikingjelly/activation_based/neuron/plif.py"
_SUR = "spikingjelly/activation_based/surrogate.py"


def _node_docs(path: str, charge: int, reset: int, detach: int) -> dict[str, str]:
  h = f"{path}:{charge}: 'H[t] = V[t-1] + 1/τ (X[t] - (V[t-1] - V_reset))' (decay_input=True)"
  return {
      "synapse": h, "leak": h, "gain": h,
      "beta_map": h if path == _LIF else f"{path}:95: 'where 1/τ = Sigmoid(w), w is a learnable parameter.'",
      "spike_forward": f"{_SUR}:48: 'The heaviside function ... g(x) = 1, x ≥ 0; 0, x < 0'",
      "reset": f"{path}:{reset}: 'v_reset: ... If not None, the neuron's voltage will be set to v_reset after firing a "
               "spike. If None, the neuron's voltage will subtract v_threshold after firing a spike'",
      "reset_when": f"{path}:{reset}: '... will be set to v_reset after firing a spike'",
      "reset_grad": f"{path}:{detach}: 'detach_reset: whether detach the computation graph of reset in backward' "
                    "(default False)",
  }


_NODE_DEFAULT = LIFConfig(
    synapse=Synapse.NONE, leak=Leak.TOWARD_RESET, beta_map=BetaMap.ONE_MINUS_INV_TAU, gain=Gain.ONE_MINUS_BETA,
    fire_from=FireFrom.CURRENT, surrogate_arg=SurrogateArg.V_MINUS_THETA, spike_forward=SpikeForward.GE,
    reset=Reset.TO_VALUE, reset_when=ResetWhen.IMMEDIATE, reset_grad=ResetGrad.ATTACHED,
    membrane_out=MembraneOut.POST_RESET, theta_grad=ThetaGrad.AUTODIFF,
)

#: layer -> (its documentation's lines: H[t] with decay_input, H[t] without, v_reset, detach_reset), its options
_NODES: dict[str, tuple[str, tuple[int, int, int, int], tuple[dict[str, Any], ...]]] = {
    "LIFNode": (_LIF, (170, 175, 186, 193), (
        {}, {"detach_reset": True}, {"v_reset": None}, {"v_reset": None, "detach_reset": True}, {"v_reset": -0.3},
        {"decay_input": False})),
    "ParametricLIFNode": (_PLIF, (88, 93, 106, 113), ({}, {"detach_reset": True}, {"v_reset": None})),
}


def _node_config(layer: str, option: dict[str, Any]) -> tuple[LIFConfig, dict[str, str]]:
  path, (with_decay, without_decay, reset, detach), _ = _NODES[layer]
  docs = _node_docs(path, with_decay, reset, detach)
  changes: dict[str, Any] = {}
  if layer == "ParametricLIFNode":
    changes["beta_map"] = BetaMap.SIGMOID
  if option.get("detach_reset"):
    changes["reset_grad"] = ResetGrad.DETACHED
  if "v_reset" in option and option["v_reset"] is None:
    changes["reset"] = Reset.SUBTRACT_THETA
  if option.get("decay_input") is False:
    changes["gain"] = Gain.ONE
    docs.update({k: f"{path}:{without_decay}: 'H[t] = V[t-1] - 1/τ (V[t-1] - V_reset) + X[t]' (decay_input=False)"
                 for k in ("synapse", "leak", "gain")})
  return dataclasses.replace(_NODE_DEFAULT, **changes), docs


def _node_run(layer: str, option: dict[str, Any]):
  import torch

  neuron = importlib.import_module("spikingjelly.activation_based.neuron")
  surrogate = _module()

  def run(x, v0, p, g=None):
    kwargs = {k: v for k, v in option.items() if k != "v_reset"}
    v_reset = None if "v_reset" in option and option["v_reset"] is None else value(p["v_reset"])
    fn = surrogate.Sigmoid(alpha=4.0) if g is None else torch_spike(g, ge=True)
    if layer == "LIFNode":
      node = neuron.LIFNode(tau=value(p["beta"]), v_threshold=value(p["theta"]), v_reset=v_reset,
                            surrogate_function=fn, step_mode="m", store_v_seq=True, **kwargs)
      leaves = {}
    else:
      node = neuron.ParametricLIFNode(init_tau=2.0, v_threshold=value(p["theta"]), v_reset=v_reset,
                                      surrogate_function=fn, step_mode="m", store_v_seq=True, **kwargs).to(x.dtype)
      with torch.no_grad():
        node.w.copy_(torch.as_tensor(value(p["beta"])))
      leaves = {"beta": node.w}
    node.reset()
    node.v = v0
    spikes = node(x)
    return spikes, node.v_seq, leaves

  return run


def layer_options() -> list[LayerOption]:
  """LIFNode's and ParametricLIFNode's defaults and options, with the configuration their documentation states."""
  out = []
  for layer, (_, _, options) in _NODES.items():
    for option in options:
      documented, docs = _node_config(layer, option)
      v_reset = option.get("v_reset", 0.0)
      plif = layer == "ParametricLIFNode"
      out.append(LayerOption(
          library=PACKAGE, version=version(), layer=layer, option=option, documented=documented,
          cites=layer_cites({**docs, **({"learnable beta": f"{_PLIF}:95: 'w is a learnable parameter'"}
                                        if plif else {})}),
          params={"beta": -0.5 if plif else 2.0, "theta": 1.0, "v_reset": 0.0 if v_reset is None else v_reset},
          surrogate=("Sigmoid", {"alpha": 4.0}), learnable=("beta",) if plif else (),
          varies=("theta",) if v_reset is None else ("theta", "v_reset"), dtype="float64",
          note="tau, v_threshold and v_reset are Python floats (asserted): no gradient reaches them"
               + ("; w = -ln(init_tau - 1): w = -0.5 is tau = 1 + e^0.5 ≈ 2.65" if plif else ""),
      ))
  return out


def layer_candidates() -> list[Any]:
  """One layer candidate per documented option set of LIFNode and ParametricLIFNode (the CPU's torch path)."""
  return [layer_candidate(o, _node_run(o.layer, dict(o.option))) for o in layer_options()]
