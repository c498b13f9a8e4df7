"""What every library adapter shares: how a library's surrogate maps onto a reference one.

A :class:`Mapping` records, for one exported call of a library, the reference surrogate it
implements and the exact parameter translation: ``to_ref(lib) -> (ref_params, scale)`` with
``g_library = scale · g_reference``. The parameter sets checked are the library's defaults, every
representative set of the reference that the library can express (``from_ref``), and a few extra
library sets where no reference set maps.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import inspect
from collections.abc import Callable, Iterable
from collections.abc import Mapping as MappingT
from typing import Any

import surrogates

Params = dict[str, Any]
ToRef = Callable[[Params], tuple[Params, float]]
FromRef = Callable[[Params], Params | None]


def same(*names: str) -> tuple[ToRef, FromRef]:
  """The identity translation: the library's parameters are the reference's, scale 1."""

  def to_ref(lib: Params) -> tuple[Params, float]:
    return {n: lib[n] for n in names}, 1.0

  def from_ref(ref: Params) -> Params:
    return {n: ref[n] for n in names}

  return to_ref, from_ref


def renamed(pairs: MappingT[str, str]) -> tuple[ToRef, FromRef]:
  """Library name -> reference name, same values, scale 1."""

  def to_ref(lib: Params) -> tuple[Params, float]:
    return {r: lib[n] for n, r in pairs.items()}, 1.0

  def from_ref(ref: Params) -> Params:
    return {n: ref[r] for n, r in pairs.items()}

  return to_ref, from_ref


def never(ref: Params) -> None:
  """``from_ref`` for a library whose parameterisation reaches no reference set."""
  return None


@dataclasses.dataclass(frozen=True)
class Mapping:
  """One exported call of a library and the reference surrogate it implements."""

  export: str
  reference: str
  to_ref: ToRef
  from_ref: FromRef = never
  #: Other exported names exercised by the same code (functional forms, autograd Functions).
  covers: tuple[str, ...] = ()
  #: Further library parameter sets, for where no reference set maps.
  extra: tuple[Params, ...] = ()
  #: Library defaults, when they cannot be read from the call's signature.
  defaults: Params | None = None
  #: Convention facts worth showing with the results (boundary values, term counts).
  note: str = ""

  @property
  def exports(self) -> tuple[str, ...]:
    return (self.export, *self.covers)


def signature_defaults(fn: Callable[..., Any], skip: Iterable[str] = ("x", "spiking")) -> Params:
  """Keyword defaults of a callable (its parameters other than the input)."""
  skipped = set(skip)
  return {
      name: p.default
      for name, p in inspect.signature(fn).parameters.items()
      if name not in skipped and p.default is not inspect.Parameter.empty
  }


def parameter_sets(m: Mapping, lib_defaults: Params) -> list[Params]:
  """Library defaults, then each reference representative set the library can express, then extras."""
  cls = surrogates.REGISTRY[m.reference]
  ref_defaults = cls().params
  found: list[Params] = [dict(lib_defaults)]
  for example in cls.examples:
    lib = m.from_ref({**ref_defaults, **example})
    if lib is not None:
      found.append({**lib_defaults, **lib})
  found.extend({**lib_defaults, **extra} for extra in m.extra)
  unique: dict[tuple, Params] = {}
  for params in found:
    unique.setdefault(tuple(sorted(params.items())), params)
  return list(unique.values())


def call_string(prefix: str, params: MappingT[str, Any]) -> str:
  """``'snntorch.surrogate.atan' + {'alpha': 2.0}`` -> ``"snntorch.surrogate.atan(alpha=2.0)"``."""
  return f"{prefix}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


def installed_version(package: str) -> str:
  """The installed distribution's version ("" when it is not installed)."""
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return ""


def notes(library: str, version: str, call: str, m: Mapping, ref: Params, scale: float) -> dict[str, Any]:
  """The facts shown with each result: where it comes from and how it was mapped."""
  args = ", ".join(f"{k}={v!r}" for k, v in ref.items())
  out: dict[str, Any] = {
      "library": library,
      "version": version,
      "call": call,
      "reference": f"{m.reference}({args})",
      "scale": scale,
      "exports": list(m.exports),
  }
  if m.note:
    out["convention"] = m.note
  return out


#: ``build(m, params, ref)`` -> (the call a reader can paste, the candidate's callables), or None to
#: leave that parameter set out.
Build = Callable[[Mapping, Params, Params], "tuple[str, dict[str, Any]] | None"]


def mapped_candidates(package: str, version: str, module: Any, mappings: Iterable[Mapping], build: Build) -> list:
  """One candidate per exported, mapped surrogate and parameter set (library defaults, the reference's
  representative sets that map, and the mapping's extras)."""
  from verification.core.candidate import Candidate

  out = []
  for m in mappings:
    export = getattr(module, m.export, None)
    if export is None:
      continue
    defaults = dict(m.defaults) if m.defaults is not None else signature_defaults(export)
    for params in parameter_sets(m, defaults):
      ref, scale = m.to_ref(params)
      built = build(m, params, ref)
      if built is None:
        continue
      call, fns = built
      out.append(Candidate(name=m.reference, params=ref, scale=scale, label=call,
                           notes=notes(package, version, call, m, ref, scale), **fns))
  return out
