"""Test configuration: float64 on, so every float dtype can be exercised."""

import jax

jax.config.update("jax_enable_x64", True)
