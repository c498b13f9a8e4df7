"""Test configuration: float64 on, so every float dtype can be exercised; the persistent compilation cache on."""

import jax
import pytest

jax.config.update("jax_enable_x64", True)
# The harness's persistent compilation cache for the test processes too (as every verification
# worker uses it): a second run of the suite reads its programs back instead of compiling them.
from verification.core import cache  # noqa: E402

cache.enable()


@pytest.fixture(scope="session")
def reference_results():
  """The reference verified once per test session with the command line's defaults (all checks, all
  dtypes, its hypothesis draw count): a :class:`verification.results.Run`. Every test that needs a run
  of the reference shares this one; its compiled programs are the ones ``python -m verification`` puts
  in the persistent compilation cache, so either warms the other."""
  from verification.engine.runner import Options, run

  return run("reference", Options(jobs=2))


@pytest.fixture(autouse=True)
def _jax_configuration_kept():
  """A test that imports a library which changes JAX's configuration (braintools' dependencies turn
  64-bit off at import) does not change it for the tests after it in the same process."""
  before = dict(jax.config.values)
  yield
  for key, value in before.items():
    if jax.config.values.get(key) != value:
      jax.config.update(key, value)


def pytest_addoption(parser):
  parser.addoption("--slow", action="store_true", help="also run the tests marked slow (network installs)")


def pytest_collection_modifyitems(config, items):
  if config.getoption("--slow"):
    return
  skip = pytest.mark.skip(reason="slow (installs from the network): run with --slow")
  for item in items:
    if "slow" in item.keywords:
      item.add_marker(skip)
