"""Verification of surrogate-gradient implementations against the reference.

``python -m verification`` (or ``nox -s verify``) checks every registry surrogate at each of its
representative parameter sets; ``--target MODULE:ATTR`` checks another implementation. From Python:
``verification.check(candidates)`` -> :class:`~verification.api.Report`, and
``verification.assert_correct(candidates)`` (see :mod:`verification.api`).

The typed results (:mod:`verification.results`) import no jax; the engine's names below are loaded
on first use, so ``from verification.results import Run`` stays light (``reports/`` relies on it).
"""

from __future__ import annotations

import importlib
from typing import Any

from verification.results import CAPABILITIES, Diagnosis, Outcome, Result, Run, Status

_LAZY = {
    "Report": "verification.api",
    "assert_correct": "verification.api",
    "check": "verification.api",
    "CHECKS": "verification.checks",
    "Candidate": "verification.core.candidate",
    "as_candidate": "verification.core.candidate",
    "Options": "verification.engine.runner",
    "candidate_factory": "verification.core.candidate",
    "load_target": "verification.targets",
    "resolve_target": "verification.targets",
    "run": "verification.engine.runner",
    "reference_candidates": "verification.core.candidate",
    "verify": "verification.engine.runner",
    "verify_candidate": "verification.engine.runner",
}


def __getattr__(name: str) -> Any:
  if name in _LAZY:
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f"module 'verification' has no attribute {name!r}")


__all__ = ["CAPABILITIES", "CHECKS", "Candidate", "Diagnosis", "Options", "Outcome", "Report", "Result", "Run",
           "Status", "as_candidate", "assert_correct", "candidate_factory", "check", "load_target",
           "reference_candidates", "resolve_target", "run", "verify", "verify_candidate"]
