"""Running checks over candidates: time limits, errors as results, progress, parallel candidates."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from verification.candidate import Candidate
from verification.checks import CHECKS, Context
from verification.evaluate import Evaluator, describe
from verification.results import Outcome, errored


@dataclasses.dataclass
class Result:
  """One (candidate, check) record; the keys of the JSON output."""

  label: str
  surrogate: str
  params: dict[str, Any]
  check: str
  status: str  # "pass" | "fail" | "error" | "skip"
  detail: dict[str, Any]
  seconds: float = 0.0

  def as_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def _with_time_limit(fn: Callable[[], Outcome], seconds: float) -> Outcome:
  """Runs fn in a daemon thread; a check that does not return in time is an error result."""
  box: dict[str, Any] = {}

  def target() -> None:
    try:
      with np.errstate(all="ignore"):
        box["outcome"] = fn()
    except BaseException as exc:
      box["error"] = exc

  thread = threading.Thread(target=target, daemon=True)
  thread.start()
  thread.join(seconds)
  if thread.is_alive():
    return errored(f"did not return within the time limit of {seconds:g} s")
  if "error" in box:
    return errored(describe(box["error"]))
  return box["outcome"]


def verify_candidate(candidate: Candidate, checks: Sequence[str], dtypes: Sequence[np.dtype], *,
                     is_reference: bool = False, time_limit: float = 120.0,
                     hypothesis_examples: int = 20) -> list[Result]:
  """All requested checks of one candidate. Never raises for a misbehaving candidate."""
  params = dict(candidate.params)
  try:
    reference = candidate.reference()
  except Exception as exc:
    msg = f"{candidate.label}: no reference surrogate {candidate.name!r} with params {params}: {describe(exc)}"
    return [Result(candidate.label, candidate.name, params, c, "error", {"message": msg}) for c in checks]
  ctx = Context(candidate, reference, Evaluator(candidate), tuple(np.dtype(d) for d in dtypes),
                is_reference=is_reference, hypothesis_examples=hypothesis_examples)
  results = []
  for name in checks:
    start = time.perf_counter()
    outcome = _with_time_limit(lambda n=name: CHECKS[n](ctx), time_limit)
    detail = {"candidate": candidate.label, **outcome.diagnosis.to_json()}
    if candidate.notes:
      detail.setdefault("notes", dict(candidate.notes))
    results.append(Result(candidate.label, candidate.name, params, name, outcome.status.value, detail,
                          round(time.perf_counter() - start, 3)))
  return results


# ---------------------------------------------------------------------------------------------
# Processes: each worker loads the target itself (candidates need not be picklable)
# ---------------------------------------------------------------------------------------------

_WORKER_CANDIDATES: list[Candidate] = []


def _worker_init(loader: Callable[[], list[Candidate]]) -> None:
  import jax

  jax.config.update("jax_enable_x64", True)
  _WORKER_CANDIDATES[:] = loader()


def _worker_run(index: int, checks: Sequence[str], dtypes: Sequence[str], kwargs: dict) -> list[Result]:
  return verify_candidate(_WORKER_CANDIDATES[index], checks, [np.dtype(d) for d in dtypes], **kwargs)


def verify_in_processes(loader: Callable[[], list[Candidate]], checks: Sequence[str], dtypes: Sequence[str], *,
                        jobs: int = 2, progress: Callable[[Candidate, list[Result]], None] | None = None,
                        candidates: Sequence[Candidate] | None = None, **kwargs: Any) -> list[Result]:
  """Like :func:`verify`, with ``jobs`` worker processes; ``loader`` must be picklable (a partial of a
  module-level function) and return the same candidates in every process. ``candidates``: what the
  loader returns, where the caller has it already."""
  import multiprocessing

  candidates = list(candidates) if candidates is not None else loader()
  ctx = multiprocessing.get_context("spawn")
  out: dict[int, list[Result]] = {}
  with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                                              initargs=(loader,)) as pool:
    futures = {pool.submit(_worker_run, i, list(checks), [np.dtype(d).name for d in dtypes], kwargs): i
               for i in range(len(candidates))}
    for fut in concurrent.futures.as_completed(futures):
      i = futures[fut]
      try:
        out[i] = fut.result()
      except Exception as exc:  # a candidate that kills its worker process is still a result
        c = candidates[i]
        out[i] = [Result(c.label, c.name, dict(c.params), chk, "error",
                         {"message": f"the worker process died: {describe(exc)}"}) for chk in checks]
      if progress:
        progress(candidates[i], out[i])
  return [r for i in range(len(candidates)) for r in out[i]]


def verify(candidates: Iterable[Candidate], checks: Sequence[str] = tuple(CHECKS), dtypes: Sequence[Any] = (),
           *, is_reference: bool = False, jobs: int = 2, time_limit: float = 120.0, hypothesis_examples: int = 20,
           progress: Callable[[Candidate, list[Result]], None] | None = None) -> list[Result]:
  """Verifies candidates (``jobs`` at a time); results in the candidates' order."""
  candidates = list(candidates)
  dtypes = tuple(np.dtype(d) for d in (dtypes or ("float16", "bfloat16", "float32", "float64")))
  run = lambda c: verify_candidate(c, checks, dtypes, is_reference=is_reference, time_limit=time_limit,
                                   hypothesis_examples=hypothesis_examples)
  out: dict[int, list[Result]] = {}
  with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
    futures = {pool.submit(run, c): i for i, c in enumerate(candidates)}
    for fut in concurrent.futures.as_completed(futures):
      i = futures[fut]
      out[i] = fut.result()
      if progress:
        progress(candidates[i], out[i])
  return [r for i in range(len(candidates)) for r in out[i]]
