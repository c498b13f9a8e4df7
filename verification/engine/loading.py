"""Loading a target: the candidates of a run and the workers that loaded them. The harness process never
imports a target module: workers load it and list its candidates as plain data (:func:`catalogue`);
the options select among them (``--only``, ``--shard``, labels)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import subprocess
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from multiprocessing.connection import wait
from typing import Any

from verification.engine import processes, protocol
from verification.engine.options import Options, UsageError, close_matches, jobs_for
from verification.engine.processes import TIMEOUT_OPTIONS, Capture, Worker, last_words, usable
from verification.results import safe_text, written_label


def in_shard(label: str, shard: tuple[int, int] | None) -> bool:
  """Whether a label belongs to shard (k, n): CRC-32 of the label modulo n is k - 1 (stable everywhere)."""
  if shard is None:
    return True
  k, n = shard
  return zlib.crc32(label.encode()) % n == k - 1


def provenance(target: str, options: Options) -> dict[str, Any]:
  commit = None
  with contextlib.suppress(Exception):
    here = os.path.dirname(os.path.abspath(__file__))
    commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True,
                            timeout=10).stdout.strip() or None
  return {"commit": commit, "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
          "argv": list(sys.argv), "target": target, "shard": list(options.shard) if options.shard else None,
          "options": {k: v for k, v in dataclasses.asdict(options).items() if k != "only"} | {
              "only": list(options.only)}}


def _in_worker(source: str | Sequence[Any] | None) -> bool:
  """Whether ``source`` is a target spec loaded in a worker (:func:`catalogue`): any, the reference (None) too."""
  return source is None or isinstance(source, str)


def load(source: str | Sequence[Any] | None, options: Options):
  """The target of a run, with the candidates ``options`` select. Candidate objects are resolved in this
  process; a spec (the reference's too) is listed by a worker (:func:`catalogue`), stopped after. Raises
  UsageError (duplicate labels, unknown --only names) or targets.TargetError."""
  target, loaders = loaded(source, options, workers=False)
  for w in loaders:
    w.stop()
  return target


def loaded(source: str | Sequence[Any] | None, options: Options, workers: bool) -> tuple[Any, list[Worker]]:
  """The target of a run (as :func:`load`) and the workers that loaded it: for a spec (the reference's too),
  the worker that listed it and, with ``workers``, as many more as the run will use, each
  having loaded it too (a label one of them did not build becomes an error: :func:`_deterministic`)."""
  from verification import targets
  from verification.core.candidate import Unbuilt

  if not _in_worker(source):
    if isinstance(source, Mapping) or not hasattr(source, "__iter__"):
      source = [source]
    return _chosen(targets.Target("candidates", targets.build_items(source, "candidates")), options), []
  listing, first = catalogue(source, options)
  loaders = [first]
  try:
    target = _chosen(listing, options)
    n = jobs_for(options, sum(not isinstance(c, Unbuilt) for c in target.candidates)) if workers else 1
    if n > 1:  # the other workers load it now too: they must list the same candidates
      others, more = _listed(source, options, n - 1)
      loaders += more
      target = _deterministic(target, others)
  except BaseException:
    for w in loaders:
      w.stop()
    raise
  return target, loaders


def catalogue(spec: str | None, options: Options) -> tuple[Any, Worker]:
  """Target ``spec`` loaded in a worker process, and that worker (which then checks candidates).

  The harness process never imports the code it judges: a module that calls ``os._exit``, crashes
  or hangs at import ends only the worker, and the run stops with a loading error (exit status 2)
  that says what happened, instead of ending with the module's own exit status. The candidates come
  back as :class:`~verification.core.candidate.Listed` records (or :class:`~verification.core.candidate.Unbuilt`).
  Raises targets.TargetError.
  """
  from verification import targets
  from verification.core.candidate import Listed, Unbuilt

  (data,), (worker,) = _listed(spec, options, 1)
  items = tuple(Listed(i["label"], i["name"], i["params"], i["notes"], i.get("fields") or {}) if i["unbuilt"] is None
                else Unbuilt(i["label"], i["unbuilt"], i["name"], i["params"]) for i in data["items"])
  spelled = data.get("spelled")
  if not (isinstance(spelled, dict) and all(isinstance(k, str) and (v is None or isinstance(v, str))
                                            for k, v in spelled.items())):
    spelled = None  # (the registry is asked here instead)
  return targets.Target(data["name"], items, data["library"], data["is_reference"], spelled), worker


def _deterministic(target: Any, others: Sequence[dict[str, Any]]) -> Any:
  """``target`` with every candidate whose label another worker's listing lacks made an Unbuilt: the
  target is not deterministic, and that is an error whichever worker would have checked it."""
  from verification.core.candidate import Unbuilt

  labels = [{i["label"] for i in d["items"] if i["unbuilt"] is None} for d in others]

  def why(label: str) -> str:
    lacking = next(ls for ls in labels if label not in ls)
    return ("the target is not deterministic: another worker process that loaded it built no candidate labelled "
            f"so; {protocol.unstable_labels(label, sorted(lacking), 'the other')}")

  return dataclasses.replace(target, candidates=tuple(
      c if isinstance(c, Unbuilt) or all(c.label in ls for ls in labels) else
      Unbuilt(c.label, why(c.label), c.name, c.params) for c in target.candidates))


def _listed(spec: str | None, options: Options, n: int) -> tuple[list[dict[str, Any]], list[Worker]]:
  """``n`` new workers, each asked to load target ``spec`` at once, and what each listed (plain data,
  see ``verification.engine.worker``). Raises targets.TargetError naming why one could not (its error,
  its exit status or signal and last output, or the start-up limit)."""
  from verification import targets

  limit = max(processes.STARTUP_LIMIT, options.timeout)
  started = [Worker(spec, options) for _ in range(n)]
  found: list[dict[str, Any] | None] = [None] * n
  try:
    for w in started:
      try:
        w.conn.send(("list", only_names(options)))
      except OSError:
        raise _LoadingEnded(w) from None
    deadline = time.monotonic() + limit
    while any(d is None for d in found):
      for k, w in enumerate(started):
        if found[k] is not None:
          continue
        w.drain()
        try:
          messages = w.conn.messages()
        except EOFError:
          raise _LoadingEnded(w) from None
        except protocol.ProtocolError as exc:
          w.killed_for = f"it broke the harness's protocol ({exc}); the worker process was ended"
          w.kill()
          raise _LoadingEnded(w) from None
        for kind, *rest in messages:
          if kind == "ready" and isinstance(rest[0], dict) and w.env is None:
            w.env = usable(rest[0])
          elif kind == "catalogue" and isinstance(rest[0], dict) and found[k] is None:
            found[k] = rest[0]
        if found[k] is None and (w.over_memory() or w.proc.poll() is not None):
          raise _LoadingEnded(w)
        if found[k] is None and time.monotonic() > deadline:
          w.killed_for = (f"it was not loaded within {limit:g} s (the longer of {processes.STARTUP_LIMIT:g} s and "
                          f"the time limit per check: {TIMEOUT_OPTIONS}); the worker process was ended")
          w.kill()
          raise _LoadingEnded(w)
      wait([w.conn for k, w in enumerate(started) if found[k] is None], timeout=0.1)
  except _LoadingEnded as exc:
    ended = exc.worker
    ended.drain()
    words = last_words(ended.capture)
    for w in started:
      w.kill()
      w.close()
    raise targets.TargetError(f"--target {spec}: loading it ended the worker process: {ended.cause()}"
                              + (f"; its last output: {words}" if words else "")) from None
  except BaseException:
    for w in started:
      w.kill()
      w.close()
    raise
  error = next((d["error"] for d in found if "error" in d), None)
  if error is not None:
    for w in started:
      w.stop()
    raise targets.TargetError(error)
  for w in started:
    w.capture = Capture()  # what loading printed is not a candidate's output
  return found, started


class _LoadingEnded(Exception):
  """A worker ended (or was ended) while loading the target."""

  def __init__(self, worker: Worker):
    super().__init__()
    self.worker = worker


def only_names(options: Options) -> list[str]:
  """The names and labels ``--only`` gives (each option's value split at commas)."""
  return [n for item in options.only for n in item.split(",") if n]


def _chosen(target: Any, options: Options) -> Any:
  """``target`` with the candidates ``options`` select (--only, --shard); raises UsageError."""
  from verification import targets

  dup = targets.duplicates(map(written_label, target.labels))  # unique as written in the results, not only here
  if dup:
    raise UsageError(f"target {target.name}: candidates are identified by label and these occur more than once: "
                     f"{', '.join(repr(safe_text(d, 200)) for d in dup[:10])}; give each candidate its own label")
  only = only_names(options)
  if only:
    names = {c.name for c in target.candidates} | set(target.labels)
    unknown = [n for n in only if not targets.select(target.candidates, [n], target.spelled)]
    if unknown:
      raise UsageError(f"--only: no candidate of {target.name} is named or labelled {unknown}"
                       f"{close_matches(unknown, sorted(names))}")
  if not target.candidates:
    raise UsageError(f"target {target.name} has no candidates")
  chosen = tuple(c for c in targets.select(target.candidates, only, target.spelled) if in_shard(c.label, options.shard)
                 and (not options.labels or c.label in options.labels))
  return dataclasses.replace(target, candidates=chosen)
