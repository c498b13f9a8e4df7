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

import importlib.util
import math
import sys
import types
from pathlib import Path

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
