"""Test configuration: float64 on, so every float dtype can be exercised."""

import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture(scope="session")
def reference_results():
  """The reference verified once per test session, with the command line's defaults (all checks, all
  dtypes, its hypothesis draw count): ``{label: {check: Result}}``. Every test that needs a run of the
  reference shares this one; its compiled programs are the ones ``python -m verification`` puts in
  the persistent compilation cache, so either warms the other."""
  import functools

  from verification import CHECKS
  from verification.candidate import load_candidates
  from verification.runner import verify_in_processes

  out: dict = {}
  loader = functools.partial(load_candidates, None)
  for r in verify_in_processes(loader, list(CHECKS), ["float16", "bfloat16", "float32", "float64"], jobs=2,
                               is_reference=True, hypothesis_examples=5):
    out.setdefault(r.label, {})[r.check] = r
  return out
