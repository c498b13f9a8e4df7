"""The environment for a command a test starts: a run of its own, not part of the test session."""

from __future__ import annotations

import os


def environment(*drop_prefixes: str) -> dict[str, str]:
  """This process's environment without pytest-xdist's worker variables (``PYTEST_XDIST_WORKER``, ...)
  and without the variables that start with ``drop_prefixes``: the pytest started with it is a run of
  its own (pytest-benchmark, for one, turns itself off inside an xdist worker)."""
  return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", *drop_prefixes))}
