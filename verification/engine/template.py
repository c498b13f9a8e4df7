"""The template process: workers and judges forked from one process that has imported JAX and the harness.

Started as ``python -m verification.engine.template FD`` by :mod:`verification.engine.processes`, once per
interpreter, environment and working directory, and kept for the harness process's life. It imports JAX
(no backend started: the children start their own), NumPy and the worker's and judge's modules with what
they import for every candidate, then serves requests on FD, a unix ``SOCK_SEQPACKET`` socket:

* harness to template: a JSON request ``{"id", "module", "env", "cwd"}`` with two descriptors
  (``SCM_RIGHTS``): the child's end of its channel (its number is the child's one argument, as ``FD`` is a
  fresh worker's) and the write end of the pipe that becomes its stdout and stderr;
* template to harness: ``["ready", pid, seconds]`` once imported (the seconds its imports took),
  ``["started", id, pid]`` per request (or ``["refused", id, why]``), ``["ended", pid, code]`` when a child
  ends (``os.waitstatus_to_exitcode``: negative for a signal).

The child does what a fresh ``python -m MODULE FD`` would have done differently: it leaves the template's
session, takes the pipe as fds 1 and 2 and ``/dev/null`` as 0, closes the template's descriptors, takes the
command line ``python -m MODULE FD`` (as ``ps`` shows it), the requested environment (and JAX's
configuration values that JAX reads from the environment at import), working directory and ``sys.argv``,
a fresh seed for NumPy's global generator (Python's ``random`` reseeds itself at fork), the signal
dispositions of a fresh process, then runs ``MODULE.main(argv)`` as ``python -m`` runs the module's
``sys.exit(main(...))``: the exit code of a ``SystemExit``, an uncaught exception printed and 1, ``atexit``
handlers and stdio flushed, then ``os._exit``. The kernel ends the template when the
harness process ends, and each child when the template ends (``PR_SET_PDEATHSIG``); the template ends when
its socket reaches EOF. This module runs only in the template process (and its children, until they run
their module); nothing imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
import time
from typing import Any

from verification.engine import profile

_PDEATHSIG, _SUBREAPER = 1, 36


def _die_with_parent() -> bool:
  """Linux: the kernel kills this process when its parent ends; False where the parent has already gone."""
  parent = os.getppid()
  with contextlib.suppress(Exception):
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PDEATHSIG, int(signal.SIGKILL))
  return os.getppid() == parent and parent != 1


def _retitle(words: list[str]) -> None:
  """Linux: this process's command line (``/proc/PID/cmdline``, what ``ps`` and psutil show) becomes ``words``,
  written over the template's own (where it fits: ``...engine.template`` is longer than the children's
  modules), so that a forked worker or judge is named as a fresh one would be."""
  with contextlib.suppress(Exception):
    with open("/proc/self/stat") as f:
      fields = f.read().rpartition(")")[2].split()
    start, end = int(fields[45]), int(fields[46])  # arg_start and arg_end, fields 48 and 49 of proc(5)
    title = b"\0".join(w.encode() for w in words) + b"\0"
    if 0 < len(title) <= end - start:
      with open("/proc/self/mem", "r+b", buffering=0) as mem:
        mem.seek(start)
        mem.write(title.ljust(end - start, b"\0"))


def _preload() -> None:
  """What every worker and judge imports before its first candidate (no backend is started)."""
  import jax  # noqa: F401
  import numpy  # noqa: F401

  import verification.checks
  import verification.core.cache
  import verification.core.candidate
  import verification.core.tape
  import verification.engine.judge
  import verification.engine.platform
  import verification.engine.protocol
  import verification.engine.worker

  verification.checks.import_all()


def _parse(text: str, default: Any) -> Any:
  """An environment variable's text as JAX parses it for an option whose default is ``default``."""
  import enum

  if isinstance(default, bool):
    value = text.lower()
    if value in ("y", "yes", "t", "true", "on", "1"):
      return True
    if value in ("n", "no", "f", "false", "off", "0"):
      return False
    raise ValueError(f"invalid truth value {text!r} for environment {text!r}")
  if isinstance(default, enum.Enum):
    return type(default)(text)
  if isinstance(default, int):
    return int(text)
  if isinstance(default, float):
    return float(text)
  return text


def jax_environment(env: dict[str, str], defaults: dict[str, Any]) -> None:
  """Sets each JAX option that ``env`` names (``JAX_PLATFORMS`` for ``jax_platforms``, ...) as JAX would
  have read it at import; ``defaults`` are the values the template's import gave (its environment names
  no JAX option). A value JAX would refuse raises, as the import would have."""
  import jax

  for name, default in defaults.items():
    text = env.get(name.upper())
    if text is None:
      continue
    value = _parse(text, default)
    if value == default:
      continue
    try:
      jax.config.update(name, value)
    except (TypeError, ValueError):  # an option whose default is None takes a number
      if default is not None:
        raise
      jax.config.update(name, float(text) if "." in text else int(text))


def _exit_code(exc: SystemExit) -> int:
  """The exit status Python gives a ``SystemExit`` that reaches the top (its text printed where it is one)."""
  code = exc.code
  if code is None:
    return 0
  if isinstance(code, int) and not isinstance(code, bool):
    return code & 0xFF
  with contextlib.suppress(Exception):
    print(code, file=sys.stderr)
  return 1


def run_module(module: str, argv: list[str]) -> int:
  """``MODULE.main(argv)`` as ``python -m MODULE`` runs its ``sys.exit(main(sys.argv[1:]))``: its exit status."""
  import atexit
  import importlib
  import traceback

  try:
    code = _exit_code(SystemExit(importlib.import_module(module).main(argv)))
  except SystemExit as exc:
    code = _exit_code(exc)
  except BaseException:
    with contextlib.suppress(BaseException):
      traceback.print_exc()
    code = 1
  with contextlib.suppress(BaseException):
    atexit._run_exitfuncs()
  for stream in (sys.stdout, sys.stderr):
    with contextlib.suppress(BaseException):
      stream.flush()
  return code


class Template:
  """The template's state: its socket, its children (by pidfd), and what a child puts back."""

  def __init__(self, sock: socket.socket):
    self.sock = sock
    self.imported = 0.0  # seconds its imports took (sent with "ready")
    self.children: dict[int, int] = {}  # pidfd -> pid
    self.signals = {s: signal.getsignal(s) for s in signal.valid_signals()
                    if s not in (signal.SIGKILL, signal.SIGSTOP)}
    import jax

    self.jax_defaults = {k: v for k, v in jax.config.values.items()}
    self.cwd = os.getcwd()

  def send(self, *message: Any) -> None:
    self.sock.send(json.dumps(message).encode())

  def serve(self) -> int:
    self.send("ready", os.getpid(), self.imported)
    while True:
      ready, _, _ = select.select([self.sock, *self.children], [], [])
      for fd in ready:
        if fd in self.children:
          pid = self.children.pop(fd)
          os.close(fd)
          _, status = os.waitpid(pid, 0)
          self.send("ended", pid, os.waitstatus_to_exitcode(status))
          continue
        data, fds, _, _ = socket.recv_fds(self.sock, 1 << 20, 2)
        if not data:
          for f in fds:
            os.close(f)
          return 0
        self.request(data, fds)

  def request(self, data: bytes, fds: list[int]) -> None:
    try:
      req = json.loads(data)
      if len(fds) != 2:
        raise ValueError(f"{len(fds)} descriptors sent, not 2")
      for stream in (sys.stdout, sys.stderr):
        stream.flush()
      forked_at = time.time()
      pid = os.fork()
      if pid == 0:
        profile.FORKED_AT = forked_at  # the start of its ``start`` (--profile)
        self.child(req, *fds)
      self.children[os.pidfd_open(pid)] = pid
      self.send("started", req.get("id"), pid)
    except Exception as exc:
      self.send("refused", req.get("id") if isinstance(req, dict) else None, f"{type(exc).__name__}: {exc}")
    finally:
      for f in fds:
        os.close(f)

  def child(self, req: dict[str, Any], channel: int, out: int) -> None:
    """In the forked child: becomes a fresh ``python -m MODULE`` and runs it; never returns."""
    code = 1
    try:
      if not _die_with_parent():
        os._exit(1)
      os.setsid()
      null = os.open(os.devnull, os.O_RDWR)
      os.dup2(null, 0)
      os.dup2(out, 1)
      os.dup2(out, 2)
      for f in (null, out, self.sock.fileno(), *self.children):
        if f > 2 and f != channel:
          with contextlib.suppress(OSError):
            os.close(f)
      for s, handler in self.signals.items():
        with contextlib.suppress(OSError, ValueError, TypeError):
          if handler is not None and signal.getsignal(s) is not handler:
            signal.signal(s, handler)
      os.environ.clear()
      os.environ.update(req["env"])
      os.chdir(req["cwd"])
      if sys.path and sys.path[0] == self.cwd:  # ``python -m`` puts the working directory first
        sys.path[0] = os.getcwd()
      import importlib

      import numpy as np

      np.random.seed()
      module = importlib.import_module(req["module"])
      sys.argv = [getattr(module, "__file__", None) or req["module"], str(channel)]
      _retitle([sys.executable, "-m", req["module"], str(channel)])
      jax_environment(os.environ, self.jax_defaults)
      code = run_module(req["module"], sys.argv[1:])
    except BaseException:
      with contextlib.suppress(BaseException):
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
    os._exit(code)


def main(argv: list[str]) -> int:
  if not _die_with_parent():
    return 1
  sock = socket.socket(fileno=int(argv[0]))
  t0 = time.perf_counter()
  _preload()
  template = Template(sock)
  template.imported = time.perf_counter() - t0
  code = template.serve()
  os._exit(code)  # without the interpreter's teardown of what it imported


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
