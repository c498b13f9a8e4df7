"""The worker and judge processes seen from the harness process: starting them, their channel and captured
output, their deadlines and memory limit, ending them (with their descendants) and why they ended."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from typing import Any

from verification.engine import devices, protocol
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


class Process:
  """A harness process started by this one (a worker or a judge) and what it is doing: its channel, its
  captured output, its deadline, and how it ended."""

  module = ""

  def __init__(self, options: Options, init: dict[str, Any]):
    parent, child = socket.socketpair()
    self.proc = subprocess.Popen([sys.executable, "-m", self.module, str(child.fileno())],
                                 pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 env={**os.environ, **devices.worker_environment(options.device)})
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


class Judge(Process):
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
