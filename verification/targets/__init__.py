"""Targets: where candidates come from, loaded in one place.

A target is ``reference`` (the default), a built-in library name (``braintools``, ``NAME==VERSION``
to insist on a version; see ``builtin.json``) or ``module:ATTR``. The attribute must be one of the
documented kinds:

* a candidate (a :class:`~verification.core.candidate.Candidate`, a mapping, or an object with ``name``,
  ``params`` and ``fn``/``forward``);
* an iterable of candidates (a list, a tuple, a generator, even a set: candidates are matched by
  label, never by position), whose items may also be candidate factories;
* a candidate factory: a zero-argument function marked with
  :func:`verification.core.candidate.candidate_factory`, returning either of the above.

Anything else (``builtins:print``) is a :class:`TargetError`. So is a module that cannot be imported,
an attribute that is missing, an iterable that raises, or two candidates with the same label. An
item that cannot be built (its factory raises, a field has the wrong type) does not stop the target:
it becomes an :class:`~verification.core.candidate.Unbuilt`, reported as an ``error`` result.

Each built-in module here exposes ``PACKAGE``, ``version()``, ``candidates()`` and ``UNMAPPED``
(exported surrogates that are not checked, with the reason), and, where it adapts the library's LIF
layers, ``layer_candidates()`` (listed after the spike-function candidates). ``builtin.json`` says what to install
for each (an entry with ``not_checkable``, lava-dl, names a library that cannot be installed here,
with the reason); it is plain JSON so that a tool without the project's dependencies can read it.
Nothing here imports a library until asked.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

BUILTIN_JSON = Path(__file__).with_name("builtin.json")


class TargetError(Exception):
  """A target that cannot be loaded: a usage error (exit status 2), with a message naming the target."""


@dataclasses.dataclass(frozen=True)
class Target:
  """What a target spec resolves to: its candidates (built or not), its name and library."""

  name: str
  candidates: tuple[Any, ...]  # Candidate | Unbuilt, in the target's order
  library: Mapping[str, Any] | None = None
  is_reference: bool = False
  #: Where a worker listed the target for a run with ``--only``: each of its candidates' surrogate names and each
  #: ``--only`` spelling, as the registry class it spells (None: none), resolved by that worker
  #: (:func:`spelled`), so the harness process selects without importing the registry (and JAX).
  spelled: Mapping[str, str | None] | None = None

  @property
  def labels(self) -> list[str]:
    return [c.label for c in self.candidates]


def builtin() -> dict[str, dict[str, Any]]:
  """The built-in targets: name -> module, package, default_version, extra_requirements, pip_args."""
  return json.loads(BUILTIN_JSON.read_text())


builtin_targets = builtin


def load(name: str) -> ModuleType:
  """The adapter module of a built-in target (imports the library only when its candidates are built)."""
  targets = builtin()
  if name not in targets:
    raise KeyError(f"unknown built-in target {name!r}; known: {', '.join(sorted(targets))}")
  if targets[name].get("not_checkable"):
    raise TargetError(f"{name} is not checkable here: {targets[name]['not_checkable']}")
  return importlib.import_module(targets[name]["module"])


def checkable() -> dict[str, dict[str, Any]]:
  """The built-in targets that can be installed and checked here (not marked ``not_checkable``)."""
  return {name: spec for name, spec in builtin().items() if not spec.get("not_checkable")}


def requirements(name: str, version: str | None = None) -> list[str]:
  """The pip arguments that install a built-in target: extra requirements first, then the package."""
  spec = builtin()[name]
  pinned = f"{spec['package']}=={version or spec['default_version']}"
  return [*spec.get("pip_args", []), *spec["extra_requirements"], pinned]


def _describe(exc: BaseException) -> str:
  return f"{type(exc).__name__}: {exc}"


def build_items(items: Iterable[Any], where: str) -> tuple[Any, ...]:
  """Candidates from the items of a target: factories called, mappings normalised; an item that
  cannot be built (a factory that raises, an object that is no candidate) is an :class:`Unbuilt`
  labelled by its own label if it has one, else by its position. A candidate whose fields are
  malformed (a field of the wrong type) is a :class:`TargetError` naming the field: a usage error."""
  from verification.core.candidate import Unbuilt, as_candidate, is_factory
  from verification.core.candidate import looks_like_candidate as looks_like_spike
  from verification.core.layer import as_layer, looks_like_layer

  def looks_like_candidate(item: Any) -> bool:  # a spike function or a layer (verification.core.layer)
    return looks_like_layer(item) or looks_like_spike(item)

  def as_any(item: Any) -> Any:
    return as_layer(item) if looks_like_layer(item) else as_candidate(item)

  out: list[Any] = []
  try:
    listed = list(items)
  except Exception as exc:
    raise TargetError(f"{where} cannot be iterated: {_describe(exc)}") from exc
  for i, item in enumerate(listed):
    label = _label_of(item) or f"{where}[{i}]"
    try:
      if is_factory(item):
        label = _label_of(item) or f"{where}[{i}] ({getattr(item, '__qualname__', 'factory')})"
        built = item()
        if not looks_like_candidate(built):  # a factory item may return several candidates
          out.extend(build_items(built, f"{where}[{i}]()"))
          continue
        item = built
      if not looks_like_candidate(item):
        raise TypeError(f"a {type(item).__name__} is not a candidate (no name/params/fn): {item!r:.120}")
    except TargetError:
      raise
    except Exception as exc:
      out.append(Unbuilt(label=label, message=f"the candidate {label} could not be built: {_describe(exc)}",
                         name=str(_field(item, "name") or "?"), params=_params_of(item)))
      continue
    try:
      out.append(as_any(item))
    except (TypeError, ValueError) as exc:  # a field of the wrong type: the author's to fix, before any checking
      raise TargetError(f"{where}: the candidate {label} is malformed: {exc}") from exc
    except TargetError:
      raise
    except Exception as exc:
      out.append(Unbuilt(label=label, message=f"the candidate {label} could not be built: {_describe(exc)}",
                         name=str(_field(item, "name") or "?"), params=_params_of(item)))
  return tuple(out)


def _field(item: Any, key: str) -> Any:
  try:
    return item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)
  except Exception:
    return None


def _label_of(item: Any) -> str | None:
  label = _field(item, "label")
  return label if isinstance(label, str) and label else None


def _params_of(item: Any) -> dict[str, Any]:
  params = _field(item, "params")
  return dict(params) if isinstance(params, Mapping) else {}


def load_target(spec: str) -> tuple[Any, ...]:
  """``module:ATTR`` -> its candidates (see the module docstring for the accepted kinds)."""
  from verification.core.candidate import is_factory, looks_like_candidate
  from verification.core.layer import looks_like_layer

  module_name, sep, attr = spec.partition(":")
  if not sep or not module_name or not attr:
    raise TargetError(f"--target {spec!r}: expected MODULE:ATTR, 'reference' or a built-in name "
                      f"({', '.join(builtin())})")
  try:
    obj: Any = importlib.import_module(module_name)
  except BaseException as exc:  # SystemExit from a module is a loading failure too
    if isinstance(exc, KeyboardInterrupt):
      raise
    raise TargetError(f"--target {spec}: cannot import {module_name!r}: {_describe(exc)}") from exc
  for part in attr.split("."):
    try:
      obj = getattr(obj, part)
    except Exception as exc:
      raise TargetError(f"--target {spec}: {_describe(exc)}") from exc
  if is_factory(obj):
    try:
      obj = obj()
    except Exception as exc:
      raise TargetError(f"--target {spec}: the candidate factory raised {_describe(exc)}") from exc
  if looks_like_candidate(obj) or looks_like_layer(obj):
    return build_items([obj], spec)
  if isinstance(obj, str | bytes | Mapping) or not isinstance(obj, Iterable):
    what = type(obj).__name__
    hint = " (a callable: mark it with @verification.core.candidate.candidate_factory to have it called)" \
        if callable(obj) else ""
    raise TargetError(f"--target {spec}: found a {what}{hint}; expected a candidate, an iterable of candidates "
                      "or a candidate factory")
  return build_items(obj, spec)


def _layer_factory(module: ModuleType) -> list[Any]:
  """The adapter's layer candidates as one factory item (none where it adapts no layer): a library whose layer
  modules cannot be imported gives an unbuilt item, reported as an error, beside its spike-function candidates."""
  from verification.core.candidate import candidate_factory

  layers = getattr(module, "layer_candidates", None)
  return [] if layers is None else [candidate_factory(layers)]


def resolve_target(spec: str | None) -> Target:
  """The target named by ``spec`` (None or "reference": the reference itself); raises TargetError."""
  from verification.core.candidate import reference_candidates

  if spec in (None, "", "reference"):
    return Target("reference", tuple(reference_candidates()), None, True)
  name, _, wanted_version = spec.partition("==")
  if name in builtin():
    try:
      module = load(name)
      cands = build_items([*module.candidates(), *_layer_factory(module)], name)
      version = module.version()
    except TargetError:
      raise
    except Exception as exc:
      raise TargetError(f"--target {spec}: the {name} adapter failed: {_describe(exc)}") from exc
    if wanted_version and version != wanted_version:
      raise TargetError(f"--target {spec}: {module.PACKAGE} {version} is installed, not {wanted_version}")
    info = {"name": module.PACKAGE, "version": version, "unmapped": dict(module.UNMAPPED)}
    return Target(name, cands, info, False)
  return Target(spec, load_target(spec), None, False)


def duplicates(labels: Iterable[str]) -> list[str]:
  """Labels that occur more than once (candidates are identified by label, so this is a usage error)."""
  return sorted(label for label, n in collections.Counter(labels).items() if n > 1)


def select(candidates: Iterable[Any], only: Iterable[str] = (),
           spelled: Mapping[str, str | None] | None = None) -> list[Any]:
  """The candidates named by ``only`` (labels, or any spelling of a surrogate: see :mod:`verification.core.names`);
  all of them when it is empty. ``spelled`` (:func:`spelled`, made where the target was loaded) gives the registry
  class of each name and spelling; without it they are looked up in the registry here."""
  wanted = set(only)
  if not wanted:
    return list(candidates)
  if spelled is None:
    from verification.core import names

    return [c for c in candidates if names.matches(c.name, c.label, wanted)]
  classes = {spelled.get(w) for w in wanted} - {None}
  return [c for c in candidates if c.label in wanted or c.name in wanted or spelled.get(c.name) in classes]


def spelled(names: Iterable[str]) -> dict[str, str | None]:
  """Each surrogate name or spelling as the registry class it spells (``"fast_sigmoid"``: ``"InvSquareGrad"``),
  None where it spells none: what :func:`select` matches ``--only`` by (as :func:`verification.core.names.matches`
  does)."""
  from verification.core import names as registry_names

  out: dict[str, str | None] = {}
  for name in names:
    try:
      out[name] = registry_names.canonical(name)
    except registry_names.UnknownName:
      out[name] = None
  return out


def load_candidates(spec: str | None, only: Iterable[str] = ()) -> list[Any]:
  """The candidates of a target, filtered by ``only``."""
  return select(resolve_target(spec).candidates, only)
