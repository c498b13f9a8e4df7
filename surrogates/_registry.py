"""The registry: every surrogate class, by name, and the documented aliases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from surrogates._core import Surrogate, snake_case

REGISTRY: dict[str, type[Surrogate]] = {}
ALIASES: dict[str, Callable[..., Surrogate]] = {}

S = TypeVar("S", bound=type[Surrogate])


def register(cls: S) -> S:
  """Class decorator: adds a surrogate to :data:`REGISTRY` (its functional form follows)."""
  if cls.__name__ in REGISTRY:
    raise ValueError(f"surrogate {cls.__name__!r} is registered twice")
  if not cls.examples or dict(cls.examples[0]):
    raise ValueError(f"{cls.__name__}: the first representative parameter set must be the defaults ({{}})")
  REGISTRY[cls.__name__] = cls
  return cls


def alias(name: str) -> Callable[[Callable[..., Surrogate]], Callable[..., Surrogate]]:
  """Registers a constructor under another library's name (e.g. spyx ``superspike``)."""

  def decorate(fn: Callable[..., Surrogate]) -> Callable[..., Surrogate]:
    ALIASES[name] = fn
    return fn

  return decorate


def get(name: str, **params: Any) -> Surrogate:
  """``get("Sigmoid", alpha=2.0)``; accepts class names, snake_case names and aliases."""
  if name in REGISTRY:
    return REGISTRY[name](**params)
  by_snake = {snake_case(n): c for n, c in REGISTRY.items()}
  if name in by_snake:
    return by_snake[name](**params)
  if name in ALIASES:
    return ALIASES[name](**params)
  known = ", ".join(sorted(REGISTRY) + sorted(ALIASES))
  raise KeyError(f"unknown surrogate {name!r}; known: {known}")


def instances() -> Iterator[Surrogate]:
  """Every registry surrogate at each of its representative parameter sets."""
  for cls in REGISTRY.values():
    for params in cls.examples:
      yield cls(**params)
