"""A target module that changes JAX's global configuration at import, then gives a correct candidate."""

import jax

jax.config.update("jax_enable_x64", False)
jax.config.update("jax_default_matmul_precision", "bfloat16")

from tests.hostile import correct  # noqa: E402

CANDIDATES = [correct("correct, from a module that spoils the configuration")]
