"""jaxsnn.discrete.functional.threshold as candidates (``backend="jax"``).

Formulas as read from the installed source of jaxsnn 0.3.0 (``jaxsnn/discrete/functional/
threshold.py``). The forward is ``heaviside(x) = 0.5 + 0.5·sign(x)``: H(0) = 0.5, neither 0 nor 1.

- superspike(x, alpha=80) (``jax.custom_vjp``): g = 1/(α|x| + 1)² -> InvSquareGrad(alpha), scale 1.
  A custom_vjp has no forward mode and its second derivative is not defined.
"""

from __future__ import annotations

import importlib
import types

from verification.core.candidate import Candidate
from verification.targets._common import Mapping, Params, installed_version, mapped_candidates, same

PACKAGE = "jaxsnn"
MODULE = "jaxsnn.discrete.functional.threshold"

MAPPINGS: tuple[Mapping, ...] = (
    Mapping("superspike", "InvSquareGrad", *same("alpha"), covers=("superspike_fwd", "superspike_bwd"),
            defaults={"alpha": 80.0}, note="forward 0.5 + 0.5·sign(x): H(0) = 0.5"),
)

UNMAPPED: dict[str, str] = {
    "heaviside": "the forward step alone, 0.5 + 0.5·sign(x) (no surrogate gradient); used by superspike",
}


def version() -> str:
  """The installed jaxsnn version."""
  return installed_version(PACKAGE)


def modules() -> list[types.ModuleType]:
  """The library modules whose exports are adapted."""
  return [importlib.import_module(MODULE)]


def candidates() -> list[Candidate]:
  """One candidate per parameter set: ``superspike(x, alpha)``."""
  (mod,) = modules()

  def build(m: Mapping, params: Params, ref: Params):
    alpha = params["alpha"]
    return f"{MODULE}.superspike(x, {alpha!r})", {"fn": lambda x: mod.superspike(x, alpha)}

  return mapped_candidates(PACKAGE, version(), mod, MAPPINGS, build)
