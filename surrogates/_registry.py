"""The registry: every surrogate class, by name, the documented aliases and the functional forms.

``@register`` checks a surrogate's declaration when its class is defined: every field is a
:func:`~surrogates._core.param` with a domain, the defaults and each representative parameter set
are valid, and the members the checks rely on are declared.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from surrogates._core import (
    PARAM_KEYS,
    REQUIRED,
    SMOOTHNESS,
    Domain,
    Surrogate,
    UnknownParameterError,
    bind_parameters,
    check_value,
    snake_case,
)

REGISTRY: dict[str, type[Surrogate]] = {}
ALIASES: dict[str, Callable[..., Surrogate]] = {}

S = TypeVar("S", bound=type[Surrogate])
F = TypeVar("F", bound=Callable[..., Surrogate])


class UnknownSurrogateError(ValueError, KeyError):
  """A surrogate name that is neither registered nor an alias (a ``KeyError`` too, for lookups)."""

  def __str__(self) -> str:  # KeyError would quote the message
    return str(self.args[0]) if self.args else ""


def _declaration_errors(cls: type[Surrogate]) -> list[str]:
  errors = []
  if not dataclasses.is_dataclass(cls):
    return ["is not a dataclass (decorate it with @dataclasses.dataclass(frozen=True, repr=False))"]
  for f in dataclasses.fields(cls):
    unknown = set(f.metadata) - PARAM_KEYS
    if unknown:
      errors.append(f"field {f.name!r} has unknown metadata {sorted(unknown)} (known: {sorted(PARAM_KEYS)})")
    if not isinstance(f.metadata.get("domain"), Domain):
      errors.append(f"field {f.name!r} is not declared with param(default, DOMAIN)")
  if "domains" in vars(cls):
    errors.append("declares 'domains': put each domain next to its field with param(default, DOMAIN)")
  for member in REQUIRED:
    if getattr(cls, member) is getattr(Surrogate, member):
      errors.append(f"does not declare {member}()")
  if cls.smoothness not in SMOOTHNESS:
    errors.append(f"smoothness {cls.smoothness!r} is not one of {', '.join(SMOOTHNESS)}")
  if not cls.examples or dict(cls.examples[0]):
    errors.append("the first representative parameter set must be the defaults ({})")
  return errors


def register(cls: S) -> S:
  """Class decorator: checks a surrogate's declaration and adds it to :data:`REGISTRY`.

  Raises ``TypeError`` naming every problem (a field without a domain, misspelt metadata, a
  missing ``mass``/``limits``/``_grad``/``_fun``/``length_scale``, an invalid example...). It also
  gives the class the base's equality and hash (parameters compared by value, arrays by content).
  """
  if cls.__name__ in REGISTRY:
    raise ValueError(f"surrogate {cls.__name__!r} is registered twice")
  errors = _declaration_errors(cls)
  if not errors:
    for example in cls.examples:
      try:
        cls(**example)
      except (TypeError, ValueError) as exc:
        errors.append(f"representative set {dict(example)} is invalid: {exc}")
  if errors:
    raise TypeError(f"surrogate {cls.__name__}: " + "; ".join(errors))
  cls.__eq__ = Surrogate.__eq__  # type: ignore[method-assign]
  cls.__hash__ = Surrogate.__hash__  # type: ignore[method-assign]
  REGISTRY[cls.__name__] = cls
  return cls


def alias(name: str, **domains: Domain) -> Callable[[F], F]:
  """Registers a constructor under another library's name (e.g. spyx ``superspike``).

  ``domains`` gives each of its parameters' domain: the alias validates its own arguments (so
  ``triangular(k=0)`` is a ``ValueError`` naming ``triangular`` and ``k``, not a division by zero).
  """

  def decorate(fn: F) -> F:
    signature = inspect.signature(fn)
    missing = set(signature.parameters) ^ set(domains)
    if missing:
      raise TypeError(f"alias {name}: declare exactly one domain per parameter (mismatch: {sorted(missing)})")

    order = list(signature.parameters)

    @functools.wraps(fn)
    def validated(*args: Any, **params: Any) -> Surrogate:
      unknown = [k for k in params if k not in domains]
      if unknown:
        raise UnknownParameterError(f"{name}: unknown parameter {unknown[0]!r}; accepted: {', '.join(order)}")
      bound = signature.bind(**bind_parameters(name, order, args, params))
      bound.apply_defaults()
      return fn(**{k: check_value(name, k, v, domains[k]) for k, v in bound.arguments.items()})

    ALIASES[name] = validated
    return validated  # type: ignore[return-value]

  return decorate


def functional(cls: type[Surrogate]) -> Callable[..., Any]:
  """The functional form of a surrogate: ``sigmoid(x, *params, **params) = Sigmoid(*params, **params)(x)``.

  Parameters may be given by position after x, in the class's declared (field) order, which is
  braintools' order where braintools has the surrogate (``s2nn(x, 4.0, 1.0, 1e-8)``), or by keyword.
  Too many positional values, or a parameter given both ways, is a ``TypeError`` naming the form.
  """
  name = snake_case(cls.__name__)
  specs = cls.parameter_specs()
  order = [f.name for f in dataclasses.fields(cls)]

  def spike(x: Any, *args: Any, **params: Any) -> Any:
    return cls(**bind_parameters(f"{name} ({cls.__name__})", order, args, params))(x)

  spike.__name__ = name
  spike.__qualname__ = name
  spike.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
      inspect.Parameter("x", inspect.Parameter.POSITIONAL_OR_KEYWORD),
      *(inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=specs[n].default) for n in order),
  ])
  args = ", ".join(order)
  call = f"{name}(x, {args}) = {cls.__name__}({args})(x)" if order else f"{name}(x) = {cls.__name__}()(x)"
  spike.__doc__ = f"``{call}``; parameters by position or keyword.\n\n{cls.__doc__}"
  return spike


def names() -> list[str]:
  """Every name :func:`get` accepts."""
  return sorted({*REGISTRY, *(snake_case(n) for n in REGISTRY), *ALIASES})


def get(name: str, **params: Any) -> Surrogate:
  """``get("Sigmoid", alpha=2.0)``; accepts class names, snake_case names and aliases.

  An unknown name is an :class:`UnknownSurrogateError` (a ``ValueError``) with the close matches.
  """
  if name in REGISTRY:
    return REGISTRY[name](**params)
  by_snake = {snake_case(n): c for n, c in REGISTRY.items()}
  if name in by_snake:
    return by_snake[name](**params)
  if name in ALIASES:
    return ALIASES[name](**params)
  close = difflib.get_close_matches(str(name), names(), n=3, cutoff=0.6)
  hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
  raise UnknownSurrogateError(f"unknown surrogate {name!r}; {hint}known: {', '.join(names())}")


def instances() -> Iterator[Surrogate]:
  """Every registry surrogate at each of its representative parameter sets."""
  for cls in REGISTRY.values():
    for params in cls.examples:
      yield cls(**params)
