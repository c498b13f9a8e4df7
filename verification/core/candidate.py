"""The candidate protocol: what a target yields, normalised into :class:`Candidate`.

A candidate is any object or mapping with ``name``, ``params``, ``fn`` and optionally
``surrogate_fun``, ``surrogate_grad``, ``label`` and ``scale`` (see the specification). Where a
target is found and how it is loaded is :mod:`verification.targets`; this module imports no adapter.

A torch candidate is its spike function: ``fn`` takes and returns tensors (a function, an
``autograd.Function`` or its ``apply``, an ``nn.Module``, a ``torch.library`` custom op), with
``backend="torch"`` or the backend inferred from ``fn`` (:func:`verification.core.torch_bridge.is_torch_callable`).
The checks judge it with torch's own transforms (the ``check_torch`` forms in :mod:`verification.checks`,
under the same names as the JAX forms); the NumPy bridges the numerical checks use are built from
``fn`` (:func:`verification.core.torch_bridge.torch_fields`). Its ``surrogate_grad`` and ``surrogate_fun``
may be torch or NumPy functions. Any other implementation is a ``backend="numpy"`` candidate:
``forward(x) -> H(x)`` and ``vjp(x, ct) -> ct * g(x)`` on NumPy arrays of any float dtype; checks that
need a framework's transforms are skipped for it with the reason.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import numpy as np

from verification.core import torch_bridge

if typing.TYPE_CHECKING:  # imported where used: the harness process reads Listed and Unbuilt records without JAX
  import surrogates

Backend = Literal["jax", "numpy", "torch"]


@dataclasses.dataclass(frozen=True)
class Candidate:
  """One implementation of one reference surrogate at one parameter set.

  Construction validates the fields' types (``name`` a string, ``params`` a mapping, ``scale`` a real
  finite number, the callables callable) and raises ``TypeError``/``ValueError`` naming the field.

  ``name`` is any spelling :mod:`verification.core.names` accepts (class name, snake_case, alias) and
  ``params`` that name's parameters. A candidate may instead carry its own declaration in
  ``surrogate`` (a :class:`surrogates.Surrogate` subclass instance, registered or not): it is then
  judged against that declaration (g, P, kinks, jumps, mass, limits, length scale), the differential
  check is skipped (no reference), ``name``/``params`` default to the declaration's and ``fn`` to the
  declaration's own spike function.
  """

  name: str = ""
  params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  fn: Callable[..., Any] | None = None
  surrogate_fun: Callable[..., Any] | None = None
  surrogate_grad: Callable[..., Any] | None = None
  label: str = ""
  scale: float = 1.0
  #: "jax": ``fn`` is a JAX spike function. "numpy": use ``forward`` and ``vjp`` below. "torch": ``fn``
  #: takes and returns torch tensors (judged with torch's transforms); ``forward``/``vjp`` as for "numpy",
  #: built from ``fn`` where not given. None (the default): "torch" for a torch ``fn``, "numpy" for
  #: ``forward``/``vjp`` without ``fn``, else "jax".
  backend: Backend | None = None
  forward: Callable[..., Any] | None = None
  vjp: Callable[..., Any] | None = None
  #: Free-form notes shown with the results (library, version, the call that built it).
  notes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  #: Optional ``factory(**params) -> spike function`` that rebuilds ``fn`` at other (possibly traced)
  #: parameter values, with the reference's parameter names; enables the parameters check.
  factory: Callable[..., Any] | None = None
  #: The candidate's own declaration, instead of a registry entry named by ``name``.
  surrogate: surrogates.Surrogate | None = None
  #: θ where the candidate calls a library at v = x + θ (a membrane potential and its threshold),
  #: the sum rounded in x's dtype: the library then receives fl(x + θ) - θ, not x, and checks that
  #: need an exact input (the forward's H at ±0, ±tiny and subnormals) judge it at that input
  #: (:meth:`received`). 0 (the default): the candidate takes x itself.
  input_offset: float = 0.0

  def __post_init__(self) -> None:
    if self.surrogate is not None:
      import surrogates

      if not isinstance(self.surrogate, surrogates.Surrogate):
        raise TypeError(f"surrogate={self.surrogate!r}: expected a surrogates.Surrogate instance")
      object.__setattr__(self, "name", self.name or self.surrogate.name)
      object.__setattr__(self, "params", self.params or dict(self.surrogate.params))
      if self.fn is None and self.forward is None:
        object.__setattr__(self, "fn", self.surrogate)
        object.__setattr__(self, "surrogate_fun", self.surrogate_fun or self.surrogate.surrogate_fun)
        object.__setattr__(self, "surrogate_grad", self.surrogate_grad or self.surrogate.surrogate_grad)
    if not isinstance(self.name, str) or not self.name:
      raise TypeError(f"name={self.name!r}: expected the name of a reference surrogate (a string)")
    if not isinstance(self.params, Mapping):
      raise TypeError(f"params={self.params!r}: expected a mapping of parameter names to values")
    object.__setattr__(self, "scale", _real(self.scale))
    object.__setattr__(self, "input_offset", _real(self.input_offset, "input_offset", "the θ of v = x + θ"))
    object.__setattr__(self, "params", dict(self.params))
    if self.backend is None:
      inferred = "torch" if torch_bridge.is_torch_callable(self.fn) else \
          "numpy" if self.fn is None and self.forward is not None else "jax"
      object.__setattr__(self, "backend", inferred)
    if self.backend not in typing.get_args(Backend):
      raise ValueError(f"backend={self.backend!r}: expected one of {typing.get_args(Backend)}")
    if self.backend == "torch":
      if not callable(self.fn):
        raise TypeError(f"fn={self.fn!r}: a torch candidate needs its spike function (tensors in, tensors out) as fn")
      bridges = torch_bridge.torch_fields(self.fn)
      object.__setattr__(self, "fn", bridges["fn"])
      for field in ("forward", "vjp"):
        if getattr(self, field) is None:
          object.__setattr__(self, field, bridges[field])
    needed = ("fn",) if self.backend == "jax" else ("forward", "vjp")
    for field in needed:
      if not callable(getattr(self, field)):
        raise TypeError(f"{field}={getattr(self, field)!r}: a {self.backend} candidate needs a callable {field}")
    for field in ("surrogate_fun", "surrogate_grad", "factory"):
      value = getattr(self, field)
      if value is not None and not callable(value):
        raise TypeError(f"{field}={value!r}: expected a callable or None")
    if not self.label:
      args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
      object.__setattr__(self, "label", f"{self.name}({args})")
    elif not isinstance(self.label, str):
      raise TypeError(f"label={self.label!r}: expected a string")

  def reference(self) -> surrogates.Surrogate:
    """The surrogate this candidate claims to implement: its own declaration, or the registry entry
    its name spells (raises ValueError naming close matches and the accepted parameters)."""
    if self.surrogate is not None:
      return self.surrogate
    from verification.core import names

    return names.build(self.name, self.params)

  def received(self, x: np.ndarray) -> np.ndarray:
    """The inputs (float64) the candidate's library receives for x: fl(x + θ) - θ with the sum
    rounded in x's dtype (NumPy rounds a float16 or bfloat16 sum once, as JAX and torch do), so
    every |x| below half an ulp of θ arrives as +0; x itself where :attr:`input_offset` is 0. The
    difference is exact in float64 (two numbers of a narrower dtype near each other)."""
    x = np.asarray(x)
    if not self.input_offset:
      return x.astype(np.float64)
    return (x + np.asarray(self.input_offset, x.dtype)).astype(np.float64) - self.input_offset


def _real(value: Any, field: str = "scale", what: str = "g_candidate = scale · g_reference") -> float:
  """A real finite number (a Python or NumPy number, a 0-d array); strings and booleans are refused."""
  try:
    if isinstance(value, bool | str | bytes | complex) or str(getattr(value, "dtype", "")) == "bool":
      raise TypeError
    out = float(value)
  except (TypeError, ValueError):
    raise TypeError(f"{field}={value!r}: expected a real finite number ({what})") from None
  if not math.isfinite(out):
    raise ValueError(f"{field}={value!r}: expected a real finite number ({what})")
  return out


@dataclasses.dataclass(frozen=True)
class Unbuilt:
  """An item of a target that could not be built into a candidate: an ``error`` result, with why."""

  label: str
  message: str
  name: str = "?"
  params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Listed:
  """A candidate of a target as the harness process knows it when a worker loaded the target: its
  label, name, parameters and notes as plain data (the code being judged stays in the workers)."""

  label: str
  name: str
  params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  notes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  #: What the judge process is given of it (:func:`judged_fields`, as the worker that listed it built it).
  fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)


_FIELDS = ("name", "params", "fn", "surrogate_fun", "surrogate_grad", "label", "scale")
_EXTRA = ("backend", "forward", "vjp", "notes", "factory", "surrogate", "input_offset")

#: The attribute that marks a zero-argument function as a candidate factory (see :func:`candidate_factory`).
FACTORY_MARK = "__candidate_factory__"


def candidate_factory(fn: Callable[[], Any]) -> Callable[[], Any]:
  """Marks a zero-argument function as a *candidate factory*: a target (or an item of one) that is
  called to build a candidate or an iterable of candidates. Only marked functions are called; a
  factory that raises is an ``error`` result for that item, the other items are still checked."""
  setattr(fn, FACTORY_MARK, True)
  return fn


def is_factory(obj: Any) -> bool:
  return callable(obj) and getattr(obj, FACTORY_MARK, False) is True


def looks_like_candidate(obj: Any) -> bool:
  """A Candidate, a mapping with ``name`` and ``params``, or an object with those and ``fn``/``forward``."""
  if isinstance(obj, Candidate):
    return True
  if isinstance(obj, Mapping):
    return ("name" in obj and "params" in obj) or "surrogate" in obj
  try:
    return hasattr(obj, "name") and hasattr(obj, "params") and (hasattr(obj, "fn") or hasattr(obj, "forward"))
  except Exception:  # a property that raises: not a candidate we can read
    return False


def as_candidate(obj: Any) -> Candidate:
  """Normalises an object or mapping following the protocol into a :class:`Candidate` (raises
  ``TypeError``/``ValueError`` naming the field that is missing or of the wrong type)."""
  if isinstance(obj, Candidate):
    return obj
  get = obj.get if isinstance(obj, Mapping) else lambda k, d=None: getattr(obj, k, d)
  missing = [k for k in ("name", "params") if get(k) is None and get("surrogate") is None]
  if missing:
    raise TypeError(f"not a candidate: {obj!r:.200} has no {', '.join(missing)}")
  values = {k: get(k) for k in (*_FIELDS, *_EXTRA) if get(k) is not None}
  return Candidate(**values)


def reference_candidates(only: Iterable[str] | None = None) -> list[Candidate]:
  """The reference itself as candidates: every registry surrogate at each representative set."""
  import surrogates

  wanted = set(only) if only else None
  return [
      Candidate(
          name=s.name, params=s.params, fn=s, surrogate_fun=s.surrogate_fun, surrogate_grad=s.surrogate_grad,
          label=repr(s), factory=type(s),
      )
      for s in surrogates.instances()
      if wanted is None or s.name in wanted
  ]


# -------------------------------------------------------------------------------------------------
# What the judge knows of a candidate
# -------------------------------------------------------------------------------------------------


def judged_fields(c: Candidate) -> dict[str, Any]:
  """The fields of a candidate the checks read besides its code, as JSON values: label, name, parameters,
  scale, backend, θ, notes, which optional callables it has, and its own declaration (a registered
  surrogate's class name and parameters, or ``"unregistered"``: code the judge would have to run)."""
  import json

  if getattr(c, "kind", "spike") == "layer":
    from verification.core.layer import layer_judged_fields

    return layer_judged_fields(c)
  declaration: Any = None
  if c.surrogate is not None:
    import surrogates

    cls = type(c.surrogate)
    registered = surrogates.REGISTRY.get(cls.__name__) is cls
    declaration = {"class": cls.__name__, "params": dict(c.surrogate.params)} if registered else "unregistered"
  fields = {"label": c.label, "name": c.name, "params": dict(c.params), "scale": c.scale, "backend": c.backend,
            "input_offset": c.input_offset, "notes": dict(c.notes or {}),
            "has": [f for f in ("surrogate_fun", "surrogate_grad", "factory") if getattr(c, f) is not None],
            "declaration": declaration}
  return json.loads(json.dumps(fields, default=repr))


def self_judged(fields: Mapping[str, Any]) -> bool:
  """Whether a candidate brings a declaration of its own that is not a registered surrogate: the judge
  would have to run its code to compute the reference, so it is judged in its worker (README, Isolation)."""
  return fields.get("declaration") == "unregistered"


def _not_here(*args: Any, **kwargs: Any) -> Any:
  raise RuntimeError("the judge process called a candidate's code: a check ran it outside a recorded call "
                     "(verification.core.tape)")


def stand_in(fields: Mapping[str, Any]) -> Candidate:
  """The candidate as the judge process sees it (:func:`judged_fields`): its data, and callables that
  raise if called (the judge never runs candidate code: the checks' recorded calls replay the worker's
  record)."""
  if fields.get("kind") == "layer":
    from verification.core.layer import layer_stand_in

    return layer_stand_in(fields)
  declaration = fields.get("declaration")
  surrogate = None
  if isinstance(declaration, Mapping):
    import surrogates

    surrogate = surrogates.REGISTRY[str(declaration["class"])](**dict(declaration["params"]))
  has = set(fields.get("has", ()))
  c = Candidate(name=fields["name"], params=dict(fields["params"]), fn=_not_here, label=fields["label"],
                scale=fields["scale"], backend="numpy" if fields["backend"] == "torch" else fields["backend"],
                forward=_not_here, vjp=_not_here, notes=dict(fields.get("notes") or {}),
                factory=_not_here if "factory" in has else None,
                surrogate=surrogate, input_offset=fields["input_offset"],
                surrogate_fun=_not_here if "surrogate_fun" in has else None,
                surrogate_grad=_not_here if "surrogate_grad" in has else None)
  object.__setattr__(c, "backend", fields["backend"])  # (a torch one is not given its bridges: none is called)
  return c

