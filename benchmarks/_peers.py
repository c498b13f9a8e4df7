"""Other libraries' implementations of the reference surrogates (braintools, spyx).

Each :class:`Pair` is a peer's spike function and the reference surrogate it equals, at the
equivalent parameters (see the specification's equivalences).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from importlib import metadata

import surrogates
from surrogates import Surrogate

LIBRARIES = ("braintools", "spyx")


@dataclasses.dataclass(frozen=True)
class Pair:
  """A peer's spike function and the reference surrogate it implements."""

  library: str
  name: str
  reference: Surrogate
  peer: Callable


def version(dist: str) -> str | None:
  """The installed version of a distribution, or None."""
  try:
    return metadata.version(dist)
  except metadata.PackageNotFoundError:
    return None


def load(library: str) -> tuple[object | None, str]:
  """Imports a peer's surrogate module: (module, '') or (None, the reason it is unavailable)."""
  module = {"braintools": "braintools.surrogate", "spyx": "spyx.axn"}[library]
  try:
    return importlib.import_module(module), ""
  except Exception as exc:
    return None, f"{library} not importable: {type(exc).__name__}: {exc}"


def braintools_pairs(module: object, names: list[str]) -> list[Pair]:
  """braintools.surrogate has a class of the same name and parameters for most surrogates."""
  pairs = []
  for name in names:
    cls = getattr(module, name, None)
    if cls is not None:
      reference = surrogates.REGISTRY[name]()
      pairs.append(Pair("braintools", name, reference, cls(**reference.params)))
  return pairs


def spyx_pairs(module: object, names: list[str]) -> list[Pair]:
  """spyx.axn factories and their reference equivalents.

  triangular(k) = ReluGrad(alpha=k, width=1/k) and arctan(k) = Arctan(alpha=2k)/(kπ) are timed
  at spyx's defaults; spyx's ``custom()`` default backward is g(x) = x, so the straight-through
  estimator is ``custom(bwd=ones_like)``.
  """
  import jax.numpy as jnp

  table = {
      "Tanh": lambda: (surrogates.Tanh(k=1.0), module.tanh(k=1.0)),
      "Boxcar": lambda: (surrogates.Boxcar(width=2.0, height=0.5), module.boxcar(width=2.0, height=0.5)),
      "InvSquareGrad": lambda: (surrogates.InvSquareGrad(alpha=100.0), module.superspike(k=100.0)),
      "ReluGrad": lambda: (surrogates.triangular(k=2.0), module.triangular(k=2.0)),
      "Arctan": lambda: (surrogates.spyx_arctan(k=2.0), module.arctan(k=2.0)),
      "StraightThrough": lambda: (surrogates.StraightThrough(), module.custom(bwd=jnp.ones_like)),
  }
  return [Pair("spyx", name, *table[name]()) for name in names if name in table]


def pairs(library: str, names: list[str]) -> tuple[list[Pair], str]:
  """The pairs a peer library offers among ``names``, or ([], the reason it is skipped)."""
  module, reason = load(library)
  if module is None:
    return [], reason
  build = braintools_pairs if library == "braintools" else spyx_pairs
  return build(module, names), ""
