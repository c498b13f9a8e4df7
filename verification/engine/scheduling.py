"""The pool's scheduling: every candidate in a slot (a worker and its judge), the loop that hands them out,
reads what each process says, enforces the time limit per check and turns a death into results; and
:func:`run`, which loads the target, queues its candidates and returns the run."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import wait
from typing import Any

from verification import results as R
from verification.engine import processes, profile, protocol
from verification.engine.loading import loaded, provenance
from verification.engine.options import DTYPES, Options, all_checks, jobs_for, validate
from verification.engine.processes import MEMORY_POLL, Capture, Judge, Worker, last_words, late, usable
from verification.results import Curve, Result, Run, Status


def run(source: str | Sequence[Any] | None = "reference", options: Options = Options(), *,
        progress: Callable[[str, list[Result]], None] | None = None,
        on_result: Callable[[Result], None] | None = None) -> Run:
  """Checks every candidate of ``source`` (a target spec, or candidate objects) and returns the run.

  Raises :class:`UsageError` or ``targets.TargetError`` before any checking; never raises for what a
  candidate does. ``progress(label, results)`` after each candidate, ``on_result(result)`` per result.
  """
  from verification.core.candidate import Unbuilt

  validate(options)
  t0, start_epoch, before = time.perf_counter(), time.time(), time.time() - profile.created()
  source = "reference" if source is None else source  # a spec, which each worker loads itself
  target, loaders = loaded(source, options, workers=True)  # the loaders then check the candidates
  checks = _applicable(tuple(options.checks) or all_checks(), target.candidates)
  spec = source if isinstance(source, str) else None
  opts = {"checks": checks, "dtypes": tuple(options.dtypes), "is_reference": target.is_reference,
          "hypothesis_examples": options.hypothesis_examples}
  by_label: dict[str, list[Result]] = {}

  def finish(label: str, rs: list[Result]) -> None:
    rs = R.require(rs, options.require)
    by_label[label] = rs
    for r in rs:
      if on_result:
        on_result(r)
    if progress:
      progress(label, rs)

  todo: deque[tuple[str, bytes | None]] = deque()
  candidates = {c.label: c for c in target.candidates}
  for c in target.candidates:
    if isinstance(c, Unbuilt):
      finish(c.label, [protocol.failed_result(c, chk, c.message, Status.ERROR) for chk in checks])
      continue
    payload = None
    if spec is None:
      payload = protocol.pickled(c)
      if isinstance(payload, str):
        finish(c.label, [protocol.failed_result(c, chk, payload, Status.ERROR) for chk in checks])
        continue
    todo.append((c.label, payload))

  pool = _Pool(spec, options, opts, candidates, finish, jobs_for(options, len(todo)), loaders)
  t1 = time.perf_counter()
  try:
    pool.run(todo)
  finally:
    t2 = time.perf_counter()
    pool.close()
  t3 = time.perf_counter()
  profiled = {} if not options.profile else {"profile": profile.summary(
      {**_template_lines(pool, start_epoch), **{name: p.report for name, p in pool.processes if p.report is not None}},
      {"before the run": before, "loading": t1 - t0, "checking": t2 - t1, "stopping": t3 - t2,
       "cpu": profile.cpu_seconds()}, t3 - t0)}
  ordered = tuple(r for c in target.candidates for r in by_label.get(c.label, []))
  return Run(target=target.name, results=ordered, checks=checks, library=target.library,
             environment=pool.environment, provenance={**provenance(target.name, options),
                                                       "workers": len(pool.slots), "workers_started": pool.started,
                                                       "judges_started": pool.judges_started,
                                                       "dtypes_not_available": [
                                                           d for d in options.dtypes
                                                           if d not in pool.environment.get("dtypes", DTYPES)],
                                                       **profiled},
             curves=pool.curves)


def _applicable(checks: tuple[str, ...], candidates: Sequence[Any]) -> tuple[str, ...]:
  """The checks that apply to a kind of candidate the target has (spike functions, layers)."""
  from verification.checks import checks_for
  from verification.core.candidate import Listed, Unbuilt

  kinds = {(c.fields.get("kind") if isinstance(c, Listed) else getattr(c, "kind", None)) or "spike"
           for c in candidates if not isinstance(c, Unbuilt)} or {"spike"}
  return tuple(c for c in checks if any(checks_for(k, (c,)) for k in kinds))


def _template_lines(pool: _Pool, since: float) -> dict[str, dict[str, float]]:
  """The profile's lines of the template processes the run started (at ``since`` or later: one an earlier run
  started is not this run's cost), in the order its processes met them."""
  templates = {}
  for _, p in pool.processes:
    t = getattr(p.proc, "template", None)
    if t is not None and t.created >= since:
      templates.setdefault(id(t), t)
  return {f"template {k}": t.report() for k, t in enumerate(templates.values(), 1)}


#: How many candidates a worker may run ahead of its judge: it takes the next candidate while its judge still owes
#: results for at most this many, so a judge that hangs holds up its worker (and what waits for it) soon after.
AHEAD = 1


@dataclasses.dataclass
class _Job:
  """One candidate in a slot: its results so far, the checks whose records the judge has not answered
  (with when each was posted), and whether its worker is done with it."""

  label: str
  fields: Mapping[str, Any]
  results: list[Result] = dataclasses.field(default_factory=list)
  awaiting: dict[str, float] = dataclasses.field(default_factory=dict)
  #: The worker's records so far, as ``(check, entries, spoiled, seconds)``: a fresh judge taking over gets
  #: them first (a later check may replay an output recorded during an earlier one).
  history: list[tuple[str, bytes, str | None, float]] = dataclasses.field(default_factory=list)
  worker_done: bool = False
  capture: Capture | None = None
  #: What the candidate left in its worker, which was replaced after it (a note in each of its results).
  left: list[str] = dataclasses.field(default_factory=list)
  #: The run's checks that apply to this candidate's kind (spike function or layer).
  checks: tuple[str, ...] = ()

  @property
  def judged_here(self) -> bool:
    from verification.core.candidate import self_judged

    return self_judged(self.fields)


class _Pool:
  """Up to ``n`` slots, each a worker and its judge, checking the queued candidates; ``finish(label,
  results)`` for each candidate.

  One loop: hand a candidate to each idle slot, wait for a message, output or a deadline, then read what
  each busy worker and judge said. The worker's records of a check go to its slot's judge, whose results
  are the candidate's; a worker may itself give only failing results (its sanity test, a record it could
  not make), except for a candidate judged in its worker (its own declaration is code). A worker that is
  late is ended, one that died is buried (its candidate gets error results for the checks it did not
  record) and its slot gets a fresh worker for the next candidate; a judge that dies or is late gives
  errors for the checks it was judging, and is replaced. A candidate is finished when its worker is done
  with it and the judge has answered every record. A worker done with its candidate takes the next while
  its judge still judges the last records (:attr:`judged`; at most :data:`AHEAD` candidates ahead): the judge reads
  its messages in order, so the earlier candidate's records come before the next one's ``begin``.
  """

  def __init__(self, spec: str | None, options: Options, opts: dict[str, Any], candidates: Mapping[str, Any],
               finish: Callable[[str, list[Result]], None], n: int, loaders: Sequence[Worker] = ()):
    self.spec, self.options, self.opts, self.candidates, self.finish = spec, options, opts, candidates, finish
    self.slots: list[Worker | None] = [None] * n
    self.judges: list[Judge | None] = [None] * n
    #: slot -> the candidate its worker is checking (or was, until the worker is done with it)
    self.jobs: dict[int, _Job] = {}
    #: slot -> candidates its worker is done with whose records the slot's judge has not all answered, oldest first
    self.judged: dict[int, list[_Job]] = {k: [] for k in range(n)}
    self.curves: dict[str, Curve] = {}
    #: worker slot -> the surrogate name of the candidate it was given last
    self.last_name: dict[int, Any] = {}
    self.environment: dict[str, Any] = {}
    self.started = 0
    self.judges_started = 0
    #: Every worker and judge started, by name (``worker 1``, ``judge 1``, ...): their profiles.
    self.processes: list[tuple[str, processes.Process]] = []
    for k, w in enumerate(loaders):  # the workers that loaded the target (loading.catalogue)
      if k < n:
        self.slots[k] = w
        self.started += 1
        self.processes.append((f"worker {self.started}", w))
        self.environment = self.environment or dict(w.env or {})
      else:
        w.stop()

  def limit(self, phase: str) -> float:
    """Seconds allowed for a phase: the time limit per check; start-up and loading get at least STARTUP_LIMIT."""
    if phase in ("start-up", "loading"):
      return max(processes.STARTUP_LIMIT, self.options.timeout)
    return self.options.timeout

  def run(self, todo: deque[tuple[str, bytes | None]]) -> None:
    while todo or self.jobs or any(self.judged.values()):
      for i in range(len(self.slots)):
        if todo and i not in self.jobs and len(self.judged[i]) <= AHEAD:
          self.assign(i, *self.next_for(i, todo))
      watched, deadlines = [], []
      busy = [i for i in range(len(self.slots)) if i in self.jobs or self.judged[i]]
      for i in busy:
        w, j, job = self.slots[i], self.judges[i], self.jobs.get(i)
        if job is not None and not job.worker_done and w is not None:
          watched += [w.conn, w.out]
          deadlines.append(w.deadline)
        if j is not None:
          watched += [j.conn, j.out]
          if self.awaiting(i):
            deadlines.append(j.deadline)
      outbox = any(j is not None and j.outbox for j in self.judges)
      soonest = min(deadlines, default=time.monotonic()) - time.monotonic()
      wait(watched, timeout=min(max(0.0, soonest), 0.005 if outbox else MEMORY_POLL))
      for i in busy:
        self.step(i)

  def on_judge(self, i: int) -> list[_Job]:
    """The candidates slot i's judge is told of: those its worker is done with, oldest first, then the current."""
    job = self.jobs.get(i)
    return [*self.judged[i], *([job] if job is not None else [])]

  def awaiting(self, i: int) -> bool:
    """Whether slot i's judge owes a result."""
    return any(job.awaiting for job in self.on_judge(i))

  def next_for(self, i: int, todo: deque[tuple[str, bytes | None]]) -> tuple[str, bytes | None]:
    """The next candidate for worker ``i``: another parameter set of the surrogate it checked last
    (whose compiled programs that worker holds), else one of a surrogate no other worker is on (so
    two workers do not compile the same programs at the same time), else the next in order."""
    def name(item: tuple[str, bytes | None]) -> Any:
      return getattr(self.candidates.get(item[0]), "name", None)

    others = {self.last_name.get(j) for j in self.jobs if j != i}
    for wanted in (lambda n: n == self.last_name.get(i), lambda n: n not in others):
      for k, item in enumerate(todo):
        if wanted(name(item)):
          del todo[k]
          self.last_name[i] = name(item)
          return item
    item = todo.popleft()
    self.last_name[i] = name(item)
    return item

  def assign(self, i: int, label: str, payload: bytes | None) -> None:
    from verification.core.candidate import Listed, judged_fields

    c = self.candidates[label]
    job = self.jobs[i] = _Job(label, c.fields if isinstance(c, Listed) else judged_fields(c))
    from verification.checks import checks_for

    job.checks = checks_for(job.fields.get("kind") or "spike", self.opts["checks"])
    w = self.slots[i]
    if w is None:
      w = self.slots[i] = Worker(self.spec, self.options)
      self.started += 1
      self.processes.append((f"worker {self.started}", w))
    if not job.judged_here:
      self.judge_for(i, job)
    w.label, w.capture = label, Capture()
    w.sequence = protocol.Sequence(label, job.checks)
    try:
      w.conn.send(("check", label, payload, {**self.opts, "checks": job.checks}))
    except (OSError, TimeoutError):
      pass  # a worker that cannot take it has died or hangs: step() buries it
    if w.env is not None:
      w.phase, w.deadline = "loading", time.monotonic() + self.limit("loading")

  def step(self, i: int) -> None:
    job = self.jobs.get(i)
    w = self.slots[i]
    if job is not None and not job.worker_done and w is not None:
      self.step_worker(i, w, job)
    j = self.judges[i]
    if j is not None:
      self.step_judge(i, j)
    if job is not None and job.worker_done:  # the worker is free for the next candidate
      del self.jobs[i]
      self.judged[i].append(job)
    for done in [job for job in self.judged[i] if not job.awaiting]:
      self.judged[i].remove(done)
      if j is not None and self.judges[i] is j:
        j.post(("end", done.label))
      order = {c: k for k, c in enumerate(done.checks)}
      rs = sorted(done.results, key=lambda r: order.get(r.check, len(order)))
      self.finish(done.label, _with_output(rs, done.capture or Capture(), done.left))

  def step_worker(self, i: int, w: Worker, job: _Job) -> None:
    """Reads what worker i said; ends it if it is late; buries it if it died."""
    w.drain()
    try:
      messages = w.conn.messages()
    except EOFError:
      return self.bury(i, w, job)
    except protocol.ProtocolError as exc:
      return self.violated(i, w, job, str(exc))
    for kind, *rest in messages:
      if job.worker_done:  # more after 'done': its candidate is finished, the worker is not to be trusted
        w.kill()
        w.close()
        self.slots[i] = None
        return None
      try:
        if len(rest) < protocol.ARITY[kind]:
          raise protocol.ProtocolError(f"a {kind!r} message without its {protocol.ARITY[kind]} fields")
        w.sequence.accept(kind, rest)
        if kind == "ready" and (w.env is not None or not isinstance(rest[0], dict)):
          raise protocol.ProtocolError("a second or malformed 'ready' message")
        if kind == "catalogue":
          raise protocol.ProtocolError("a 'catalogue' message while checking a candidate")
        if kind == "result":
          record = Result.from_json(rest[1])
          if not (record.status.failing or job.judged_here):
            raise protocol.ProtocolError(f"a {record.status.value!r} verdict from the worker (verdicts come from "
                                         "the judge; a worker may only report a failure)")
        if kind == "record":
          check, entries, spoiled, seconds = rest[1:5]
          if job.judged_here or not isinstance(entries, bytes | bytearray) or not isinstance(spoiled, str | None) \
              or isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise protocol.ProtocolError(f"a malformed 'record' message for {str(check)[:40]!r}")
        if kind == "refused" and not isinstance(rest[1], str):
          raise protocol.ProtocolError("a malformed 'refused' message")
      except (protocol.ProtocolError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        return self.violated(i, w, job, str(exc) if isinstance(exc, protocol.ProtocolError) else
                             f"a malformed {kind!r} message ({type(exc).__name__}: {exc})")
      if kind in ("ready", "start"):
        w.phase = "loading" if kind == "ready" else rest[1]
        w.deadline = time.monotonic() + self.limit(w.phase)
        if w.phase == "sanity":
          w.candidate_begins()
        if kind == "ready":
          w.env = usable(rest[0])
          self.environment = self.environment or dict(rest[0])
      elif kind == "result":
        job.results.append(record)
      elif kind == "record":
        self.to_judge(i, job, check, entries, spoiled, seconds)
      elif kind == "curve":
        with contextlib.suppress(Exception):
          self.curves[rest[0]] = Curve.from_json(rest[1])
      elif kind in ("done", "refused"):
        w.drain()
        if kind == "done" and len(rest) > 2:  # where its time went so far
          w.report = profile.usable(rest[2]) or w.report
        if kind == "refused":
          self.forget(i, job)
          job.results = [protocol.failed_result(self.candidates[w.label], chk, rest[1], Status.ERROR)
                         for chk in job.checks]
        job.worker_done, job.capture, w.label = True, w.capture, None
        if kind == "done":  # a candidate that changed the worker's state or grew its memory: a fresh one next
          job.left = [m for m in (rest[1], w.grown()) if m]
          if job.left:
            w.stop()
            self.slots[i] = None
    if job.worker_done:
      return None
    if w.over_memory() or w.proc.poll() is not None:
      return self.bury(i, w, job)
    if time.monotonic() > w.deadline:
      w.killed_for = late(w.phase, self.limit(w.phase))
      w.kill()
      return self.bury(i, w, job)
    return None

  def to_judge(self, i: int, job: _Job, check: str, entries: bytes, spoiled: str | None, seconds: float) -> None:
    j = self.judge_for(i, job)
    if not self.awaiting(i):
      j.deadline = time.monotonic() + (self.limit("check") if j.env is not None else self.limit("start-up"))
    job.awaiting[check] = time.monotonic()
    job.history.append((check, entries, spoiled, seconds))
    j.post(("record", job.label, check, entries, spoiled, seconds))

  def judge_for(self, i: int, job: _Job) -> Judge:
    """Slot i's judge, told of ``job``'s candidate: a fresh one where there is none or the last ended while
    idle; one that takes over a candidate gets the candidate's records so far first."""
    j = self.judges[i]
    if j is not None and not self.awaiting(i) and (j.broken or j.proc.poll() is not None):
      j.stop()
      j = self.judges[i] = None
    if j is None:
      j = self.judges[i] = Judge(self.options)
      self.judges_started += 1
      self.processes.append((f"judge {self.judges_started}", j))
    if j.label != job.label:
      j.label = job.label
      j.post(("begin", job.label, dict(job.fields), self.opts))
      if job.history:
        j.post(("entries", job.label, [h[1] for h in job.history]))
    return j

  def forget(self, i: int, job: _Job) -> None:
    """The judge drops the candidate (its worker refused it): nothing it was judging is kept."""
    job.awaiting.clear()
    if self.judges[i] is not None:
      self.judges[i].post(("end", job.label))

  def step_judge(self, i: int, j: Judge) -> None:
    """Reads what judge i said; a judge that died or is late gives errors for what it was judging."""
    j.drain()
    j.flush()
    try:
      messages = j.conn.messages()
    except (EOFError, protocol.ProtocolError) as exc:
      return self.judge_failed(i, j, j.cause() if isinstance(exc, EOFError) else str(exc))
    jobs = {job.label: job for job in self.on_judge(i)}
    for kind, *rest in messages:
      if kind == "ready" and isinstance(rest[0], dict) and j.env is None:
        j.env = usable(rest[0])
        if self.awaiting(i):
          j.deadline = time.monotonic() + self.limit("check")
      elif kind == "result" and len(rest) in (2, 3) and isinstance(rest[0], str) and rest[0] in jobs:
        if len(rest) == 3:  # where its time went so far
          j.report = profile.usable(rest[2]) or j.report
        record, job = Result.from_json(rest[1]), jobs[rest[0]]
        if job.awaiting.pop(record.check, None) is not None:
          job.results.append(record)
          j.deadline = time.monotonic() + self.limit("check")
    if self.awaiting(i) and (j.broken or j.proc.poll() is not None):
      return self.judge_failed(i, j, j.cause() if j.proc.poll() is not None else j.broken)
    if self.awaiting(i) and time.monotonic() > j.deadline:
      j.kill()
      return self.judge_failed(i, j, f"it did not judge within the time limit of {self.limit('check'):g} s "
                               f"(a longer limit per check: {processes.TIMEOUT_OPTIONS})")
    return None

  def judge_failed(self, i: int, j: Judge, cause: str) -> None:
    """Errors naming the cause for the checks judge i owes of the first candidate it owes any (it judges in
    order: that candidate's is what it was judging); the judge ended. A later candidate's records, queued
    behind, go to a fresh judge."""
    j.drain()
    words = last_words(j.capture)
    owing = [job for job in self.on_judge(i) if job.awaiting]
    for check in owing[0].awaiting if owing else ():
      owing[0].results.append(protocol.failed_result(
          self.candidates[owing[0].label], check, f"the judge process failed while judging this check: {cause}"
          + (f"; its last output: {words}" if words else ""), Status.ERROR))
    j.kill()
    j.close()
    self.judges[i] = None
    for k, job in enumerate(owing):
      awaited, job.awaiting = set(job.awaiting), {}
      if k:  # queued behind the first: judged afresh from its records
        queued = [h for h in job.history if h[0] in awaited]
        job.history = [h for h in job.history if h[0] not in awaited]
        for record in queued:
          self.to_judge(i, job, *record)

  def violated(self, i: int, w: Worker, job: _Job, what: str) -> None:
    """A worker that broke the protocol (:class:`protocol.Sequence`) is ended; its candidate gets errors naming it."""
    w.killed_for = f"the worker broke the harness's protocol: {what}; the worker process was ended"
    w.kill()
    return self.bury(i, w, job)

  def bury(self, i: int, w: Worker, job: _Job) -> None:
    """A worker that ended while checking: its candidate's results so far and those its judge gives for the
    checks it recorded, then errors naming the cause."""
    w.drain()
    cause = w.cause()
    if w.phase != "curves":  # a missing curve is not a failure
      job.results = _died(self.candidates[w.label], job.checks, job.results, set(job.awaiting), w.phase,
                          cause, w.capture, w.killed_for is not None)
    job.worker_done, job.capture = True, w.capture
    w.close()
    self.slots[i] = None

  def close(self) -> None:
    alive = [p for p in [*self.slots, *self.judges] if p is not None]
    for p in alive:  # all told first: they end at the same time
      p.ask_to_stop()
    for p in alive:
      p.stop()



def _died(candidate: Any, checks: Sequence[str], done: list[Result], judging: set[str], phase: str, cause: str,
          capture: Capture, timed_out: bool) -> list[Result]:
  """Results of a candidate whose worker ended: those that finished, then errors naming the cause for the
  checks neither finished nor being judged."""
  finished = {r.check for r in done} | judging
  out = list(done)
  for chk in checks:
    if chk in finished:
      continue
    if chk == phase:
      msg = cause if timed_out else f"the worker process died during the {phase!r} check: {cause}"
    elif phase in checks:
      msg = f"not run: the worker process ended during the {phase!r} check ({cause})"
    else:
      msg = f"the worker process ended during {phase} ({cause})"
    if chk == (phase if phase in checks else checks[0]) and last_words(capture):
      msg += f"; its last output: {last_words(capture)}"
    out.append(protocol.failed_result(candidate, chk, msg, Status.ERROR))
  order = {c: i for i, c in enumerate(checks)}
  return sorted(out, key=lambda r: order.get(r.check, len(order)))



def _with_output(rs: list[Result], capture: Capture, left: Sequence[str] = ()) -> list[Result]:
  """The candidate's captured output (truncated) and what it left in its worker (``left_behind``: the worker
  was replaced after it) in each of its results' diagnosis."""
  extra: dict[str, Any] = {}
  if capture.size:
    extra.update(output=capture.text(), output_bytes=capture.size)
  if left:
    extra["left_behind"] = "; ".join(left)
  if not extra:
    return rs
  return [dataclasses.replace(r, diagnosis=dataclasses.replace(r.diagnosis, extra={**r.diagnosis.extra, **extra}))
          for r in rs]


# ---------------------------------------------------------------------------------------------
# Shorthands
# ---------------------------------------------------------------------------------------------


def verify(candidates: Sequence[Any], checks: Sequence[str] = (), dtypes: Sequence[Any] = (), *, jobs: int = 2,
           time_limit: float = 120.0, hypothesis_examples: int = 20, **kwargs: Any) -> list[Result]:
  """The results of :func:`run` on candidate objects (isolated like any run)."""
  import numpy as np

  options = Options(checks=tuple(checks), dtypes=tuple(np.dtype(d).name for d in dtypes) or DTYPES, jobs=jobs,
                    timeout=time_limit, hypothesis_examples=hypothesis_examples, **kwargs)
  return list(run(list(candidates), options).results)


def verify_candidate(candidate: Any, checks: Sequence[str] = (), dtypes: Sequence[Any] = (), **kwargs: Any
                     ) -> list[Result]:
  """The results of one candidate (in a worker process)."""
  kwargs.pop("is_reference", None)
  return verify([candidate], checks, dtypes, jobs=1, **kwargs)
