"""Surrogate names as users write them: class names, snake_case names, other libraries' aliases.

A candidate's ``name`` (and ``--only``) may be any of

* the class name, ``"InvSquareGrad"``;
* its snake_case form, ``"inv_square_grad"`` (hyphens and letter case are forgiven: ``"Inv-Square-Grad"``);
* an alias from :data:`surrogates.ALIASES` with the alias's own parameters: ``{"name": "fast_sigmoid",
  "params": {"slope": 25}}`` is ``InvSquareGrad(alpha=25)``, the alias's documented mapping.

An unknown name raises :class:`UnknownName` with the closest known names (``difflib``); an unknown
parameter raises it with the parameters that name accepts.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import surrogates
from surrogates._core import snake_case


class UnknownName(ValueError):
  """A surrogate name or parameter that the registry does not know; the message lists close matches."""


@dataclasses.dataclass(frozen=True)
class Entry:
  """What a name resolves to: the registry class or alias, and the parameter names it accepts."""

  #: The key in ``surrogates.REGISTRY`` or ``surrogates.ALIASES``.
  key: str
  build: Callable[..., surrogates.Surrogate]
  parameters: tuple[str, ...]
  is_alias: bool


def _entries() -> dict[str, Entry]:
  """The registry's and the aliases' entries, as they are now (a surrogate registered later is seen)."""
  return _entries_of(tuple(surrogates.REGISTRY.items()), tuple(surrogates.ALIASES.items()))


@functools.lru_cache(maxsize=4)
def _entries_of(registry: tuple, aliases: tuple) -> dict[str, Entry]:
  """The entries of these registry and alias items (kept: a run looks names up thousands of times)."""
  out = {}
  for key, cls in registry:
    out[key] = Entry(key, cls, tuple(f.name for f in dataclasses.fields(cls)), False)
  for key, fn in aliases:
    out[key] = Entry(key, fn, tuple(inspect.signature(fn).parameters), True)
  return out


def _loose(name: str) -> str:
  return name.replace("-", "").replace("_", "").lower()


def _spellings() -> dict[str, str]:
  """Every accepted spelling -> registry/alias key. Exact keys first, so an alias never shadows a class."""
  return _spellings_of(_entries())


def _spellings_of(entries: dict[str, Entry]) -> dict[str, str]:
  cached = _SPELLINGS.get(id(entries))
  if cached is not None and cached[0] is entries:
    return cached[1]
  out: dict[str, str] = {}
  for key in entries:
    for spelling in (key, snake_case(key), _loose(key)):
      out.setdefault(spelling, key)
  _SPELLINGS.clear()
  _SPELLINGS[id(entries)] = (entries, out)
  return out


_SPELLINGS: dict[int, tuple[dict[str, Entry], dict[str, str]]] = {}


def lookup(name: str) -> Entry:
  """The registry class or alias that ``name`` spells; raises :class:`UnknownName` with close matches."""
  if not isinstance(name, str):
    raise UnknownName(f"a surrogate name must be a string, got {name!r}")
  spellings = _spellings()
  for form in (name, name.replace("-", "_"), _loose(name)):
    if form in spellings:
      return _entries()[spellings[form]]
  shown = sorted(set(spellings.values()) | {snake_case(k) for k in surrogates.REGISTRY})
  close = difflib.get_close_matches(name, shown, n=5, cutoff=0.5)
  close = close or difflib.get_close_matches(_loose(name), shown, n=5, cutoff=0.5)
  close = list(dict.fromkeys(spellings.get(c, c) for c in close))  # each surrogate once, as registered
  hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
  raise UnknownName(f"unknown surrogate {name!r}{hint} (known: {', '.join(sorted(set(spellings.values())))})")


def build(name: str, params: Mapping[str, Any] | None = None) -> surrogates.Surrogate:
  """The reference surrogate ``name`` at ``params`` (the alias's parameter names for an alias).

  Raises :class:`UnknownName` for an unknown name or parameter (naming the accepted parameters) and
  the surrogate's own ``ValueError`` for a value outside its domain.
  """
  entry = lookup(name)
  params = dict(params or {})
  unknown = [p for p in params if p not in entry.parameters]
  if unknown:
    what = f"alias {entry.key!r}" if entry.is_alias else entry.key
    close = {p: difflib.get_close_matches(p, entry.parameters, n=1, cutoff=0.5) for p in unknown}
    hints = "".join(f"; {p!r}: did you mean {c[0]!r}?" for p, c in close.items() if c)
    accepted = ", ".join(entry.parameters) or "none"
    raise UnknownName(f"{what} has no parameter {', '.join(map(repr, unknown))}{hints} (accepted: {accepted})")
  return entry.build(**params)


def canonical(name: str) -> str:
  """The registry class name a spelling refers to (``"fast_sigmoid"`` -> ``"InvSquareGrad"``)."""
  entry = lookup(name)
  return entry.build().name if entry.is_alias else entry.key


def matches(name: str, label: str, wanted: Iterable[str]) -> bool:
  """Whether a candidate (its surrogate ``name`` and ``label``) is selected by ``--only wanted``:
  a wanted label, or a wanted spelling of the same registry class (``--only fast_sigmoid`` selects
  every InvSquareGrad candidate). A name that is not in the registry matches only itself."""
  wanted = set(wanted)
  if not wanted or label in wanted or name in wanted:
    return True
  try:
    mine = canonical(name)
  except UnknownName:
    return False
  for w in wanted:
    try:
      if canonical(w) == mine:
        return True
    except UnknownName:
      continue
  return False


__all__ = ["Entry", "UnknownName", "build", "canonical", "lookup", "matches"]
