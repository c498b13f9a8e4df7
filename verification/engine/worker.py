"""The worker process: checks candidates one at a time for :mod:`verification.engine.runner`.

Started as ``python -m verification.engine.worker FD``; FD is one end of a socket pair carrying framed
messages (:class:`verification.engine.protocol.Channel`). Its stdout and stderr are a pipe read by
the parent, which attributes what a candidate prints to that candidate. The worker:

* caps its address space (``RLIMIT_AS``) before importing JAX where it runs on the CPU alone (the
  parent says so), so a candidate that allocates without bound gets a ``MemoryError`` instead of
  taking the machine; everywhere the parent also watches its resident memory;
* sets JAX's configuration itself (64-bit on) and re-asserts it before every candidate; a candidate
  that changes any JAX configuration value fails the check during which it did so, and the worker
  asks to be replaced (``dirty``) so that nothing it changed reaches the next candidate; so does a
  candidate that leaves Python threads running;
* reports ``start`` before each phase (loading, sanity, each check, curves), so the parent, which
  enforces the time limit by ending the process, knows what was running when it died;
* runs each check to compute the candidate's outputs and sends their record (:mod:`verification.core.tape`)
  for the judge process to decide the verdict (:mod:`verification.engine.judge`); it reports verdicts
  itself only for failures it sees (its sanity test, state the candidate spoiled) and for a candidate
  that declares its own, unregistered surrogate.

The messages are listed in :mod:`verification.engine.protocol`; ``catalogue`` gives the target's
candidates as plain data (the parent never imports a target module; see ``loading.catalogue``). This
module runs only in the worker process: the parent starts it by name and never imports it.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import resource
import sys
import tempfile
import threading
import traceback
import types
from typing import Any

HARNESS_CONFIG = {"jax_enable_x64": True}


def _die_with_parent() -> None:
  """Linux: the kernel ends this worker when the harness process ends (even a hung worker)."""
  with contextlib.suppress(Exception):
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def _become_subreaper() -> None:
  """Linux: orphans of this worker's descendants (a daemon that double-forks, a helper started in its own
  session) become its children, so :func:`end_descendants` finds them."""
  with contextlib.suppress(Exception):
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


def _children(pid: int) -> list[int]:
  """The children of ``pid`` (Linux's /proc/PID/task/*/children; psutil elsewhere)."""
  try:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
      with open(f"/proc/{pid}/task/{task}/children") as f:
        found += [int(c) for c in f.read().split()]
    return found
  except OSError:
    import psutil

    with contextlib.suppress(psutil.Error):
      return [c.pid for c in psutil.Process(pid).children()]
    return []


def end_descendants() -> list[str]:
  """Ends every process this worker's candidates started (and reaps those that ended); returns the ones
  that were still running, as ``pid command``."""
  import psutil

  pids, queue = [], _children(os.getpid())
  while queue:
    pid = queue.pop()
    pids.append(pid)
    queue += _children(pid)
  if not pids:
    return []
  left = []
  for pid in pids:
    with contextlib.suppress(psutil.Error):
      p = psutil.Process(pid)
      if p.status() != psutil.STATUS_ZOMBIE:
        left.append(f"{pid} {' '.join(p.cmdline())[:100] or p.name()}")
      p.kill()
  for pid in pids:
    with contextlib.suppress(ChildProcessError, OSError):
      os.waitpid(pid, 0)  # those that were this worker's children (the others are reaped by their parents, or here)
  return left


def _set_memory_limit(limit: int | None) -> None:
  if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _configure() -> None:
  import jax

  from verification.core import cache

  for key, value in HARNESS_CONFIG.items():
    jax.config.update(key, value)
  cache.enable()  # the persistent compilation cache is the harness's setting too


def _config_snapshot() -> dict[str, Any]:
  import jax

  return dict(jax.config.values)


def _restore(snapshot: dict[str, Any], now: dict[str, Any]) -> None:
  import jax

  for key, value in snapshot.items():
    if now.get(key) != value:
      with contextlib.suppress(Exception):
        jax.config.update(key, value)


#: Modules whose attributes the judging uses: a candidate that rebinds one of their attributes (or an
#: attribute of a class defined in ``verification``) is caught, and the worker replaced.
WATCHED = ("math", "numpy", "numpy.linalg", "jax", "jax.numpy", "jax.lax", "jax.nn", "jax.scipy.special")


class State:
  """The process state a candidate can leave behind, snapshot when the worker starts: signal handlers,
  timers (``alarm``, ``setitimer``, faulthandler's), the working directory, ``os.environ`` and JAX's
  configuration; and the attributes of the watched modules (:data:`WATCHED`, ``verification.*``),
  snapshot before each candidate. :meth:`reset` puts it back before each candidate and each check;
  :meth:`patched` says what a candidate rebound (it cannot be undone everywhere: the worker is replaced)."""

  def __init__(self) -> None:
    import signal

    self.cwd = os.getcwd()
    self.environ = dict(os.environ)
    self.config = _config_snapshot()
    self.handlers = {}
    for sig in signal.valid_signals():
      with contextlib.suppress(OSError, ValueError, TypeError):
        handler = signal.getsignal(sig)
        if handler is not None:
          self.handlers[sig] = handler
    self.modules: list[tuple[str, Any, dict[str, Any]]] = []

  def reset(self) -> list[str]:
    """Cancels timers, restores signal handlers, the working directory and the environment; returns
    what could not be restored (the worker is then replaced)."""
    import signal

    problems = []
    signal.alarm(0)
    for timer in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF):
      signal.setitimer(timer, 0)
    faulthandler.cancel_dump_traceback_later()
    if not faulthandler.is_enabled():
      faulthandler.enable()
    for sig, handler in self.handlers.items():
      if signal.getsignal(sig) is not handler:
        with contextlib.suppress(OSError, ValueError, TypeError):
          signal.signal(sig, handler)
    try:
      here = os.getcwd()
    except OSError:  # deleted
      here = None
    if here != self.cwd:
      try:
        os.chdir(self.cwd)
      except OSError as exc:
        os.chdir(tempfile.gettempdir())
        problems.append(f"the worker's start directory {self.cwd} is gone ({exc.strerror})")
    if os.environ != self.environ:
      for key in [k for k in os.environ if k not in self.environ]:
        del os.environ[key]
      for key, value in self.environ.items():
        if os.environ.get(key) != value:
          os.environ[key] = value
    return problems

  def restore_config(self) -> None:
    """JAX's configuration as the worker set it (what a module changed at import is set back)."""
    _restore(self.config, _config_snapshot())

  def config_changes(self) -> str | None:
    """Restores JAX's configuration; says what the candidate had changed, or None."""
    now = _config_snapshot()
    changed = {k: (v, now.get(k)) for k, v in self.config.items() if now.get(k) != v}
    if not changed:
      return None
    _restore(self.config, now)
    parts = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in sorted(changed.items()))
    return f"the candidate changed JAX's global configuration ({parts})"

  def watch(self) -> None:
    """Snapshots the watched modules' attributes (and those of the classes ``verification`` defines)."""
    import verification.checks  # noqa: F401  (every check's module, imported lazily otherwise)

    self.modules = []
    for name, module in list(sys.modules.items()):
      if module is None or not (name in WATCHED or name == "verification" or name.startswith("verification.")):
        continue
      names = vars(module)
      self.modules.append((name, module, dict(names)))
      if name.startswith("verification"):
        for attr, value in list(names.items()):
          if isinstance(value, type) and value.__module__ == name:
            self.modules.append((f"{name}.{attr}", value, dict(vars(value))))

  def patched(self, put_back: bool = False) -> str | None:
    """What the candidate rebound or deleted in the watched modules since :meth:`watch` (put back, as
    far as a module's attributes go), or None; with ``put_back`` only the names of what was put back."""
    found = []
    for name, owner, snapshot in self.modules:
      live = vars(owner)
      for attr, value in snapshot.items():
        if live.get(attr, _MISSING) is not value:
          found.append(f"{name}.{attr}")
          with contextlib.suppress(Exception):
            setattr(owner, attr, value)
    if not found:
      return None
    if put_back:
      return ", ".join(found[:6]) + (", ..." if len(found) > 6 else "")
    return (f"the candidate replaced attributes of modules the checks use ({', '.join(found[:6])}"
            f"{', ...' if len(found) > 6 else ''}): the worker process is replaced")


_MISSING = object()


def _is_array(v: Any) -> bool:
  return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, list | tuple | dict)


def sanity(candidate: Any) -> str | None:
  """The structure of each callable's output on a tiny input (4 float32 values), before anything is
  compiled: an array of the input's shape with a numeric dtype. Returns what is wrong, or None.
  Exceptions are left to the checks (they say where and on what input)."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  x = np.array([-1.0, -0.0, 0.0, 0.5], np.float32)
  calls: list[tuple[str, Any]] = []
  if candidate.backend == "jax":
    xj = jnp.asarray(x)

    def vjp():
      out, pull = jax.vjp(candidate.fn, xj)
      return pull(jnp.ones_like(out))[0]

    calls += [("the spike function", lambda: candidate.fn(xj)), ("its VJP", vjp)]
  else:
    calls += [("forward", lambda: candidate.forward(x)), ("vjp", lambda: candidate.vjp(x, np.ones_like(x)))]
  for field in ("surrogate_fun", "surrogate_grad"):
    f = getattr(candidate, field)
    if f is not None:
      calls.append((field, lambda f=f: f(jnp.asarray(x) if candidate.backend == "jax" else x)))
  for what, call in calls:
    try:
      out = call()
    except BaseException:  # what the candidate raises (KeyboardInterrupt too) is left to the checks
      continue
    if not _is_array(out):
      return (f"{what} returned a {type(out).__name__} for a float32 array of shape (4,); expected an array of "
              "the input's shape (found before compiling anything)")
    if tuple(out.shape) != x.shape:
      return f"{what} returned shape {tuple(out.shape)} for an input of shape (4,)"
    if not any(kind in str(out.dtype) for kind in ("float", "int", "bool", "complex")):  # numpy, jax or torch
      return f"{what} returned dtype {out.dtype} for a float32 input: not a numeric array"
  return None


class Worker:
  def __init__(self, conn, spec: str | None, state: State | None = None):
    self.conn = conn
    self.spec = spec
    self.state = state or State()
    self._target: dict[str, Any] | None = None
    self.env: dict[str, Any] = {"dtypes": ["float16", "bfloat16", "float32", "float64"], "platform": "cpu"}

  def send(self, *message: Any) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    self.conn.put(*message)

  def spoiled(self, label: str) -> list[str]:
    """What the candidate changed that decides verdicts (JAX's configuration, the watched modules' attributes)
    or left running (processes, each ended), each put back as far as it can be; the check during which it
    happened fails and the worker is replaced."""
    left = end_descendants()
    ended = (f"{label} left {len(left)} process(es) running, ended by the harness: {'; '.join(left[:4])}"
             if left else None)
    return [m for m in (self.state.config_changes(), self.state.patched(), ended) if m]

  def _load(self) -> Any:
    """The target (loaded once), with ``candidates_by_label``; JAX's configuration re-asserted after
    whatever loading it did."""
    if self._target is None:
      from verification import targets

      self.state.watch()
      try:
        target = targets.resolve_target(self.spec)
      finally:
        self.state.restore_config()
        patched = self.state.patched(put_back=True)
        if patched:  # put back: the judge is the harness's, whatever the target rebound at import
          print(f"the target module rebound attributes of modules the checks use at import ({patched}); the "
                "harness put them back", file=sys.stderr)
      self._target = types.SimpleNamespace(target=target, candidates_by_label={c.label: c for c in target.candidates})
    return self._target

  def catalogue(self) -> None:
    """Loads the target and sends what the harness process needs of it, as plain data (JSON values):
    that process never imports the code it judges. A module that exits, crashes or hangs at import
    ends this worker (the harness reports a loading error); what it changes in JAX's configuration
    is set back here (:meth:`_load`)."""
    from verification import targets
    from verification.core.candidate import Unbuilt, judged_fields
    from verification.core.evaluate import describe

    try:
      target = self._load().target
      items = [{"label": c.label, "name": c.name, "params": getattr(c, "params_json", None) or dict(c.params),
                "notes": dict(getattr(c, "notes", None) or {}),
                "unbuilt": c.message if isinstance(c, Unbuilt) else None,
                "fields": None if isinstance(c, Unbuilt) else judged_fields(c)} for c in target.candidates]
      data = json.loads(json.dumps({"name": target.name, "library": target.library, "is_reference":
                                    target.is_reference, "items": items}, default=repr))
    except targets.TargetError as exc:
      data = {"error": str(exc)}
    except Exception as exc:
      data = {"error": f"--target {self.spec}: loading it raised {describe(exc)}"}
    self.send("catalogue", data)

  def candidate(self, label: str, payload: bytes | None) -> Any:
    """The candidate to check: unpickled, or looked up by label in the target (loaded once)."""
    if payload is not None:
      import cloudpickle

      try:
        return cloudpickle.loads(payload)
      except Exception as exc:
        return f"the candidate could not be unpickled in the worker: {type(exc).__name__}: {exc}"
    found = self._load().candidates_by_label.get(label)
    if found is None:
      return (f"the worker's copy of the target has no candidate labelled {label!r} (the target is not "
              "deterministic: it builds different candidates in different processes)")
    from verification.core.candidate import Unbuilt

    if isinstance(found, Unbuilt):  # unbuilt here, built by the worker that listed the target
      return f"the worker could not build the candidate: {found.message}"
    return found

  def run(self, label: str, payload: bytes | None, opts: dict[str, Any]) -> None:
    import numpy as np

    from verification.checks import context, run_check
    from verification.core.candidate import judged_fields, self_judged
    from verification.core.tape import Tape
    from verification.engine import protocol
    from verification.engine.platform import platform_gaps
    from verification.results import Status

    self.send("start", label, "loading")
    candidate = self.candidate(label, payload)
    if isinstance(candidate, str):
      self.send("refused", label, candidate)
      return
    if candidate.label != label:
      self.send("refused", label, f"asked for {label!r}, the worker has {candidate.label!r}")
      return
    self.state.restore_config()  # what loading the target changed is set back
    dirty = self.state.reset()
    if getattr(candidate, "kind", "spike") == "layer":
      self.run_layer(candidate, opts, dirty)
      return
    # The checks run here to compute the candidate's outputs; the judge process decides the verdicts from
    # the record, except for a candidate whose own declaration is code (judged here: README, Isolation).
    judged_here = self_judged(judged_fields(candidate))
    dtypes, gap = platform_gaps(list(opts["dtypes"]), self.env["dtypes"], self.env["platform"])
    if gap is not None:  # the judge says why (it sees the same platform)
      for check in opts["checks"]:
        if judged_here:
          self.send("result", label, protocol.failed_result(candidate, check, gap, Status.SKIP).to_json())
        else:
          self.send("record", label, check, [], None, 0.0)
      self.send("done", label, "; ".join(dirty) or None)
      return
    opts = {**opts, "dtypes": tuple(dtypes)}  # the run's provenance names a dtype the platform lacks
    threads = set(threading.enumerate())
    self.state.watch()
    self.send("start", label, "sanity")
    problem = sanity(candidate)
    changed = self.spoiled(label)
    if changed:
      dirty += changed
      problem = problem or "; ".join(changed)
    if problem is not None:
      for check in opts["checks"]:
        self.send("result", label, protocol.failed_result(candidate, check, f"sanity: {problem}").to_json())
      self.send("done", label, "; ".join(dirty) or None)
      return
    tape = None if judged_here else Tape("record")
    ctx = context(candidate, opts, tape)
    for check in opts["checks"]:
      self.send("start", label, check)
      dirty += self.state.reset()
      result = run_check(candidate, ctx, check)
      changed = self.spoiled(label)
      dirty += changed
      if tape is not None:
        self.send("record", label, check, tape.take(), "; ".join(changed) or None, result.seconds)
        continue
      if changed and not result.failing:
        result = result.with_status(Status.FAIL, f"{'; '.join(changed)} (was: {result.message})")
      self.send("result", label, judged_in_worker(result).to_json())
    if not isinstance(ctx, str):
      ctx.evaluator.tape = None  # the curves are for the plots: not recorded
      self.send("start", label, "curves")
      from verification.core import curves

      try:
        with np.errstate(all="ignore"):
          curve = curves.sample(ctx)
        self.send("curve", label, curve.to_json())
      except BaseException:
        pass  # a curve is for the plots; its absence never fails the run
      dirty += self.spoiled(label)
    left = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
    if left:
      dirty.append(f"left {len(left)} thread(s) running: {', '.join(t.name for t in left[:4])}")
    self.send("done", label, "; ".join(dirty) or None)


  def run_layer(self, candidate: Any, opts: dict[str, Any], dirty: list[str]) -> None:
    """A layer candidate's checks (:mod:`verification.checks.layers`): recorded here, judged in the judge
    (or judged here where its surrogate is not a registered class), as for a spike function."""
    from verification.checks.layers import layer_context, run_layer_check
    from verification.core.candidate import judged_fields, self_judged
    from verification.core.tape import Tape
    from verification.results import Status

    label = candidate.label
    judged_here = self_judged(judged_fields(candidate))
    threads = set(threading.enumerate())
    self.state.watch()
    tape = None if judged_here else Tape("record")
    ctx = layer_context(candidate, tape)
    for check in opts["checks"]:
      self.send("start", label, check)
      dirty += self.state.reset()
      result = run_layer_check(ctx, check)
      changed = self.spoiled(label)
      dirty += changed
      if tape is not None:
        self.send("record", label, check, tape.take(), "; ".join(changed) or None, result.seconds)
        continue
      if changed and not result.failing:
        result = result.with_status(Status.FAIL, f"{'; '.join(changed)} (was: {result.message})")
      self.send("result", label, judged_in_worker(result).to_json())
    left = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
    if left:
      dirty.append(f"left {len(left)} thread(s) running: {', '.join(t.name for t in left[:4])}")
    self.send("done", label, "; ".join(dirty) or None)


#: Why a candidate's verdicts are made in its worker (README, Bring your own surrogate).
JUDGED_HERE = ("in the worker process, next to the candidate: it declares its own surrogate (an unregistered "
               "Surrogate subclass), whose code the judge process would have to run to compute the reference")


def judged_in_worker(result: Any) -> Any:
  """``result`` saying where it was judged (``detail.judged_in``)."""
  import dataclasses

  d = result.diagnosis
  return dataclasses.replace(result, diagnosis=dataclasses.replace(d, extra={**d.extra, "judged_in": JUDGED_HERE}))


def main(argv: list[str]) -> int:
  import socket

  from verification.engine.platform import environment
  from verification.engine.protocol import Channel

  _die_with_parent()
  _become_subreaper()
  conn = Channel(socket.socket(fileno=int(argv[0])))
  init = conn.receive()
  conn.token = init.get("token", "")
  _set_memory_limit(init.get("memory_limit"))
  sys.path[:] = list(dict.fromkeys([*init.get("sys_path", []), *sys.path]))
  faulthandler.enable()  # a crash prints the Python stack into the candidate's captured output
  _configure()
  worker = Worker(conn, init.get("spec"), State())
  wanted = init.get("backend")
  try:
    worker.env = environment()
  except Exception as exc:  # JAX_PLATFORMS names a platform that cannot start here
    if not wanted:
      raise
    worker.send("ready", {"device_error": f"--device {wanted}: JAX could not start it: {type(exc).__name__}: "
                                          + str(exc).strip().splitlines()[0]})
    return 4
  if wanted and worker.env["platform"] != wanted:  # --device gpu where JAX falls back to the CPU
    worker.env["device_error"] = (f"--device {wanted}: JAX found no {wanted.upper()} (its default backend is "
                                  f"{worker.env['platform']}, devices {', '.join(worker.env['devices'])})")
    worker.send("ready", worker.env)
    return 4
  worker.send("ready", worker.env)
  while True:
    try:
      message = conn.receive()
    except (EOFError, OSError):
      return 0
    if message[0] == "stop":
      end_descendants()
      return 0
    if message[0] == "list":
      worker.catalogue()
      continue
    _, label, payload, opts = message
    try:
      worker.run(label, payload, opts)
    except BaseException:  # the harness's own failure; the parent reports it for this candidate
      worker.send("refused", label, "internal error of the worker:\n" + traceback.format_exc()[-4000:])


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
