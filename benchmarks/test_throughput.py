"""Throughput of every registry surrogate (at its defaults), one test per op of ``_ops.OPS``, and the
Linear + LIF layer benchmark (``--layer``).

Each case is timed against an in-run comparator, paired round by round (see ``_harness``): the
baseline kernel that moves the same bytes (reference and A/A control) or the reference surrogate
(peers).
"""

from __future__ import annotations

import pytest

from benchmarks import _layer
from benchmarks._harness import CONFIG, REFERENCE, Case, cases, run_case
from benchmarks._ops import Unsupported


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
  cfg = metafunc.config.stash[CONFIG]
  if "case" in metafunc.fixturenames:
    metafunc.parametrize("case", [] if cfg.layer else list(cases(cfg)))
  if "layer_case" in metafunc.fixturenames:
    metafunc.parametrize("layer_case", list(_layer.cases(cfg)) if cfg.layer else [])


def test_throughput(benchmark, case: Case, request: pytest.FixtureRequest) -> None:
  cfg = request.config.stash[CONFIG]
  try:
    info = run_case(benchmark, case, cfg)
  except Unsupported as exc:
    pytest.skip(f"{case.op} on {case.name}: {exc}")
  except Exception as exc:
    if case.library == REFERENCE:
      raise
    first = str(exc).splitlines()[0] if str(exc) else ""
    pytest.skip(f"not run on {cfg.device}: {case.library} {case.op}: {type(exc).__name__}: {first}")
  assert info["median_s"] > 0


def test_layer(benchmark, layer_case: _layer.LayerCase, request: pytest.FixtureRequest) -> None:
  info = _layer.run(benchmark, layer_case, request.config.stash[CONFIG])
  assert info["median_s"] > 0
