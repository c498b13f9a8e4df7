"""Test configuration: float64 on, so every float dtype can be exercised."""

import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture(scope="session")
def reference_results():
  """The reference verified once per test session with the command line's defaults (all checks, all
  dtypes, its hypothesis draw count): a :class:`verification.results.Run`. Every test that needs a run
  of the reference shares this one; its compiled programs are the ones ``python -m verification`` puts
  in the persistent compilation cache, so either warms the other."""
  from verification.runner import Options, run

  return run("reference", Options(jobs=2))
