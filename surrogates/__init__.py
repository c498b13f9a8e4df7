"""Reference JAX implementations of surrogate gradients for spiking networks.

Every surrogate is a class (``surrogates.Sigmoid(alpha=4.0)``) whose instances are the spike
function: forward the Heaviside step H(x) (1 for x >= 0), backward the pseudo-derivative
``surrogate_grad``. Each also has a functional form (``surrogates.sigmoid(x, alpha=4.0)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from surrogates import _library
from surrogates._aliases import Scaled, fast_sigmoid, spyx_arctan, superspike, triangular
from surrogates._core import FLOAT_DTYPES, Domain, Limits, Surrogate, heaviside, snake_case
from surrogates._library import *  # noqa: F403  (the surrogate classes)
from surrogates._registry import ALIASES, REGISTRY, get, instances

__version__ = "0.1.0"


def _functional(cls: type[Surrogate]) -> Callable[..., Any]:
  def spike(x: Any, **params: Any) -> Any:
    return cls(**params)(x)

  spike.__name__ = snake_case(cls.__name__)
  spike.__qualname__ = spike.__name__
  spike.__doc__ = f"``{spike.__name__}(x, **params) = {cls.__name__}(**params)(x)``.\n\n{cls.__doc__}"
  return spike


#: Functional forms, one per registry surrogate, by snake_case name.
FUNCTIONAL: dict[str, Callable[..., Any]] = {snake_case(n): _functional(c) for n, c in REGISTRY.items()}
globals().update(FUNCTIONAL)

__all__ = [
    "ALIASES",
    "FLOAT_DTYPES",
    "FUNCTIONAL",
    "REGISTRY",
    "Domain",
    "Limits",
    "Scaled",
    "Surrogate",
    "fast_sigmoid",
    "get",
    "heaviside",
    "instances",
    "spyx_arctan",
    "superspike",
    "triangular",
    *REGISTRY,
    *FUNCTIONAL,
]
del _library
