"""The candidate protocol: what a target yields, normalised into :class:`Candidate`.

A target is ``module:ATTRIBUTE`` (or a built-in name such as ``braintools``). The attribute is a
candidate, an iterable of candidates, or a callable returning either. A candidate is any object or
mapping with ``name``, ``params``, ``fn`` and optionally ``surrogate_fun``, ``surrogate_grad``,
``label`` and ``scale`` (see the specification).

Implementations that are not JAX (torch libraries) are adapted as ``backend="numpy"``
candidates: ``forward(x) -> H(x)`` and ``vjp(x, ct) -> ct * g(x)`` on NumPy arrays of any float
dtype; checks that need JAX transforms are skipped for them with the reason. A ``backend="torch"``
candidate also gives its torch spike function as ``fn``: the autodiff check judges it with torch's
own transforms (``verification/torch_checks.py``).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import surrogates

Backend = Literal["jax", "numpy", "torch"]


@dataclasses.dataclass(frozen=True)
class Candidate:
  """One implementation of one reference surrogate at one parameter set."""

  name: str
  params: Mapping[str, Any]
  fn: Callable[..., Any] | None = None
  surrogate_fun: Callable[..., Any] | None = None
  surrogate_grad: Callable[..., Any] | None = None
  label: str = ""
  scale: float = 1.0
  #: "jax": ``fn`` is a JAX spike function. "numpy": use ``forward`` and ``vjp`` below. "torch": ``fn``
  #: takes and returns torch tensors (judged with torch's transforms), ``forward``/``vjp`` as for "numpy".
  backend: Backend = "jax"
  forward: Callable[..., Any] | None = None
  vjp: Callable[..., Any] | None = None
  #: Free-form notes shown with the results (library, version, the call that built it).
  notes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  #: Optional ``factory(**params) -> spike function`` that rebuilds ``fn`` at other (possibly traced)
  #: parameter values, with the reference's parameter names; enables the parameters check.
  factory: Callable[..., Any] | None = None

  def __post_init__(self) -> None:
    if not self.label:
      args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
      object.__setattr__(self, "label", f"{self.name}({args})")

  def reference(self) -> surrogates.Surrogate:
    """The reference surrogate this candidate claims to implement (raises KeyError/ValueError)."""
    return surrogates.REGISTRY[self.name](**self.params)


_FIELDS = ("name", "params", "fn", "surrogate_fun", "surrogate_grad", "label", "scale")
_EXTRA = ("backend", "forward", "vjp", "notes", "factory")


def as_candidate(obj: Any) -> Candidate:
  """Normalises an object or mapping following the protocol into a :class:`Candidate`."""
  if isinstance(obj, Candidate):
    return obj
  get = obj.get if isinstance(obj, Mapping) else lambda k, d=None: getattr(obj, k, d)
  missing = [k for k in ("name", "params") if get(k) is None]
  if missing:
    raise TypeError(f"not a candidate: {obj!r} has no {', '.join(missing)}")
  values = {k: get(k) for k in (*_FIELDS, *_EXTRA) if get(k) is not None}
  values["params"] = dict(values["params"])
  values["scale"] = float(values.get("scale", 1.0))
  return Candidate(**values)


def reference_candidates(only: Iterable[str] | None = None) -> list[Candidate]:
  """The reference itself as candidates: every registry surrogate at each representative set."""
  wanted = set(only) if only else None
  return [
      Candidate(
          name=s.name, params=s.params, fn=s, surrogate_fun=s.surrogate_fun, surrogate_grad=s.surrogate_grad,
          label=repr(s),
      )
      for s in surrogates.instances()
      if wanted is None or s.name in wanted
  ]


def load_target(spec: str) -> list[Candidate]:
  """``module:ATTR`` -> candidates. The attribute may be a candidate, an iterable, or a callable."""
  module_name, _, attr = spec.partition(":")
  obj: Any = importlib.import_module(module_name)
  for part in filter(None, attr.split(".")):
    obj = getattr(obj, part)
  if callable(obj) and not _looks_like_candidate(obj):
    obj = obj()
  items = [obj] if _looks_like_candidate(obj) else list(obj)
  return [as_candidate(item) for item in items]


def _looks_like_candidate(obj: Any) -> bool:
  if isinstance(obj, Mapping):
    return "name" in obj and "params" in obj
  return hasattr(obj, "name") and hasattr(obj, "params") and (hasattr(obj, "fn") or hasattr(obj, "forward"))


def builtin_targets() -> dict:
  """Built-in target names (published libraries) -> how to load and install them."""
  from verification import targets

  return targets.builtin()


def select(candidates: Iterable[Candidate], only: frozenset[str] = frozenset()) -> list[Candidate]:
  """The candidates named by --only (surrogate names or labels); all of them when it is empty."""
  return [c for c in candidates if not only or c.name in only or c.label in only]


def load_candidates(spec: str | None, only: frozenset[str] = frozenset()) -> list[Candidate]:
  """The candidates of a target, filtered by --only (module-level, so worker processes can call it)."""
  return select(resolve_target(spec)[0], only)


def resolve_target(spec: str | None) -> tuple[list[Candidate], str, dict | None, bool]:
  """Returns (candidates, target name, library info, is_reference)."""
  from verification import targets

  if spec in (None, "", "reference"):
    return reference_candidates(), "reference", None, True
  name, _, wanted_version = spec.partition("==")
  if name in targets.builtin():
    module = targets.load(name)
    cands = list(module.candidates())
    version = module.version()
    if wanted_version and version != wanted_version:
      raise SystemExit(f"--target {spec}: {module.PACKAGE} {version} is installed, not {wanted_version}")
    info = {"name": module.PACKAGE, "version": version, "unmapped": dict(module.UNMAPPED)}
    return cands, name, info, False
  return load_target(spec), spec, None, False
