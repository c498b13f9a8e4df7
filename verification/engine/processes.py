"""The worker and judge processes seen from the harness process: starting them, their channel and captured
output, their deadlines and memory limit, ending them (with their descendants) and why they ended."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from typing import Any

from verification.engine import devices, proctree, profile, protocol
from verification.engine.options import GiB, Options, UsageError

#: Seconds between two looks at a worker's resident memory (a candidate filling memory at ~5 GB/s is
#: ended within about 1 GB of the limit).
MEMORY_POLL = 0.1
#: The share of the memory limit by which a worker's resident memory may grow over what it held when its first
#: candidate began (after loading the target) before it is replaced, after the candidate that made it so:
#: what one candidate keeps (a cache in a module list) must not leave the next too little. Over the whole
#: reference run (2 workers) a worker's resident memory grew from 0.27 GiB by at most 0.77 GiB (its programs
#: compiled and cached; at most 0.17 GiB during one candidate): under the default limit of 8 GiB no worker is
#: replaced for that; under a limit of about 3 GiB or less some are, which costs time, never a verdict.
MEMORY_GROWTH = 0.25
#: Time to start a worker (import JAX) and load a target in it, at least.
STARTUP_LIMIT = 120.0
#: Captured output kept per candidate: the first and the last half of this many characters.
OUTPUT_LIMIT = 2000


#: Where a user sets the time limit per check, in each way of running the harness.
TIMEOUT_OPTIONS = "--timeout SECONDS (command line), Options(timeout=...) (API), --surrogate-timeout (pytest plugin)"


def late(phase: str, limit: float) -> str:
  """Why a worker was ended for taking longer than ``limit`` seconds in ``phase``, and how to allow more."""
  if phase == "sanity":
    where = ("during its first call ('sanity': each of its callables once, on four float32 values), which is "
             "where a warm-up happens (imports, compilation at the first call)")
  else:
    where = f"during {phase!r}"
  return (f"did not return within the time limit of {limit:g} s {where}; the worker process was ended (a longer "
          f"limit per check: {TIMEOUT_OPTIONS})")


def resident_memory(pid: int) -> int:
  """Resident memory of a process and all its descendants, in bytes (0 once it has ended)."""
  import psutil

  total = 0
  for p in [pid, *proctree.descendants(pid)]:
    with contextlib.suppress(psutil.Error):
      total += psutil.Process(p).memory_info().rss
  return total


class Capture:
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


#: ``SURROGATE_HARNESS_TEMPLATE=off``: every worker and judge starts as a fresh ``python -m`` of its module,
#: which imports JAX and the harness itself, instead of being forked from a template process.
TEMPLATE_SWITCH = "SURROGATE_HARNESS_TEMPLATE"
#: Environment variables a template process is started without and its children take from their own
#: environment: JAX's options (which the child sets again from them), what is read when a backend starts
#: (XLA's, CUDA's, TensorFlow's logging level and the TPU's: JAX sets the last two in a process that imports it),
#: the harness's own (read where used) and pytest's (one per test). The rest of the environment, with the
#: interpreter and the working directory, picks the template.
PER_CHILD = ("JAX_", "XLA_", "CUDA_VISIBLE_DEVICES", "TF_CPP_", "TPU_", "SURROGATE_HARNESS_", "SURROGATE_TORCH_",
             "PYTEST_")
#: Seconds a template may take to import JAX and the harness; past them (or where it fails), the processes
#: start the plain way.
TEMPLATE_START = 60.0
#: Seconds a template may take to answer a request to fork.
FORK_LIMIT = 10.0
#: Template processes kept at once (each holds about 0.3 GiB): a new environment past them ends the one
#: used least recently that has no process running.
TEMPLATES_KEPT = 3


class Template:
  """A template process (:mod:`verification.engine.template`) as the harness process sees it: the
  requests to fork a worker or judge, the exit status of each it forked, and whether it has ended."""

  module = "verification.engine.template"

  def __init__(self, env: dict[str, str]):
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    self.log = tempfile.TemporaryFile()
    #: When it was started (seconds since the epoch), and what its start cost (:meth:`report`).
    self.created = time.time()
    self.imported, self.start_cpu, self.ready_after = 0.0, 0.0, 0.0
    try:
      self.proc = subprocess.Popen([sys.executable, "-m", self.module, str(child.fileno())],
                                   pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=self.log, start_new_session=True, env=env)
    finally:
      child.close()
    self.sock = parent
    self.lock = threading.RLock()
    self.ready = False
    #: Why it ended (the harness saw EOF on its socket), or None while it serves.
    self.gone: str | None = None
    self.ended: dict[int, int] = {}  # pid -> exit status, reported and not yet taken
    self.running: set[int] = set()  # pids forked and not reported ended
    self.replies: dict[int, tuple[str, Any]] = {}
    self.requests = 0
    self.pump(TEMPLATE_START, until=lambda: self.ready)
    self.ready_after = time.time() - self.created
    with contextlib.suppress(Exception):
      import psutil

      times = psutil.Process(self.proc.pid).cpu_times()
      self.start_cpu = times.user + times.system

  def report(self) -> dict[str, float]:
    """Its start as a line of the profile (:mod:`verification.engine.profile`): Python's start (``start``),
    its imports (``jax import``) and its CPU time until it was ready; what it does after (forking) is
    milliseconds a process."""
    line = dict.fromkeys(profile.PARTS, 0.0)
    line["jax import"] = min(self.imported, self.ready_after)
    line["start"] = self.ready_after - line["jax import"]
    return {**line, "lifetime": self.ready_after, "cpu": self.start_cpu}

  def pump(self, timeout: float = 0.0, until: Any = None) -> None:
    """Takes every message the template has sent, waiting up to ``timeout`` seconds for ``until()`` (by
    default: for one message) unless it has ended."""
    deadline = time.monotonic() + timeout
    got = False
    with self.lock:
      while self.gone is None:
        done = until() if until is not None else got
        ready, _, _ = select.select([self.sock], [], [], 0.0 if done else max(0.0, deadline - time.monotonic()))
        if not ready:
          return
        try:
          data = self.sock.recv(1 << 16)
        except OSError:
          data = b""
        if not data:
          self.lost()
          return
        got = True
        kind, *rest = json.loads(data)
        if kind == "ready":
          self.ready = True
          if len(rest) > 1 and isinstance(rest[1], int | float) and not isinstance(rest[1], bool):
            self.imported = float(rest[1])
        elif kind in ("started", "refused"):
          self.replies[rest[0]] = (kind, rest[1])
          if kind == "started":  # an earlier process's status under this pid, never taken, is stale
            self.ended.pop(rest[1], None)
        elif kind == "ended":
          self.ended[rest[0]] = rest[1]
          self.running.discard(rest[0])

  def lost(self) -> None:
    """The template has ended: the kernel ends every process forked from it (``PR_SET_PDEATHSIG``); those
    not yet gone are ended here."""
    try:
      code = self.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
      self.proc.kill()
      code = self.proc.wait()
    self.gone = (f"the template process it was forked from (pid {self.proc.pid}) ended ({describe(code)}), "
                 "which ends every worker and judge forked from it")
    for pid in self.running:
      with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
      self.sock.close()

  def fork(self, module: str, channel: int, out: int, env: dict[str, str]) -> int | None:
    """A new process running ``module`` on ``channel`` with ``out`` as its stdout and stderr: its pid, or None
    where the template could not fork it (it has ended, refused or did not answer: then it is ended)."""
    with self.lock:
      self.pump()
      if self.gone is not None:
        return None
      self.requests += 1
      key = self.requests
      request = json.dumps({"id": key, "module": module, "env": env, "cwd": os.getcwd()}).encode()
      try:
        ready = select.select([], [self.sock], [], FORK_LIMIT)[1]
        if not ready or socket.send_fds(self.sock, [request], [channel, out]) != len(request):
          raise OSError("the template did not take the request")
      except OSError:
        self.end()
        return None
      self.pump(FORK_LIMIT, until=lambda: key in self.replies)
      if key not in self.replies:
        if self.gone is None:
          self.end()  # it did not answer in time
        return None
      kind, value = self.replies.pop(key)
      if kind != "started":
        return None
      self.running.add(value)
      return value

  def status(self, pid: int) -> tuple[int | None, str | None]:
    """The exit status of a process it forked (None while it runs), and why it ended where it was ended with
    the template (its status unknown: the kernel's SIGKILL)."""
    with self.lock:
      self.pump()
      if pid in self.ended:
        return self.ended.pop(pid), None
      if self.gone is not None:
        return -signal.SIGKILL, self.gone
      return None, None

  def end(self) -> None:
    with contextlib.suppress(OSError):
      self.proc.kill()
    with self.lock:
      if self.gone is None:
        self.pump(5.0, until=lambda: False)
      if self.gone is None:
        self.lost()


_templates: dict[tuple[Any, ...], Template] = {}
_no_template: set[tuple[Any, ...]] = set()


@atexit.register
def _end_templates() -> None:
  """At exit: each template is told to end (EOF) and waited for, so that its CPU time and its children's
  count in this process's (``/usr/bin/time``, ``RUSAGE_CHILDREN``)."""
  for template in list(_templates.values()):
    with contextlib.suppress(Exception):
      template.sock.close()
      template.proc.wait(timeout=10)


def template_for(env: dict[str, str]) -> Template | None:
  """The template process for processes with this environment: started once and kept for this process's
  life (a new one where a candidate ended it), or None where it is switched off (TEMPLATE_SWITCH) or could
  not start here (the processes start the plain way)."""
  if os.environ.get(TEMPLATE_SWITCH, "").strip().lower() in ("off", "0", "false", "no") or \
     not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open") or not hasattr(socket, "send_fds"):
    return None
  base = {k: v for k, v in env.items() if not k.startswith(PER_CHILD)}
  key = (sys.executable, os.getcwd(), tuple(sorted(base.items())))
  if key in _no_template:
    return None
  template = _templates.pop(key, None)
  if template is not None:
    template.pump()
    if template.gone is None:
      _templates[key] = template  # (the dict's order: the one used last at the end)
      return template
  for old, idle in list(_templates.items()):
    if len(_templates) < TEMPLATES_KEPT:
      break
    with idle.lock:
      idle.pump()
      if not idle.running:
        idle.end()
        del _templates[old]
  try:
    template = Template(base)
  except (OSError, ValueError, subprocess.SubprocessError):
    template = None
  if template is None or not template.ready:
    if template is not None:
      template.end()
    _no_template.add(key)
    _templates.pop(key, None)
    return None
  _templates[key] = template
  return template


class Forked:
  """A process a template forked, with what the engine uses of a :class:`subprocess.Popen`: ``pid``,
  ``stdout``, ``poll``, ``wait``, ``returncode``; and ``lost``, why it ended where its template ended."""

  def __init__(self, template: Template, pid: int, stdout: Any):
    self.template, self.pid, self.stdout = template, pid, stdout
    self.returncode: int | None = None
    self.lost: str | None = None

  def poll(self) -> int | None:
    if self.returncode is None:
      self.returncode, self.lost = self.template.status(self.pid)
    return self.returncode

  def wait(self, timeout: float | None = None) -> int:
    end = None if timeout is None else time.monotonic() + timeout
    while self.poll() is None:
      left = 0.5 if end is None else min(0.5, end - time.monotonic())
      if left <= 0:
        raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
      self.template.pump(left)
    return self.returncode

  def kill(self) -> None:
    if self.poll() is None:
      with contextlib.suppress(OSError):
        os.kill(self.pid, signal.SIGKILL)


def start(module: str, channel: socket.socket, env: dict[str, str]) -> Forked | subprocess.Popen:
  """A worker or judge process running ``module`` on ``channel``: forked from the template for ``env``, or
  started the plain way (``python -m module FD``) where there is none."""
  template = template_for(env)
  if template is not None:
    read, write = os.pipe()
    try:
      pid = template.fork(module, channel.fileno(), write, env)
    finally:
      os.close(write)
    if pid is not None:
      return Forked(template, pid, os.fdopen(read, "rb"))
    os.close(read)
  return subprocess.Popen([sys.executable, "-m", module, str(channel.fileno())], pass_fds=(channel.fileno(),),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          start_new_session=True, env=env)


class Process:
  """A harness process started by this one (a worker or a judge) and what it is doing: its channel, its
  captured output, its deadline, and how it ended."""

  module = ""

  def __init__(self, options: Options, init: dict[str, Any]):
    parent, child = socket.socketpair()
    try:
      self.proc = start(self.module, child, {**os.environ, **devices.worker_environment(options.device)})
    finally:
      child.close()
    parent.setblocking(False)
    self.conn = protocol.Channel(parent, secrets.token_hex(16))
    self.out = self.proc.stdout
    os.set_blocking(self.out.fileno(), False)
    self.memory_limit = options.memory_limit
    self.next_memory_look = 0.0
    self.conn.send({"sys_path": [p for p in sys.path if p], "backend": devices.BACKENDS.get(options.device),
                    "token": self.conn.token, **init})
    self.label: str | None = None
    self.phase = "start-up"
    self.deadline = time.monotonic() + STARTUP_LIMIT
    self.capture = Capture()
    self.env: dict[str, Any] | None = None
    self.killed_for: str | None = None
    #: Its last report of where its time went (:mod:`verification.engine.profile`), or None.
    self.report: dict[str, float] | None = None
    self.asked_to_stop = False

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
      for pid in proctree.descendants(self.proc.pid):
        with contextlib.suppress(psutil.Error):
          descendants.append(psutil.Process(pid))
    with contextlib.suppress(ProcessLookupError, OSError):
      os.killpg(self.proc.pid, signal.SIGKILL)
    if isinstance(self.proc, Forked):  # (one just forked may not lead its own process group yet)
      self.proc.kill()
    for p in descendants:
      with contextlib.suppress(psutil.Error):
        p.kill()
    with contextlib.suppress(Exception):
      self.proc.wait(timeout=30)

  def ask_to_stop(self) -> None:
    """Tells the process to end (:meth:`stop` then waits for it): several are stopped at once."""
    if not self.asked_to_stop:
      self.asked_to_stop = True
      with contextlib.suppress(Exception):
        self.conn.send(("stop",))

  def stop(self) -> None:
    self.ask_to_stop()
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
    return getattr(self.proc, "lost", None) or describe(code)


def describe(code: int | None) -> str:
  """A process's exit status in words: the signal's name (negative) or the status."""
  if code is not None and code < 0:
    try:
      name = signal.Signals(-code).name
    except ValueError:
      name = f"signal {-code}"
    why = {"SIGKILL": " (from outside: the out-of-memory killer?)", "SIGSEGV": " (a segmentation fault)",
           "SIGABRT": " (aborted: an allocation over the memory limit or a failed assertion in native code)"}
    return f"killed by {name}{why.get(name, '')}"
  return f"exited with status {code}"


class Judge(Process):
  """The judge process beside a worker (:mod:`verification.engine.judge`): it gets each candidate's
  listing and the worker's records, and gives the results. It runs no candidate code and lives for the
  whole run; the messages to it wait in an outbox, sent as it reads them, so this process never blocks."""

  module = "verification.engine.judge"

  def __init__(self, options: Options):
    super().__init__(options, {})
    self.outbox: deque[memoryview] = deque()
    #: Why its channel cannot be written to (it has ended), or None.
    self.broken: str | None = None

  def post(self, message: Any) -> None:
    self.outbox.append(memoryview(protocol.frame(message)))
    self.flush()

  def flush(self) -> None:
    while self.outbox and not self.broken:
      try:
        sent = self.conn.send_some(self.outbox[0])
      except OSError as exc:
        self.broken = f"its channel is closed ({exc.strerror or exc})"
        return
      if sent < len(self.outbox[0]):
        self.outbox[0] = self.outbox[0][sent:]  # a view: what is left is not copied
        return
      self.outbox.popleft()

  def ask_to_stop(self) -> None:
    """A judge keeps nothing worth a clean exit (and a message half in its outbox would garble one)."""
    self.kill()

  def stop(self) -> None:
    self.kill()
    self.close()


class Worker(Process):
  """One worker process (:mod:`verification.engine.worker`) and what it is doing."""

  module = "verification.engine.worker"

  def __init__(self, spec: str | None, options: Options):
    address_space = options.memory_limit if devices.cpu_only(options.device) else None
    super().__init__(options, {"memory_limit": address_space, "spec": spec})
    self.sequence: protocol.Sequence | None = None
    #: Resident memory (bytes, with descendants) when its first candidate began, and when this one began.
    self.memory_start: int | None = None
    self.memory_before = 0

  def candidate_begins(self) -> None:
    """Notes the resident memory as a candidate's first call begins (the target is loaded by then)."""
    if self.memory_limit is not None:
      self.memory_before = resident_memory(self.proc.pid)
      if self.memory_start is None:
        self.memory_start = self.memory_before

  def grown(self) -> str | None:
    """Why the worker must be replaced after its candidate for the memory it holds now, or None: its resident
    memory grew by more than MEMORY_GROWTH of the limit since its first candidate began."""
    if self.memory_limit is None or self.memory_start is None:
      return None
    now = resident_memory(self.proc.pid)
    if now - self.memory_start <= MEMORY_GROWTH * self.memory_limit:
      return None
    return (f"the worker's resident memory grew by {(now - self.memory_before) / GiB:.2f} GiB while checking it, to "
            f"{now / GiB:.2f} GiB ({(now - self.memory_start) / GiB:.2f} GiB over the {self.memory_start / GiB:.2f} "
            f"GiB it held when its first candidate began: more than {MEMORY_GROWTH:.0%} of the memory limit of "
            f"{self.memory_limit / GiB:.1f} GiB, --memory-limit); what a candidate keeps (a cache, a module-level "
            "list) would leave the next too little, so the worker was replaced after it")


def usable(environment: dict[str, Any]) -> dict[str, Any]:
  """A worker's environment, or :class:`UsageError` where it found no device of the kind asked for."""
  if environment.get("device_error"):
    raise UsageError(environment["device_error"])
  return environment


def last_words(capture: Capture) -> str:
  """What a dying worker printed last: from Python's fatal-error report (faulthandler) if there is one."""
  text = capture.text()
  start = text.rfind("Fatal Python error")
  if start >= 0:
    lines = [ln for ln in text[start:].splitlines() if ln.strip() and "Extension modules" not in ln]
    return " | ".join(ln.strip() for ln in lines[:6])[:600]
  return text[-600:].strip()
