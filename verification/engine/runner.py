"""Running the checks: every candidate in a worker process, results as typed records.

:func:`run` is the API (the CLI is a thin layer over it)::

  run("reference")                                  # or a built-in name, or "module:ATTR"
  run([candidate, ...], Options(checks=("forward",), dtypes=("float32",)))

Isolation. Each candidate is checked in a worker process (:mod:`verification.engine.worker`), also with
``jobs=1``; workers are reused between well-behaved candidates. The parent enforces the time limit
per check by ending the worker, and the memory limit by watching each worker's resident memory (with
its descendants') and ending it past ``memory_limit``; where the worker runs on the CPU alone it also
caps its own address space at that limit (an accelerator runtime reserves far more address space
than it uses, so there the resident size is the guard). A worker
that dies (a signal, an exit, the memory cap, the time limit) gives ``error`` results for the
candidate it was running, naming the cause and the check that was running; the next candidate gets a
fresh worker. So does a candidate that changed JAX's configuration or left threads running.

Judging. Beside each worker a judge process (:mod:`verification.engine.judge`) decides the verdicts from
the worker's record of the candidate's outputs; it never loads the target. A worker may report only
failures itself (README, Isolation: where the verdicts are made).

Identity. Candidates are identified by label: the workers load the target themselves (spec
sources) or receive the candidate pickled with cloudpickle (object sources), and refuse a label they
do not have. Labels must be unique (a duplicate is a :class:`UsageError` naming it), so a target whose
order differs between processes (a ``set``) is checked correctly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import difflib
import functools
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import wait
from typing import Any

from verification import results as R
from verification.engine import protocol
from verification.results import Curve, Result, Run, Status

DTYPES = ("float16", "bfloat16", "float32", "float64")
GiB = 1 << 30
#: Memory per worker: resident memory with its descendants' (and, on the CPU alone, address space). Over
#: the whole reference run a worker's peak resident memory was 0.95 GiB and its peak address space
#: (VmPeak) 2.2 GiB; 8 GiB leaves room for larger candidates and stops a runaway one long before two
#: workers take a 24 GB machine.
DEFAULT_MEMORY_LIMIT = 8 * GiB
#: Seconds between two looks at a worker's resident memory (a candidate filling memory at ~5 GB/s is
#: ended within about 1 GB of the limit).
MEMORY_POLL = 0.1
#: ``--device``: what the workers' ``JAX_PLATFORMS`` is set to ("" leaves JAX to find the device). The
#: CPU stays listed beside an accelerator (the harness compiles some host programs); a worker whose
#: default backend is not the device asked for refuses to start.
DEVICES = {"": None, "cpu": "cpu", "gpu": "cuda,cpu", "tpu": "tpu,cpu"}
#: ``jax.default_backend()`` for each device.
BACKENDS = {"cpu": "cpu", "gpu": "gpu", "tpu": "tpu"}
#: Time to start a worker (import JAX) and load a target in it, at least.
STARTUP_LIMIT = 120.0
#: Captured output kept per candidate: the first and the last half of this many characters.
OUTPUT_LIMIT = 2000


class UsageError(ValueError):
  """Invalid options or target: exit status 2 in the CLI."""


@dataclasses.dataclass(frozen=True)
class Options:
  """How to run the checks. ``only`` (surrogate names or labels) selects candidates of the target."""

  checks: tuple[str, ...] = ()  # () = all, in the engine's order
  dtypes: tuple[str, ...] = DTYPES
  jobs: int = 0  # 0 = default_jobs(): the cores this process may use, never more than the candidates
  timeout: float = 120.0  # seconds per check
  memory_limit: int | None = DEFAULT_MEMORY_LIMIT  # bytes of resident memory per worker (and its descendants)
  device: str = ""  # "" = the device JAX finds; "cpu", "gpu" or "tpu"
  hypothesis_examples: int = 5
  require: tuple[str, ...] = ()
  shard: tuple[int, int] | None = None  # (k, n), 1 <= k <= n: a deterministic 1/n of candidates by label
  only: tuple[str, ...] = ()
  labels: tuple[str, ...] = ()  # () = every selected candidate; else those with exactly these labels


def all_checks() -> tuple[str, ...]:
  from verification.checks import CHECKS

  return tuple(CHECKS)


def validate(options: Options) -> None:
  """Raises :class:`UsageError` for options that cannot be run (before any work is done)."""
  known = all_checks()
  checks = tuple(options.checks)
  if any(not c for c in checks):
    raise UsageError("empty check name in the list of checks")
  unknown = [c for c in checks if c not in known]
  if unknown:
    raise UsageError(f"unknown checks {unknown}{_close(unknown, known)}; known: {', '.join(known)}")
  if not options.dtypes or any(not d for d in options.dtypes):
    raise UsageError("the list of dtypes is empty")
  unknown = [d for d in options.dtypes if d not in DTYPES]
  if unknown:
    raise UsageError(f"unknown dtypes {unknown}{_close(unknown, DTYPES)}; known: {', '.join(DTYPES)}")
  if isinstance(options.timeout, bool) or not isinstance(options.timeout, int | float) \
      or not math.isfinite(options.timeout) or options.timeout <= 0:
    raise UsageError(f"timeout {options.timeout!r}: expected a positive finite number of seconds")
  if isinstance(options.jobs, bool) or not isinstance(options.jobs, int) or options.jobs < 0:
    raise UsageError(f"jobs {options.jobs!r}: expected a whole number >= 1 (or 0 for the default)")
  if isinstance(options.hypothesis_examples, bool) or not isinstance(options.hypothesis_examples, int) \
      or options.hypothesis_examples < 1:
    raise UsageError(f"hypothesis examples {options.hypothesis_examples!r}: expected a whole number >= 1")
  if options.memory_limit is not None and (not isinstance(options.memory_limit, int) or options.memory_limit < GiB):
    raise UsageError(f"memory limit {options.memory_limit!r}: expected at least 1 GiB in bytes, or None")
  if options.device not in DEVICES:
    raise UsageError(f"device {options.device!r}: expected one of cpu, gpu, tpu{_close([options.device], DEVICES)}"
                     " (or nothing: the device JAX finds)")
  unknown = [c for c in options.require if c not in R.CAPABILITIES]
  if unknown:
    raise UsageError(f"unknown capabilities {unknown}; known: {', '.join(R.CAPABILITIES)}")
  if options.shard is not None:
    k, n = options.shard
    if not (isinstance(k, int) and isinstance(n, int) and 1 <= k <= n):
      raise UsageError(f"shard {options.shard!r}: expected (k, n) with 1 <= k <= n")


def _close(names: Sequence[str], known: Sequence[str]) -> str:
  hints = {n: difflib.get_close_matches(n, known, n=3) for n in names}
  hints = {n: h for n, h in hints.items() if h}
  return "" if not hints else " (did you mean " + "; ".join(f"{n}: {', '.join(h)}" for n, h in hints.items()) + "?)"


def cores() -> int:
  """The cores this process may run on (its CPU affinity, which a container or ``taskset`` may narrow)."""
  try:
    return len(os.sched_getaffinity(0)) or 1
  except (AttributeError, OSError):
    return os.cpu_count() or 1


def default_jobs() -> int:
  """Worker processes by default: one per core. Workers share one accelerator by allocating on demand
  (``XLA_PYTHON_CLIENT_PREALLOCATE=false``), so its memory is no tighter bound than the cores for
  elementwise checks (a worker's peak device memory in the reference run is well under 1 GiB)."""
  return cores()


def jobs_for(options: Options, n_candidates: int) -> int:
  """Worker processes: as asked (0: :func:`default_jobs`), never more than the cores or the candidates."""
  wanted = options.jobs or default_jobs()
  return max(1, min(wanted, cores(), n_candidates))


@functools.cache
def accelerator_plugins() -> tuple[str, ...]:
  """Installed JAX accelerator plugins (CUDA, ROCm, TPU), found without importing JAX (read once: each
  worker's start asks)."""
  import importlib.metadata

  names = set()
  for dist in importlib.metadata.distributions():
    name = (dist.metadata.get("Name") or "").lower().replace("_", "-")
    if name.startswith(("jax-cuda", "jax-rocm", "libtpu", "jaxlib-cuda")) or name in ("jax-tpu",):
      names.add(name)
  return tuple(sorted(names))


def worker_environment(device: str) -> dict[str, str]:
  """Environment variables of a worker for ``device``: its platforms, and on-demand allocation of an
  accelerator's memory (JAX preallocates 75% of it per process by default, so a second worker could
  not start). A value the user set is kept."""
  env = {}
  platforms = DEVICES[device]
  if platforms:
    env["JAX_PLATFORMS"] = platforms
  if "XLA_PYTHON_CLIENT_PREALLOCATE" not in os.environ and "XLA_PYTHON_CLIENT_MEM_FRACTION" not in os.environ:
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
  return env


def cpu_only(device: str) -> bool:
  """Whether the workers run on the CPU alone: asked for, or no accelerator plugin is installed (then the
  address-space cap is safe and catches an allocation before it is touched)."""
  platforms = DEVICES[device] or os.environ.get("JAX_PLATFORMS", "")
  if platforms:
    return platforms.split(",")[0].strip() == "cpu"
  return not accelerator_plugins()


def resident_memory(pid: int) -> int:
  """Resident memory of a process and all its descendants, in bytes (0 once it has ended)."""
  import psutil

  try:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
  except psutil.Error:
    return 0
  total = 0
  for p in procs:
    with contextlib.suppress(psutil.Error):
      total += p.memory_info().rss
  return total


def in_shard(label: str, shard: tuple[int, int] | None) -> bool:
  """Whether a label belongs to shard (k, n): CRC-32 of the label modulo n is k - 1 (stable everywhere)."""
  if shard is None:
    return True
  k, n = shard
  return zlib.crc32(label.encode()) % n == k - 1


# ---------------------------------------------------------------------------------------------
# In the parent: workers
# ---------------------------------------------------------------------------------------------


class _Capture:
  """A candidate's stdout/stderr: the first and last OUTPUT_LIMIT/2 characters and the total size."""

  def __init__(self) -> None:
    self.head, self.tail, self.size = b"", b"", 0

  def add(self, data: bytes) -> None:
    half = OUTPUT_LIMIT // 2
    self.size += len(data)
    if len(self.head) < half:
      take = half - len(self.head)
      self.head, data = self.head + data[:take], data[take:]
    self.tail = (self.tail + data)[-half:]

  def text(self) -> str:
    head, tail = self.head.decode(errors="replace"), self.tail.decode(errors="replace")
    if self.size <= len(self.head) + len(self.tail):
      return head + tail
    return f"{head}\n[... {self.size - len(self.head) - len(self.tail):,} bytes left out ...]\n{tail}"


class _Process:
  """A harness process started by this one (a worker or a judge) and what it is doing: its channel, its
  captured output, its deadline, and how it ended."""

  module = ""

  def __init__(self, options: Options, init: dict[str, Any]):
    parent, child = socket.socketpair()
    self.proc = subprocess.Popen([sys.executable, "-m", self.module, str(child.fileno())],
                                 pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 env={**os.environ, **worker_environment(options.device)})
    child.close()
    parent.setblocking(False)
    self.conn = protocol.Channel(parent, secrets.token_hex(16))
    self.out = self.proc.stdout
    os.set_blocking(self.out.fileno(), False)
    self.memory_limit = options.memory_limit
    self.next_memory_look = 0.0
    self.conn.send({"sys_path": [p for p in sys.path if p], "backend": BACKENDS.get(options.device),
                    "token": self.conn.token, **init})
    self.label: str | None = None
    self.phase = "start-up"
    self.deadline = time.monotonic() + STARTUP_LIMIT
    self.capture = _Capture()
    self.env: dict[str, Any] | None = None
    self.killed_for: str | None = None


  def over_memory(self) -> bool:
    """Ends the worker (and says so) where its resident memory, with its descendants', is past the limit."""
    now = time.monotonic()
    if self.memory_limit is None or now < self.next_memory_look:
      return False
    self.next_memory_look = now + MEMORY_POLL
    used = resident_memory(self.proc.pid)
    if used <= self.memory_limit:
      return False
    self.killed_for = (f"its resident memory reached {used / GiB:.1f} GiB, past the memory limit of "
                       f"{self.memory_limit / GiB:.1f} GiB (--memory-limit); the worker process was ended")
    self.kill()
    return True

  def drain(self) -> None:
    with contextlib.suppress(BlockingIOError, OSError, ValueError):
      while data := self.out.read(1 << 16):
        self.capture.add(data)

  def kill(self) -> None:
    """Ends the worker and every descendant (those in their own sessions too: found before the worker ends)."""
    import psutil

    descendants = []
    if self.proc.poll() is None:  # (a reaped worker's pid may belong to another process by now)
      with contextlib.suppress(psutil.Error):
        descendants = psutil.Process(self.proc.pid).children(recursive=True)
    with contextlib.suppress(ProcessLookupError, OSError):
      os.killpg(self.proc.pid, signal.SIGKILL)
    for p in descendants:
      with contextlib.suppress(psutil.Error):
        p.kill()
    with contextlib.suppress(Exception):
      self.proc.wait(timeout=30)

  def stop(self) -> None:
    with contextlib.suppress(Exception):
      self.conn.send(("stop",))
    try:
      self.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
      pass
    self.kill()  # what is left of its tree (nothing, after a clean stop)
    self.close()

  def close(self) -> None:
    for f in (self.conn, self.out):
      with contextlib.suppress(Exception):
        f.close()

  def cause(self) -> str:
    """Why the process ended: the limit, the signal's name or the exit status."""
    try:
      code = self.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
      self.kill()
      code = self.proc.returncode
    if self.killed_for:
      return self.killed_for
    if code is not None and code < 0:
      try:
        name = signal.Signals(-code).name
      except ValueError:
        name = f"signal {-code}"
      why = {"SIGKILL": " (from outside: the out-of-memory killer?)", "SIGSEGV": " (a segmentation fault)",
             "SIGABRT": " (aborted: an allocation over the memory limit or a failed assertion in native code)"}
      return f"killed by {name}{why.get(name, '')}"
    return f"exited with status {code}"


class _Judge(_Process):
  """The judge process beside a worker (:mod:`verification.engine.judge`): it gets each candidate's
  listing and the worker's records, and gives the results. It runs no candidate code and lives for the
  whole run; the messages to it wait in an outbox, sent as it reads them, so this process never blocks."""

  module = "verification.engine.judge"

  def __init__(self, options: Options):
    super().__init__(options, {})
    self.outbox: deque[bytes] = deque()
    #: Why its channel cannot be written to (it has ended), or None.
    self.broken: str | None = None

  def post(self, message: Any) -> None:
    self.outbox.append(protocol.frame(message))
    self.flush()

  def flush(self) -> None:
    while self.outbox and not self.broken:
      try:
        sent = self.conn.send_some(self.outbox[0])
      except OSError as exc:
        self.broken = f"its channel is closed ({exc.strerror or exc})"
        return
      if sent < len(self.outbox[0]):
        self.outbox[0] = self.outbox[0][sent:]
        return
      self.outbox.popleft()

  def stop(self) -> None:
    """A judge keeps nothing worth a clean exit (and a message half in its outbox would garble one)."""
    self.kill()
    self.close()


class _Worker(_Process):
  """One worker process (:mod:`verification.engine.worker`) and what it is doing."""

  module = "verification.engine.worker"

  def __init__(self, spec: str | None, options: Options):
    address_space = options.memory_limit if cpu_only(options.device) else None
    super().__init__(options, {"memory_limit": address_space, "spec": spec})
    self.sequence: protocol.Sequence | None = None


def _provenance(target: str, options: Options) -> dict[str, Any]:
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
  """Whether ``source`` is a target spec loaded in a worker (:func:`catalogue`): any but the reference."""
  return isinstance(source, str) and source not in ("", "reference")


def load(source: str | Sequence[Any] | None, options: Options):
  """The target of a run, with the candidates ``options`` select. The reference and candidate objects
  are resolved in this process; any other spec is listed by a worker (:func:`catalogue`), stopped
  after. Raises UsageError (duplicate labels, unknown --only names) or targets.TargetError."""
  target, loaders = _loaded(source, options, workers=False)
  for w in loaders:
    w.stop()
  return target


def _loaded(source: str | Sequence[Any] | None, options: Options, workers: bool) -> tuple[Any, list[_Worker]]:
  """The target of a run (as :func:`load`) and the workers that loaded it: for a spec other than the
  reference, the worker that listed it and, with ``workers``, as many more as the run will use, each
  having loaded it too (a label one of them did not build becomes an error: :func:`_deterministic`)."""
  from verification import targets
  from verification.core.candidate import Unbuilt

  if not _in_worker(source):
    if source is None or isinstance(source, str):
      import jax  # the reference is built here as a worker builds it: 64-bit on

      jax.config.update("jax_enable_x64", True)
      return _chosen(targets.resolve_target(source), options), []
    if isinstance(source, Mapping) or not hasattr(source, "__iter__"):
      source = [source]
    return _chosen(targets.Target("candidates", targets.build_items(source, "candidates")), options), []
  loaded, first = catalogue(source, options)
  loaders = [first]
  try:
    target = _chosen(loaded, options)
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


def catalogue(spec: str, options: Options) -> tuple[Any, _Worker]:
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
  return targets.Target(data["name"], items, data["library"], data["is_reference"]), worker


def _deterministic(target: Any, others: Sequence[dict[str, Any]]) -> Any:
  """``target`` with every candidate whose label another worker's listing lacks made an Unbuilt: the
  target is not deterministic, and that is an error whichever worker would have checked it."""
  from verification.core.candidate import Unbuilt

  labels = [{i["label"] for i in d["items"] if i["unbuilt"] is None} for d in others]
  return dataclasses.replace(target, candidates=tuple(
      c if isinstance(c, Unbuilt) or all(c.label in ls for ls in labels) else
      Unbuilt(c.label, f"the target is not deterministic: another worker process that loaded it built no candidate "
                       f"labelled {c.label!r}", c.name, c.params) for c in target.candidates))


def _listed(spec: str, options: Options, n: int) -> tuple[list[dict[str, Any]], list[_Worker]]:
  """``n`` new workers, each asked to load target ``spec`` at once, and what each listed (plain data,
  see ``verification.engine.worker``). Raises targets.TargetError naming why one could not (its error,
  its exit status or signal and last output, or the start-up limit)."""
  from verification import targets

  limit = max(STARTUP_LIMIT, options.timeout)
  started = [_Worker(spec, options) for _ in range(n)]
  found: list[dict[str, Any] | None] = [None] * n
  try:
    for w in started:
      try:
        w.conn.send(("list",))
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
            w.env = _usable(rest[0])
          elif kind == "catalogue" and isinstance(rest[0], dict) and found[k] is None:
            found[k] = rest[0]
        if found[k] is None and (w.over_memory() or w.proc.poll() is not None):
          raise _LoadingEnded(w)
        if found[k] is None and time.monotonic() > deadline:
          w.killed_for = f"it was not loaded within {limit:g} s; the worker process was ended"
          w.kill()
          raise _LoadingEnded(w)
      wait([w.conn for k, w in enumerate(started) if found[k] is None], timeout=0.1)
  except _LoadingEnded as exc:
    ended = exc.worker
    ended.drain()
    words = _last_words(ended.capture)
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
    w.capture = _Capture()  # what loading printed is not a candidate's output
  return found, started


class _LoadingEnded(Exception):
  """A worker ended (or was ended) while loading the target."""

  def __init__(self, worker: _Worker):
    super().__init__()
    self.worker = worker


def _chosen(target: Any, options: Options) -> Any:
  """``target`` with the candidates ``options`` select (--only, --shard); raises UsageError."""
  from verification import targets

  dup = targets.duplicates(target.labels)
  if dup:
    raise UsageError(f"target {target.name}: candidates are identified by label and these occur more than once: "
                     f"{', '.join(map(repr, dup[:10]))}; give each candidate its own label")
  only = [n for item in options.only for n in item.split(",") if n]
  if only:
    names = {c.name for c in target.candidates} | set(target.labels)
    unknown = [n for n in only if not targets.select(target.candidates, [n])]
    if unknown:
      raise UsageError(f"--only: no candidate of {target.name} is named or labelled {unknown}"
                       f"{_close(unknown, sorted(names))}")
  if not target.candidates:
    raise UsageError(f"target {target.name} has no candidates")
  chosen = tuple(c for c in targets.select(target.candidates, only) if in_shard(c.label, options.shard)
                 and (not options.labels or c.label in options.labels))
  return dataclasses.replace(target, candidates=chosen)


def run(source: str | Sequence[Any] | None = "reference", options: Options = Options(), *,
        progress: Callable[[str, list[Result]], None] | None = None,
        on_result: Callable[[Result], None] | None = None) -> Run:
  """Checks every candidate of ``source`` (a target spec, or candidate objects) and returns the run.

  Raises :class:`UsageError` or ``targets.TargetError`` before any checking; never raises for what a
  candidate does. ``progress(label, results)`` after each candidate, ``on_result(result)`` per result.
  """
  from verification.core.candidate import Unbuilt

  validate(options)
  target, loaders = _loaded(source, options, workers=True)  # the loaders then check the candidates
  checks = tuple(options.checks) or all_checks()
  spec = source if source is None or isinstance(source, str) else None
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
  try:
    pool.run(todo)
  finally:
    pool.close()
  ordered = tuple(r for c in target.candidates for r in by_label.get(c.label, []))
  return Run(target=target.name, results=ordered, checks=checks, library=target.library,
             environment=pool.environment, provenance={**_provenance(target.name, options),
                                                       "workers": len(pool.slots), "workers_started": pool.started,
                                                       "judges_started": pool.judges_started,
                                                       "dtypes_not_available": [
                                                           d for d in options.dtypes
                                                           if d not in pool.environment.get("dtypes", DTYPES)]},
             curves=pool.curves)


@dataclasses.dataclass
class _Job:
  """One candidate in a slot: its results so far, the checks whose records the judge has not answered
  (with when each was posted), and whether its worker is done with it."""

  label: str
  fields: Mapping[str, Any]
  results: list[Result] = dataclasses.field(default_factory=list)
  awaiting: dict[str, float] = dataclasses.field(default_factory=dict)
  #: The worker's records so far: a fresh judge taking over gets them first (a later check may replay an
  #: output recorded during an earlier one).
  history: list[list] = dataclasses.field(default_factory=list)
  worker_done: bool = False
  capture: _Capture | None = None

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
  with it and the judge has answered every record.
  """

  def __init__(self, spec: str | None, options: Options, opts: dict[str, Any], candidates: Mapping[str, Any],
               finish: Callable[[str, list[Result]], None], n: int, loaders: Sequence[_Worker] = ()):
    self.spec, self.options, self.opts, self.candidates, self.finish = spec, options, opts, candidates, finish
    self.slots: list[_Worker | None] = [None] * n
    self.judges: list[_Judge | None] = [None] * n
    self.jobs: dict[int, _Job] = {}
    self.curves: dict[str, Curve] = {}
    #: worker slot -> the surrogate name of the candidate it was given last
    self.last_name: dict[int, Any] = {}
    self.environment: dict[str, Any] = {}
    self.started = 0
    self.judges_started = 0
    for k, w in enumerate(loaders):  # the workers that loaded the target (runner.catalogue)
      if k < n:
        self.slots[k] = w
        self.started += 1
        self.environment = self.environment or dict(w.env or {})
      else:
        w.stop()

  def limit(self, phase: str) -> float:
    """Seconds allowed for a phase: the time limit per check; start-up and loading get at least STARTUP_LIMIT."""
    return max(STARTUP_LIMIT, self.options.timeout) if phase in ("start-up", "loading") else self.options.timeout

  def run(self, todo: deque[tuple[str, bytes | None]]) -> None:
    while todo or self.jobs:
      for i in range(len(self.slots)):
        if todo and i not in self.jobs:
          self.assign(i, *self.next_for(i, todo))
      watched, deadlines = [], []
      for i, job in self.jobs.items():
        w, j = self.slots[i], self.judges[i]
        if not job.worker_done and w is not None:
          watched += [w.conn, w.out]
          deadlines.append(w.deadline)
        if j is not None:
          watched += [j.conn, j.out]
          if job.awaiting:
            deadlines.append(j.deadline)
      outbox = any(j is not None and j.outbox for j in self.judges)
      soonest = min(deadlines, default=time.monotonic()) - time.monotonic()
      wait(watched, timeout=min(max(0.0, soonest), 0.005 if outbox else MEMORY_POLL))
      for i in list(self.jobs):
        self.step(i)

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
    w = self.slots[i]
    if w is None:
      w = self.slots[i] = _Worker(self.spec, self.options)
      self.started += 1
    if not job.judged_here:
      self.judge_for(i, job)
    w.label, w.capture = label, _Capture()
    w.sequence = protocol.Sequence(label, self.opts["checks"])
    try:
      w.conn.send(("check", label, payload, self.opts))
    except (OSError, TimeoutError):
      pass  # a worker that cannot take it has died or hangs: step() buries it
    if w.env is not None:
      w.phase, w.deadline = "loading", time.monotonic() + self.limit("loading")

  def step(self, i: int) -> None:
    job = self.jobs[i]
    w = self.slots[i]
    if not job.worker_done and w is not None:
      self.step_worker(i, w, job)
    j = self.judges[i]
    if j is not None:
      self.step_judge(i, j, job)
    if job.worker_done and not job.awaiting:
      del self.jobs[i]
      order = {c: k for k, c in enumerate(self.opts["checks"])}
      rs = sorted(job.results, key=lambda r: order.get(r.check, len(order)))
      self.finish(job.label, _with_output(rs, job.capture or _Capture()))

  def step_worker(self, i: int, w: _Worker, job: _Job) -> None:
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
          if job.judged_here or not isinstance(entries, list) or not isinstance(spoiled, str | None) \
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
        if kind == "ready":
          w.env = _usable(rest[0])
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
        if kind == "refused":
          self.forget(i, job)
          job.results = [protocol.failed_result(self.candidates[w.label], chk, rest[1], Status.ERROR)
                         for chk in self.opts["checks"]]
        job.worker_done, job.capture, w.label = True, w.capture, None
        if kind == "done" and rest[1]:  # the candidate changed global state: a fresh worker next
          w.stop()
          self.slots[i] = None
    if job.worker_done:
      return None
    if w.over_memory() or w.proc.poll() is not None:
      return self.bury(i, w, job)
    if time.monotonic() > w.deadline:
      w.killed_for = (f"did not return within the time limit of {self.limit(w.phase):g} s during {w.phase!r}; "
                      "the worker process was ended")
      w.kill()
      return self.bury(i, w, job)
    return None

  def to_judge(self, i: int, job: _Job, check: str, entries: list, spoiled: str | None, seconds: float) -> None:
    j = self.judge_for(i, job)
    if not job.awaiting:
      j.deadline = time.monotonic() + (self.limit("check") if j.env is not None else self.limit("start-up"))
    job.awaiting[check] = time.monotonic()
    job.history.append(entries)
    j.post(("record", job.label, check, entries, spoiled, seconds))

  def judge_for(self, i: int, job: _Job) -> _Judge:
    """Slot i's judge, told of ``job``'s candidate: a fresh one where there is none or the last ended while
    idle; one that takes over a candidate gets the candidate's records so far first."""
    j = self.judges[i]
    if j is not None and not job.awaiting and (j.broken or j.proc.poll() is not None):
      j.stop()
      j = self.judges[i] = None
    if j is None:
      j = self.judges[i] = _Judge(self.options)
      self.judges_started += 1
    if j.label != job.label:
      j.label = job.label
      j.post(("begin", job.label, dict(job.fields), self.opts))
      if job.history:
        j.post(("entries", job.label, [e for entries in job.history for e in entries]))
    return j

  def forget(self, i: int, job: _Job) -> None:
    """The judge drops the candidate (its worker refused it): nothing it was judging is kept."""
    job.awaiting.clear()
    if self.judges[i] is not None:
      self.judges[i].post(("end", job.label))

  def step_judge(self, i: int, j: _Judge, job: _Job) -> None:
    """Reads what judge i said; a judge that died or is late gives errors for what it was judging."""
    j.drain()
    j.flush()
    try:
      messages = j.conn.messages()
    except (EOFError, protocol.ProtocolError) as exc:
      return self.judge_failed(i, j, job, j.cause() if isinstance(exc, EOFError) else str(exc))
    for kind, *rest in messages:
      if kind == "ready" and isinstance(rest[0], dict) and j.env is None:
        j.env = _usable(rest[0])
        if job.awaiting:
          j.deadline = time.monotonic() + self.limit("check")
      elif kind == "result" and len(rest) == 2 and rest[0] == job.label:
        record = Result.from_json(rest[1])
        if job.awaiting.pop(record.check, None) is not None:
          job.results.append(record)
          j.deadline = time.monotonic() + self.limit("check")
    if job.awaiting and (j.broken or j.proc.poll() is not None):
      return self.judge_failed(i, j, job, j.cause() if j.proc.poll() is not None else j.broken)
    if job.awaiting and time.monotonic() > j.deadline:
      j.kill()
      return self.judge_failed(i, j, job, f"it did not judge within the time limit of {self.limit('check'):g} s")
    if job.worker_done and not job.awaiting:
      j.post(("end", job.label))
    return None

  def judge_failed(self, i: int, j: _Judge, job: _Job, cause: str) -> None:
    j.drain()
    words = _last_words(j.capture)
    for check in job.awaiting:
      job.results.append(protocol.failed_result(
          self.candidates[job.label], check, f"the judge process failed while judging this check: {cause}"
          + (f"; its last output: {words}" if words else ""), Status.ERROR))
    job.awaiting.clear()
    j.kill()
    j.close()
    self.judges[i] = None

  def violated(self, i: int, w: _Worker, job: _Job, what: str) -> None:
    """A worker that broke the protocol (:class:`protocol.Sequence`) is ended; its candidate gets errors naming it."""
    w.killed_for = f"the worker broke the harness's protocol: {what}; the worker process was ended"
    w.kill()
    return self.bury(i, w, job)

  def bury(self, i: int, w: _Worker, job: _Job) -> None:
    """A worker that ended while checking: its candidate's results so far and those its judge gives for the
    checks it recorded, then errors naming the cause."""
    w.drain()
    cause = w.cause()
    if w.phase != "curves":  # a missing curve is not a failure
      job.results = _died(self.candidates[w.label], self.opts["checks"], job.results, set(job.awaiting), w.phase,
                          cause, w.capture, w.killed_for is not None)
    job.worker_done, job.capture = True, w.capture
    w.close()
    self.slots[i] = None

  def close(self) -> None:
    for p in [*self.slots, *self.judges]:
      if p is not None:
        p.stop()


def _usable(environment: dict[str, Any]) -> dict[str, Any]:
  """A worker's environment, or :class:`UsageError` where it found no device of the kind asked for."""
  if environment.get("device_error"):
    raise UsageError(environment["device_error"])
  return environment


def _died(candidate: Any, checks: Sequence[str], done: list[Result], judging: set[str], phase: str, cause: str,
          capture: _Capture, timed_out: bool) -> list[Result]:
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
    if chk == (phase if phase in checks else checks[0]) and _last_words(capture):
      msg += f"; its last output: {_last_words(capture)}"
    out.append(protocol.failed_result(candidate, chk, msg, Status.ERROR))
  order = {c: i for i, c in enumerate(checks)}
  return sorted(out, key=lambda r: order.get(r.check, len(order)))


def _last_words(capture: _Capture) -> str:
  """What a dying worker printed last: from Python's fatal-error report (faulthandler) if there is one."""
  text = capture.text()
  start = text.rfind("Fatal Python error")
  if start >= 0:
    lines = [ln for ln in text[start:].splitlines() if ln.strip() and "Extension modules" not in ln]
    return " | ".join(ln.strip() for ln in lines[:6])[:600]
  return text[-600:].strip()


def _with_output(rs: list[Result], capture: _Capture) -> list[Result]:
  """The candidate's captured output (truncated) in each of its results' diagnosis."""
  if not capture.size:
    return rs
  text = capture.text()
  return [dataclasses.replace(r, diagnosis=dataclasses.replace(
      r.diagnosis, extra={**r.diagnosis.extra, "output": text, "output_bytes": capture.size})) for r in rs]


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
