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
from verification.checks import CHECKS, Context, Outcome
from verification.evaluate import Evaluator, describe


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
    return Outcome("error", {"message": f"did not return within the time limit of {seconds:g} s"})
  if "error" in box:
    return Outcome("error", {"message": describe(box["error"])})
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
    detail = {"candidate": candidate.label, **outcome.detail}
    if candidate.notes:
      detail.setdefault("notes", dict(candidate.notes))
    results.append(Result(candidate.label, candidate.name, params, name, outcome.status, detail,
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


# ---------------------------------------------------------------------------------------------
# Options and run (the API the Python API and the pytest plugin build on)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Options:
  """How to run: which checks and dtypes, parallelism, limits, required capabilities, shard."""

  checks: tuple[str, ...] = ()
  dtypes: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")
  jobs: int = 0
  timeout: float = 120.0
  memory_limit: int | None = None
  hypothesis_examples: int = 5
  require: tuple[str, ...] = ()
  shard: tuple[int, int] | None = None


def _unpickle(blob: bytes) -> list[Candidate]:
  import cloudpickle

  return cloudpickle.loads(blob)


def run(source: Any, options: Options = Options(), *, progress: Callable | None = None,
        on_result: Callable | None = None) -> Any:
  """Checks a target spec or a sequence of candidates in worker processes; returns a ``results.Run``."""
  import functools
  import os

  import cloudpickle

  from verification import results as R
  from verification.candidate import as_candidate, load_candidates, resolve_target

  checks = list(options.checks or CHECKS)
  if isinstance(source, str) or source is None:
    everything, target, library, is_reference = resolve_target(source)
    loader = functools.partial(load_candidates, source)
  else:
    everything, target, library, is_reference = [as_candidate(c) for c in source], "candidates", None, False
    loader = functools.partial(_unpickle, cloudpickle.dumps(everything))
  if options.shard is not None:
    keep = set(R.shard([c.label for c in everything], *options.shard))
    wanted = [i for i, c in enumerate(everything) if c.label in keep]
  else:
    wanted = list(range(len(everything)))
  jobs = options.jobs or min(2, os.cpu_count() or 1, max(1, len(wanted)))
  kwargs = {"is_reference": is_reference, "time_limit": options.timeout,
            "hypothesis_examples": options.hypothesis_examples}
  import multiprocessing

  out: list[R.Result] = []
  ctx = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                                              initargs=(loader,)) as pool:
    futures = [pool.submit(_worker_run, i, checks, [np.dtype(d).name for d in options.dtypes], kwargs)
               for i in wanted]
    for i, fut in zip(wanted, futures, strict=True):
      c = everything[i]
      try:
        old = fut.result()
      except Exception as exc:
        old = [Result(c.label, c.name, dict(c.params), chk, "error",
                      {"message": f"the worker process died: {describe(exc)}"}) for chk in checks]
      new = R.require([R.Result.from_json(r.as_json()) for r in old], options.require)
      for r in new:
        if on_result:
          on_result(r)
      if progress:
        progress(c.label, new)
      out.extend(new)
  return R.Run(target=target, results=tuple(out), checks=tuple(checks), library=library,
               provenance={"shard": list(options.shard)} if options.shard else {})
