"""Other libraries' names for reference shapes (see the specification's equivalences).

Each alias returns a reference surrogate (possibly scaled), so it is checked like any other, and
validates its own parameters (its domains are declared with it).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from surrogates._core import NON_NEGATIVE, POSITIVE, Array, Limits, Surrogate, param
from surrogates._library import Arctan, Circ, InvSquareGrad, PeriodicExponential, ReluGrad, ShiftedStep
from surrogates._registry import alias


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class Scaled(Surrogate):
  """``factor`` times another surrogate: g = c·g_base, P = c·P_base (same forward).

  Every piece of metadata is the base's, with the quantities of g and P (mass, limits, peak,
  argument condition) times ``factor``; kinks, jumps, period, width, smoothness and the primitive's
  declared mismatch are unchanged. A pytree like any surrogate: the base's leaves, then ``factor``.
  """

  base: Surrogate = dataclasses.field(default_factory=Arctan)
  factor: float = param(1.0, POSITIVE)

  def __post_init__(self) -> None:
    if not isinstance(self.base, Surrogate):
      raise ValueError(f"Scaled: parameter 'base' must be a Surrogate, got {self.base!r}")
    super().__post_init__()

  @property
  def name(self) -> str:
    return self.base.name

  @property
  def params(self) -> dict[str, Any]:
    return self.base.params

  @property
  def smoothness(self) -> str:  # type: ignore[override]
    return self.base.smoothness

  @property
  def examples(self) -> Sequence[Mapping[str, Any]]:  # type: ignore[override]
    return self.base.examples

  def _grad(self, x: Array) -> Array:
    return self.factor * self.base._grad(x)

  def _fun(self, x: Array) -> Array:
    return self.factor * self.base._fun(x)

  def kinks(self) -> tuple[float, ...]:
    return self.base.kinks()

  def jumps(self) -> tuple[float, ...]:
    return self.base.jumps()

  def period(self) -> float | None:
    return self.base.period()

  def argument_condition(self, x: np.ndarray) -> np.ndarray | None:
    condition = self.base.argument_condition(x)
    return None if condition is None else self.factor * condition

  def primitive_rtol(self) -> float:
    return self.base.primitive_rtol()

  def saturation(self) -> Any:
    return self.base.saturation()

  def mass(self) -> float:
    return self.factor * self.base.mass()

  def limits(self) -> Limits | None:
    lim = self.base.limits()
    return None if lim is None else Limits(*(self.factor * v for v in lim))

  def length_scale(self) -> float:
    return self.base.length_scale()

  def peak(self) -> float:
    return self.factor * self.base.peak()

  def __repr__(self) -> str:
    return f"{self.factor!r} * {self.base!r}"


@alias("superspike", k=POSITIVE)
def superspike(k: float = 25.0) -> Surrogate:
  """spyx ``superspike(k)``: g = 1/(1 + k|x|)² = InvSquareGrad(alpha=k)."""
  return InvSquareGrad(alpha=k)


@alias("fast_sigmoid", slope=POSITIVE)
def fast_sigmoid(slope: float = 25.0) -> Surrogate:
  """snntorch ``fast_sigmoid(slope)``: g = 1/(1 + slope|x|)² = InvSquareGrad(alpha=slope)."""
  return InvSquareGrad(alpha=slope)


@alias("triangular", k=POSITIVE)
def triangular(k: float = 1.0) -> Surrogate:
  """spyx ``triangular(k)``: g = max(1 - k|x|, 0) = ReluGrad(alpha=k, width=1/k)."""
  return ReluGrad(alpha=k, width=1.0 / k)


@alias("spyx_arctan", k=POSITIVE)
def spyx_arctan(k: float = 2.0) -> Surrogate:
  """spyx ``arctan(k)``: g = 1/(π(1 + (kπx)²)) = (1/(kπ)) · Arctan(alpha=2k); mass 1/(kπ)."""
  return Scaled(Arctan(alpha=2.0 * k), 1.0 / (k * math.pi))


@alias("heavi_circ", alpha=POSITIVE)
def heavi_circ(alpha: float = 1.0) -> Surrogate:
  """norse ``heavi_circ_fn(x, alpha)``: g = α³/(x² + α²)^(3/2) = Circ(alpha); mass 2α."""
  return Circ(alpha=alpha)


@alias("sinabs_heaviside", window=NON_NEGATIVE, threshold=POSITIVE)
def sinabs_heaviside(window: float = 1.0, threshold: float = 1.0) -> Surrogate:
  """sinabs ``Heaviside(window)`` and rockpool ``StepPWL``: g = 1[x >= -window]/threshold = ShiftedStep/threshold."""
  return Scaled(ShiftedStep(window=window), 1.0 / threshold)


@alias("sinabs_periodic_exponential", grad_width=POSITIVE, grad_scale=POSITIVE,
       spike_threshold=POSITIVE)
def sinabs_periodic_exponential(grad_width: float = 0.5, grad_scale: float = 1.0,
                                spike_threshold: float = 1.0) -> Surrogate:
  """sinabs ``PeriodicExponential(grad_width, grad_scale)`` at ``spike_threshold``: grad_scale · PeriodicExponential."""
  return Scaled(PeriodicExponential(width=grad_width, threshold=spike_threshold), grad_scale)


__all__ = ["Scaled", "fast_sigmoid", "heavi_circ", "sinabs_heaviside", "sinabs_periodic_exponential", "spyx_arctan",
           "superspike", "triangular"]
