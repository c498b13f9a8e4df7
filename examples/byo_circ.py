"""Bring your own surrogate: norse's circ, declared once, checked without a registry entry.

g(x) = a³/(x² + a²)^(3/2),  P(x) = a·x/√(x² + a²) = a·tanh(asinh(x/a)),  mass 2a,  P(±inf) = ±a.

``python -m verification --target examples.byo_circ:CANDIDATES`` (from the repository root), or
``verification.check(CANDIDATES)``. Every self-consistency check runs against this declaration;
the differential check is skipped (there is no reference to compare with).
"""

import dataclasses

import jax.numpy as jnp

import surrogates


@dataclasses.dataclass(frozen=True, repr=False)
class Circ(surrogates.Surrogate):
  """norse circ: g = a³/(x² + a²)^(3/2), P = a·x/√(x² + a²)."""

  alpha: float = 1.0

  def _grad(self, x):
    return (self.alpha / jnp.hypot(x, self.alpha)) ** 3  # hypot: no overflow of x² at large |x|

  def _fun(self, x):
    return self.alpha * jnp.tanh(jnp.arcsinh(x / self.alpha))  # = a·x/√(x² + a²), finite limits ±a

  def mass(self):
    return 2.0 * self.alpha

  def limits(self):
    return surrogates.Limits(0.0, 0.0, -self.alpha, self.alpha)

  def length_scale(self):
    return self.alpha


CANDIDATES = [{"surrogate": Circ(alpha=1.0)}, {"surrogate": Circ(alpha=0.25)}]
