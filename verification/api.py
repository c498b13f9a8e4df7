"""The Python API: check candidates from a script or a test suite.

>>> import verification
>>> report = verification.check("mylib.surrogates:CANDIDATES")        # or a list of candidates
>>> report.passed, len(report.failures)
>>> print(report)                                                    # the console table
>>> report.write_json("verify.json"); report.write_junit("verify.xml")
>>> verification.assert_correct(CANDIDATES, checks=["forward", "autodiff"])   # AssertionError: diagnoses

Everything runs in the harness's worker processes (:func:`verification.engine.runner.run`): the workers
configure JAX themselves (``jax_enable_x64`` for the float64 checks), so the caller's JAX
configuration is never touched. The defaults are the CLI's (:class:`verification.engine.runner.Options`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TextIO

from verification import output, results

#: What :func:`check` accepts: a target spec (``"reference"``, a built-in library name,
#: ``"module:ATTR"``), one candidate (a :class:`~verification.core.candidate.Candidate`, a mapping or an
#: object with the protocol's fields), or a sequence of candidates.
Source = str | Mapping[str, Any] | Iterable[Any] | Any


@dataclasses.dataclass(frozen=True)
class Report:
  """The results of one :func:`check`: one :class:`~verification.results.Result` per (candidate, check)."""

  run: results.Run

  @property
  def results(self) -> tuple[results.Result, ...]:
    return self.run.results

  @property
  def passed(self) -> bool:
    """No result failed or errored (``skip``, ``convention`` and not-required ``unsupported`` pass)."""
    return self.run.passed

  @property
  def failures(self) -> list[results.Result]:
    """The failing and erroring results, in the run's order."""
    return [r for r in self.run.results if r.failing]

  def result(self, label: str, check: str) -> results.Result:
    """The result of one (candidate label, check); KeyError if the run has none."""
    for r in self.run.results:
      if r.label == label and r.check == check:
        return r
    raise KeyError(f"no result for {label!r} / {check!r}")

  def diagnoses(self) -> str:
    """Every failure as ``label [check]: diagnosis`` (the text of :func:`assert_correct`)."""
    return "\n\n".join(f"{r.label} [{r.check}] {r.status.value}: {r.diagnosis.text()}" for r in self.failures)

  def table(self) -> str:
    """The console table (candidate × check) with the failures' diagnoses, as the CLI prints it."""
    out = io.StringIO()
    self.print(out)
    return out.getvalue()

  def print(self, file: TextIO | None = None) -> None:
    output.summary(self.run.results, self.run.checks, out=file or sys.stdout)

  def write_json(self, path: str | os.PathLike) -> None:
    """The verification JSON (what ``python -m verification --json`` writes; ``surrogate-report`` reads it)."""
    output.write_json(os.fspath(path), self.run)

  def write_junit(self, path: str | os.PathLike) -> None:
    """JUnit XML, one test case per (candidate, check), the diagnosis as the failure text."""
    output.write_junit(os.fspath(path), self.run)

  def __str__(self) -> str:
    return self.table()


def _shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
  if shard is None or isinstance(shard, tuple):
    return shard
  k, _, n = str(shard).partition("/")
  try:
    return int(k), int(n)
  except ValueError:
    raise ValueError(f"shard {shard!r}: expected K/N, e.g. 1/4") from None


def options(*, checks: Iterable[str] | None = None, dtypes: Iterable[str] | None = None, require: Iterable[str] = (),
            jobs: int | None = None, timeout: float | None = None, shard: str | tuple[int, int] | None = None,
            hypothesis_examples: int | None = None, labels: Iterable[str] = (), device: str | None = None,
            memory_limit: int | None = None) -> Any:
  """:class:`verification.engine.runner.Options` from keyword arguments; ``None`` keeps the CLI's default."""
  from verification.engine.runner import Options

  given = {"checks": None if checks is None else tuple(checks), "dtypes": None if dtypes is None else tuple(dtypes),
           "jobs": jobs, "timeout": timeout, "hypothesis_examples": hypothesis_examples,
           "require": tuple(require), "shard": _shard(shard), "labels": tuple(labels), "device": device,
           "memory_limit": memory_limit}
  return dataclasses.replace(Options(), **{k: v for k, v in given.items() if v is not None})


def check(source: Source, *, checks: Iterable[str] | None = None, dtypes: Iterable[str] | None = None,
          require: Iterable[str] = (), jobs: int | None = None, timeout: float | None = None,
          shard: str | tuple[int, int] | None = None, hypothesis_examples: int | None = None,
          labels: Iterable[str] = (), device: str | None = None, memory_limit: int | None = None,
          progress: Callable[[str, list[results.Result]], None] | None = None) -> Report:
  """Checks candidates (or a target) and returns a :class:`Report`. Never raises for a failing candidate;
  raises :class:`verification.engine.runner.UsageError` for options that cannot be run and
  ``verification.targets.TargetError`` for a target that cannot be loaded.

  ``checks``: a subset of the engine's checks (default all, in the engine's order); ``dtypes``: of
  float16, bfloat16, float32, float64 (default all four); ``require``: capabilities (forward, second,
  vmap, jit) whose absence is a failure rather than ``unsupported``; ``jobs``: worker processes
  (default one per core, never more than the candidates); ``timeout``: seconds per check (default 120);
  ``device``: "cpu", "gpu" or "tpu" (default: the device JAX finds); ``memory_limit``: bytes of resident
  memory per worker (default 8 GiB); ``shard``:
  ``"K/N"`` or ``(K, N)``, the candidates whose label's CRC-32 modulo N is K - 1
  (:func:`verification.engine.runner.in_shard`); ``labels``: only the candidates with these labels (default
  all); ``progress(label, results)`` after each candidate.
  """
  from verification.engine.runner import run

  opts = options(checks=checks, dtypes=dtypes, require=require, jobs=jobs, timeout=timeout, shard=shard,
                 hypothesis_examples=hypothesis_examples, labels=labels, device=device, memory_limit=memory_limit)
  with _caller_jax_config():
    return Report(run(source, opts, progress=progress))


@contextlib.contextmanager
def _caller_jax_config() -> Iterator[None]:
  """Restores the caller's ``jax_enable_x64`` (the runner turns it on where it loads a target spec)."""
  import jax

  x64 = bool(jax.config.jax_enable_x64)
  try:
    yield
  finally:
    jax.config.update("jax_enable_x64", x64)


def assert_correct(source: Source, **kwargs: Any) -> Report:
  """:func:`check`, then ``AssertionError`` whose message is every failure's diagnosis; returns the report."""
  report = check(source, **kwargs)
  if not report.passed:
    n = len(report.failures)
    raise AssertionError(f"{n} failing check{'s' * (n != 1)}:\n\n{report.diagnoses()}")
  return report


__all__ = ["Report", "assert_correct", "check", "options"]
