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
"""

from __future__ import annotations

import importlib
import types
from typing import Any

from verification.core import torch_bridge
from verification.core.candidate import Candidate
from verification.targets._common import Mapping, Params, call_string, installed_version, mapped_candidates

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
