"""Throughput of every registry surrogate (at its defaults): forward, VJP, JVP, vmap(grad), LIF step.

Each case is timed against an in-run comparator measured round by round between its rounds: the
baseline kernel that moves the same bytes (reference) or the reference surrogate (peers).
"""

from __future__ import annotations

import pytest

from benchmarks._harness import CONFIG, Case, cases, run_case


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
  if "case" in metafunc.fixturenames:
    metafunc.parametrize("case", list(cases(metafunc.config.stash[CONFIG])))


def test_throughput(benchmark, case: Case, request: pytest.FixtureRequest) -> None:
  cfg = request.config.stash[CONFIG]
  try:
    info = run_case(benchmark, case, cfg)
  except Exception as exc:
    if case.library == "surrogates":
      raise
    pytest.skip(f"{case.library} does not support {case.op}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
  assert info["median_s"] > 0
