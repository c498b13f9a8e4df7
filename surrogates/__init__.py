"""Reference JAX implementations of surrogate gradients for spiking networks.

Every surrogate is a class (``surrogates.Sigmoid(alpha=4.0)``) whose instances are the spike
function: forward the Heaviside step H(x) (1 for x >= 0), backward the pseudo-derivative
``surrogate_grad``. Each also has a functional form (``surrogates.sigmoid(x, alpha=4.0)``). Parameters
are given by keyword or by position in the declared order (``surrogates.s2nn(x, 4.0, 1.0, 1e-8)``).
Parameters may be JAX values (traced under jit, vmap or grad); surrogates are pytrees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from surrogates import _aliases, _library
from surrogates._aliases import *  # noqa: F403  (Scaled and the aliases; explicit __all__)
from surrogates._core import (
    FLOAT_DTYPES,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    REAL,
    ConcreteParametersRequired,
    Domain,
    Limits,
    ParamSpec,
    Surrogate,
    UnknownParameterError,
    heaviside,
    param,
    snake_case,
)
from surrogates._library import *  # noqa: F403  (the classes and their functional forms; explicit __all__)
from surrogates._registry import ALIASES, REGISTRY, UnknownSurrogateError, functional, get, instances, register
from surrogates.lif import LIFConfig, LIFParams, LIFState, lif_scan, lif_step, reset_gain

__version__ = "0.1.0"

#: Functional forms, one per registry surrogate, by snake_case name.
FUNCTIONAL: dict[str, Callable[..., Any]] = {snake_case(n): getattr(_library, snake_case(n)) for n in REGISTRY}

__all__ = [
    "ALIASES",
    "FLOAT_DTYPES",
    "FUNCTIONAL",
    "LIFConfig",
    "LIFParams",
    "LIFState",
    "NON_NEGATIVE",
    "POSITIVE",
    "POSITIVE_INT",
    "REAL",
    "REGISTRY",
    "ConcreteParametersRequired",
    "Domain",
    "Limits",
    "ParamSpec",
    "Surrogate",
    "UnknownParameterError",
    "UnknownSurrogateError",
    "functional",
    "get",
    "heaviside",
    "instances",
    "lif_scan",
    "lif_step",
    "param",
    "register",
    "reset_gain",
    "snake_case",
]
__all__ += _aliases.__all__
__all__ += _library.__all__
