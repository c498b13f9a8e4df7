"""A module that changes JAX's configuration at import (eager execution, NaN checks, strict rank
promotion) next to a candidate whose gradient cannot be traced: the harness sets its own configuration
back, so the candidate still fails (with the module's settings, eagerly evaluated, it would pass)."""

import jax
import jax.numpy as jnp
import numpy as np

from tests.hostile import ALPHA, _g, correct
from verification.core.candidate import Candidate

jax.config.update("jax_disable_jit", True)
jax.config.update("jax_debug_nans", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


@jax.custom_jvp
def _untraceable(x):
  return jnp.where(x >= 0, 1.0, 0.0).astype(x.dtype)


@_untraceable.defjvp
def _(primals, tangents):
  (x,), (t,) = primals, tangents
  g = np.asarray(_g(x))  # needs concrete values: fails under jit, works eagerly
  return _untraceable(x), (jnp.asarray(g) * t).astype(x.dtype)


CANDIDATES = [Candidate(name="Sigmoid", params={"alpha": ALPHA}, fn=_untraceable, label="untraceable gradient",
                        surrogate_fun=lambda x: jax.nn.sigmoid(ALPHA * x)), correct("correct next to the settings")]
