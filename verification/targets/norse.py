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
"""

from __future__ import annotations

import importlib
import types
from typing import Any

from verification.core import torch_bridge
from verification.core.candidate import Candidate
from verification.targets._common import Mapping, Params, call_string, installed_version, mapped_candidates, same

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
