"""Other libraries' JAX implementations of the reference surrogates, from the verification adapters.

The adapters in ``verification/targets/`` know each library's module, version and parameter mapping
(``g_library = scale * g_reference``); this module only picks, per surrogate, the first JAX candidate
an adapter yields (the library's defaults of its first export) and the reference surrogate it equals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import surrogates
from surrogates import Surrogate
from verification import targets

#: Built-in targets with JAX candidates (the torch libraries are timed in the layer benchmark).
LIBRARIES = ("braintools", "spyx")


@dataclasses.dataclass(frozen=True)
class Peer:
  """A peer's spike function and the reference surrogate it implements (scaled as the adapter says)."""

  library: str
  name: str
  reference: Surrogate
  spike: Callable


def reference_of(name: str, params: dict, scale: float) -> Surrogate:
  """The reference surrogate ``scale * REGISTRY[name](**params)``."""
  ref = surrogates.REGISTRY[name](**params)
  return ref if scale == 1.0 else surrogates.Scaled(ref, scale)


def peers(library: str, names: list[str]) -> tuple[list[Peer], str]:
  """One peer per surrogate among ``names`` that ``library`` implements in JAX, at the library's
  defaults; or ([], the reason the library is unavailable)."""
  try:
    found = targets.load(library).candidates()
  except Exception as exc:
    return [], f"{library} not importable: {type(exc).__name__}: {exc}"
  out: dict[str, Peer] = {}
  for c in found:
    if c.backend == "jax" and c.fn is not None and c.name in names and c.name not in out:
      out[c.name] = Peer(library, c.name, reference_of(c.name, dict(c.params), c.scale), c.fn)
  return list(out.values()), ""


def versions() -> dict[str, str | None]:
  """The installed version of every built-in target library (None when absent)."""
  return {name: targets.load(name).version() or None for name in targets.checkable()}
