"""Exceptions from candidate code, as the checks name them (used by the evaluator and the record)."""

from __future__ import annotations

import traceback


class CandidateError(Exception):
  """The candidate's code raised or returned something unusable (a failing result, not a crash)."""


class Recorded:
  """Mixed into an exception rebuilt from the worker's record (:mod:`verification.core.tape`): it has the
  original's type name, kind and message; ``description`` is what :func:`describe` said of the original
  (its traceback does not travel)."""

  description: str = ""


def describe(exc: BaseException) -> str:
  """A one-paragraph description of an exception raised by candidate code."""
  if isinstance(exc, Recorded):  # rebuilt from the record: described where it was raised
    return exc.description
  if isinstance(exc, CandidateError):
    return str(exc)
  tb = traceback.extract_tb(exc.__traceback__)
  where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
  return f"{type(exc).__name__}: {exc}{where}".strip()
