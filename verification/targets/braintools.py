"""braintools.surrogate as candidates: every class and its functional form.

Formulas as read from the installed source of braintools 0.3.0 (``braintools/surrogate/_impl.py``);
forward everywhere ``x >= 0`` (``_base.py``), the same convention as the reference. Every class
keeps the reference's name and parameter names, so the mapping is the identity with scale 1.

Mapping: ``braintools.surrogate.NAME(**params)`` -> reference ``NAME(**params)``, scale 1, for:

- Sigmoid(alpha=4): g = α·σ(αx)(1 - σ(αx)); P = σ(αx)
- PiecewiseQuadratic(alpha=1): g = 0 if |x| > 1/α else α - α²|x|; P = 0 | 1 | (-α|x|/2 + 1)·αx + 1/2
- PiecewiseExp(alpha=1): g = (α/2)e^(-α|x|); P = e^(αx)/2 if x < 0 else 1 - e^(-αx)/2
- SoftSign(alpha=1): g = α/(2(1 + |αx|)²); P = x/(2/α + 2|x|) + 1/2
- Arctan(alpha=1): g = (α/2)/(1 + (παx/2)²); P = arctan(παx/2)/π + 1/2
- NonzeroSignLog(alpha=1): g = 1/(1/α + |x|); P = sgn(x)·log(|αx| + 1)
- ERF(alpha=1): g = (α/√π)e^(-α²x²); P = (1 - erf(-αx))/2
- PiecewiseLeakyRelu(c=0.01, w=1): g = c if |x| > w else 1/(2w); P = cx + cw | x/(2w) + 1/2 | cx - cw + 1
  (its docstring says 1/w inside the window; code and P say 1/(2w))
- SquarewaveFourierSeries(n=2, t_period=8): g = (4/T)·Σ_{i=1..n} cos((2i-1)ωx), ω = 2π/T;
  P = 1/2 + (2/π)·Σ_{i=1..n} sin((2i-1)ωx)/(2i-1)
- S2NN(alpha=4, beta=1, epsilon=1e-8): g = α·σ(αx)(1 - σ(αx)) if x < 0 else β/(x + 1);
  P = σ(αx) if x < 0 else β·log(|x + 1| + ε) + 1/2
- QPseudoSpike(alpha=2): g = (1 + 2|x|/(α+1))^(-α); P = 1/2 + sgn(x)·(α+1)/(2(1-α))·((1 + 2|x|/(α+1))^(1-α) - 1)
- LeakyRelu(alpha=0.1, beta=1): g = α if x < 0 else β; P = αx or βx
- LogTailedRelu(alpha=0): g = 1/x if x > 1, 1 if 0 < x <= 1, α if x <= 0; P = 1 + log x | x | αx
- ReluGrad(alpha=0.3, width=1): g = max(αw - α|x|, 0); no P
- GaussianGrad(sigma=0.5, alpha=0.5): g = α·e^(-x²/(2σ²))/(√(2π)σ); no P
- InvSquareGrad(alpha=100): g = 1/(α|x| + 1)²; no P
- MultiGaussianGrad(h=0.15, s=6, sigma=0.5, scale=0.5): g = scale·((1+h)N(x; 0, σ) - h·N(x; σ, sσ) - h·N(x; -σ, sσ));
  no P
- SlayerGrad(alpha=1): g = e^(-α|x|); no P

The spike function binds ``heaviside_p(x, g(stop_gradient(x)))``: first order is ct·g(x), but
the derivative of g is cut, so second derivatives of the spike function are 0, not g'.

Each functional form (``braintools.surrogate.sigmoid(x, alpha=4.0)`` and so on) is the class
called on x; it is checked once, at the library's defaults.

Parameters may be JAX values (the classes keep them as given), so every candidate has a
``factory`` (the parameter names are the reference's). The primitive's JVP adds the tangent of g,
computed from the parameters, to the output: H has a non-zero derivative in every parameter in
0.3.0 (fixed in 0.4.0), which the parameters check reports.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Any

import jax

from verification.core.candidate import Candidate
from verification.targets._common import (
    Mapping,
    call_string,
    installed_version,
    mapped_candidates,
    same,
)

PACKAGE = "braintools"
MODULE = "braintools.surrogate"

#: Class name -> functional form name, and the parameter names (the reference's too).
_SURROGATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Sigmoid": ("sigmoid", ("alpha",)),
    "PiecewiseQuadratic": ("piecewise_quadratic", ("alpha",)),
    "PiecewiseExp": ("piecewise_exp", ("alpha",)),
    "SoftSign": ("soft_sign", ("alpha",)),
    "Arctan": ("arctan", ("alpha",)),
    "NonzeroSignLog": ("nonzero_sign_log", ("alpha",)),
    "ERF": ("erf", ("alpha",)),
    "PiecewiseLeakyRelu": ("piecewise_leaky_relu", ("c", "w")),
    "SquarewaveFourierSeries": ("squarewave_fourier_series", ("n", "t_period")),
    "S2NN": ("s2nn", ("alpha", "beta", "epsilon")),
    "QPseudoSpike": ("q_pseudo_spike", ("alpha",)),
    "LeakyRelu": ("leaky_relu", ("alpha", "beta")),
    "LogTailedRelu": ("log_tailed_relu", ("alpha",)),
    "ReluGrad": ("relu_grad", ("alpha", "width")),
    "GaussianGrad": ("gaussian_grad", ("sigma", "alpha")),
    "InvSquareGrad": ("inv_square_grad", ("alpha",)),
    "MultiGaussianGrad": ("multi_gaussian_grad", ("h", "s", "sigma", "scale")),
    "SlayerGrad": ("slayer_grad", ("alpha",)),
}

#: Classes: the defaults and every reference set. Functional forms: the defaults only.
MAPPINGS: tuple[Mapping, ...] = (
    *(Mapping(cls, cls, *same(*names)) for cls, (_, names) in _SURROGATES.items()),
    *(Mapping(fun, cls, same(*names)[0]) for cls, (fun, names) in _SURROGATES.items()),
)

UNMAPPED: dict[str, str] = {
    "Surrogate": "the abstract base class (no gradient of its own)",
}


def version() -> str:
  """The installed braintools version."""
  return installed_version(PACKAGE)


def _module() -> ModuleType:
  """Imports braintools.surrogate, keeping JAX's 64-bit setting as it was.

  braintools 0.3.0 imports brainstate, whose ``environ`` sets ``jax_enable_x64`` to False at
  import (its default precision is 32): without the restore, every later float64 check would
  run in float32.
  """
  x64 = bool(jax.config.jax_enable_x64)
  try:
    return importlib.import_module(MODULE)
  finally:
    jax.config.update("jax_enable_x64", x64)


def _build(mod: ModuleType, m: Mapping, params: dict[str, Any]) -> dict[str, Any]:
  """fn, surrogate_fun, surrogate_grad for a class instance or a functional form."""
  target = getattr(mod, m.export)
  if m.export in _SURROGATES:
    inst = target(**params)
    has_fun = type(inst).surrogate_fun is not mod.Surrogate.surrogate_fun
    # the classes store their parameters as given, so JAX values (traced ones too) are accepted
    return {"fn": inst, "surrogate_fun": inst.surrogate_fun if has_fun else None, "surrogate_grad": inst.surrogate_grad,
            "factory": lambda **p: target(**p)}
  return {"fn": functools.partial(target, **params), "factory": lambda **p: functools.partial(target, **p)}


def candidates() -> list[Candidate]:
  """One candidate per exported surrogate and parameter set."""
  mod = _module()

  def build(m: Mapping, params: dict[str, Any], ref: dict[str, Any]):
    call = call_string(f"{MODULE}.{m.export}", params)
    if m.export not in _SURROGATES:  # a functional form: the input comes first
      call = call.replace("(", "(x, ", 1)
    return call, _build(mod, m, params)

  return mapped_candidates(PACKAGE, version(), mod, MAPPINGS, build)
