"""The worker process: checks candidates one at a time for :mod:`verification.engine.runner`.

Started as ``python -m verification.engine.worker FD``, or forked from a template process that runs its
``main([FD])`` the same way (:mod:`verification.engine.template`); FD is one end of a socket pair carrying
framed messages (:class:`verification.engine.protocol.Channel`). Its stdout and stderr are a pipe read by
the parent, which attributes what a candidate prints to that candidate. The worker:

* caps its address space (``RLIMIT_AS``) before its first candidate (before importing JAX, where it
  starts as a fresh interpreter) where it runs on the CPU alone (the parent says so), so a candidate
  that allocates without bound gets a ``MemoryError`` instead of taking the machine; everywhere the
  parent also watches its resident memory;
* sets JAX's configuration itself (64-bit on) and re-asserts it before every candidate; a candidate
  that changes any JAX configuration value fails the check during which it did so, and the worker
  asks to be replaced (``dirty``) so that nothing it changed reaches the next candidate; so does a
  candidate that leaves Python threads running or the floating-point control state changed (a note,
  not a failure: :class:`State`);
* takes the state every candidate starts from once the target is loaded: what loading set (the
  environment, signal handlers, ...) is the module's own and stays, but for what changes the judging
  (:meth:`State.loaded`); Python's helper processes and those loading started are no candidate's;
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
import operator
import os
import resource
import sys
import tempfile
import threading
import traceback
import types
from itertools import repeat
from typing import Any

from verification.engine.proctree import descendants
from verification.engine.profile import Clock

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


def end_descendants(owned: Any = None) -> list[str]:
  """Ends every process this worker's candidates started (and reaps those that ended); returns the ones
  that were still running, as ``pid command``. ``owned(pid)`` says which processes belong to no candidate
  (Python's own helpers, those the target started while loading): those are left running (their own
  children are not: a process a candidate had the forkserver start is the candidate's)."""
  import psutil

  pids = [pid for pid in descendants(os.getpid()) if owned is None or not owned(pid)]
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


#: JAX options a target module may set at import and keep: they change what JAX logs, prints or dumps and
#: how it draws random numbers, not the values the checks compute nor whether the harness's code runs.
#: Every other option is the harness's: what loading changes in it is set back (eager execution, NaN
#: checks, x64, ...: ``tests/hostile/configures_at_import.py``).
MODULE_CONFIG = frozenset({
    "jax_log_compiles", "jax_logging_level", "jax_debug_log_modules", "jax_explain_cache_misses",
    "jax_traceback_filtering", "jax_traceback_in_locations_limit", "jax_include_full_tracebacks_in_locations",
    "jax_tracer_error_num_traceback_frames", "jax_pprint_use_color", "jax_source_url_schema",
    "jax_dump_ir_to", "jax_dump_ir_modes", "jax_include_debug_info_in_dumps", "jax_log_checkpoint_residuals",
    "jax_captured_constants_report_frames", "jax_captured_constants_warn_bytes", "jax_default_prng_impl",
    "jax_threefry_partitionable", "jax_random_seed_offset"})


def _double(bits: int) -> float:
  """The float64 with these bits (made without arithmetic, which the state probed below would change)."""
  import struct

  return struct.unpack("<d", bits.to_bytes(8, "little"))[0]


def float_control() -> tuple[str, ...]:
  """What the calling thread's floating-point control state does to arithmetic, found by computing (so on any
  CPU): ``flush-to-zero`` (a subnormal result is 0: MXCSR.FTZ on x86, FPCR.FZ on Arm), ``denormals-are-zero``
  (a subnormal operand is 0: MXCSR.DAZ) and a rounding mode other than to nearest. Empty: IEEE's default."""
  found = []
  normal, small, tiny = _double(1 << 52), _double(0x3FC << 52), _double(16)  # 2**-1022, 2**-3, 2**-1070
  if normal * small == 0.0:  # 2**-1025 is subnormal: flushed to zero
    found.append("flush-to-zero")
  if not tiny > 0.0:  # a subnormal compared as 0
    found.append("denormals-are-zero")
  one, step = 1.0, _double(0x3C8 << 52)  # 2**-55, a quarter of the spacing below 1
  if one + step > one:
    found.append("rounding upward")
  elif -one - step < -one:
    found.append("rounding downward")
  elif one - step < one:
    found.append("rounding toward zero")
  return tuple(found)


class FloatEnvironment:
  """The thread's whole floating-point environment (control modes and flags), saved and restored through
  C's ``fegetenv``/``fesetenv`` where the process has them (POSIX); elsewhere :meth:`save` gives None and
  a changed state is only reported (the worker is replaced all the same)."""

  SIZE = 512  # bytes, more than any platform's fenv_t (x86-64 glibc: 32)

  def __init__(self) -> None:
    self.libc: Any = None
    with contextlib.suppress(Exception):
      import ctypes

      libc = ctypes.CDLL(None)
      libc.fegetenv, libc.fesetenv  # noqa: B018  (both or neither)
      self.libc = libc

  def save(self) -> Any:
    if self.libc is None:
      return None
    import ctypes

    env = ctypes.create_string_buffer(self.SIZE)
    return env if self.libc.fegetenv(env) == 0 else None

  def restore(self, env: Any) -> bool:
    return env is not None and self.libc is not None and self.libc.fesetenv(env) == 0


def _started(pid: int) -> float | None:
  """When process ``pid`` started (with its pid, an identity that survives pid reuse), or None."""
  import psutil

  try:
    return psutil.Process(pid).create_time()
  except psutil.Error:
    return None


def interpreter_helpers() -> set[int]:
  """Python's own helper processes, which live until the interpreter exits whoever started them:
  multiprocessing's resource tracker (started by ``shared_memory``, semaphores, ...) and forkserver.
  Only modules already imported are looked at."""
  found = set()
  tracker = sys.modules.get("multiprocessing.resource_tracker")
  forkserver = sys.modules.get("multiprocessing.forkserver")
  for owner, attr in ((getattr(tracker, "_resource_tracker", None), "_pid"),
                      (getattr(forkserver, "_forkserver", None), "_forkserver_pid")):
    pid = getattr(owner, attr, None)
    if isinstance(pid, int):
      found.add(pid)
  return found


class State:
  """The process state a candidate can leave behind. Its baseline is taken when the worker starts and again
  once the target is loaded (:meth:`loaded`): what loading sets is the module's own and stays. It holds
  signal handlers, timers (``alarm``, ``setitimer``, faulthandler's), the working directory, ``os.environ``,
  the warnings filters, NumPy's error handling, the floating-point control state, JAX's configuration
  (the harness's, but for :data:`MODULE_CONFIG`), and the processes loading started; and the attributes of
  the watched modules (:data:`WATCHED`, ``verification.*``), snapshot before each candidate. :meth:`reset`
  puts it back before each candidate and each check; :meth:`patched` says what a candidate rebound (it
  cannot be undone everywhere: the worker is replaced)."""

  def __init__(self) -> None:
    self.config = _config_snapshot()
    self.fenv = FloatEnvironment()
    self.modules: list[tuple[str, Any, tuple[str, ...], tuple[Any, ...]]] = []
    self.baseline()

  def baseline(self) -> None:
    """Takes what is now as the state every candidate starts from."""
    import signal
    import warnings

    self.cwd = os.getcwd()
    self.environ = dict(os.environ)
    self.warnings = list(warnings.filters)
    self.numpy_errors = _numpy_errors()
    self.handlers = {}
    for sig in signal.valid_signals():
      with contextlib.suppress(OSError, ValueError, TypeError):
        handler = signal.getsignal(sig)
        if handler is not None:
          self.handlers[sig] = handler
    self.float_control = float_control()
    self.float_env = self.fenv.save()
    self.processes = {pid: _started(pid) for pid in descendants(os.getpid())}

  def loaded(self) -> str | None:
    """After the target is loaded: JAX's configuration is the harness's again but for the options in
    :data:`MODULE_CONFIG`, the floating-point control state IEEE's default where loading changed it (the
    checks compute their inputs bit-exactly, as the judge does); everything else loading set is taken into
    the baseline. Returns what was set back, or None."""
    now = _config_snapshot()
    self.config = {**now, **{k: v for k, v in self.config.items() if k not in MODULE_CONFIG}}
    set_back = [k for k, v in self.config.items() if now.get(k) != v]
    _restore(self.config, now)
    control = float_control()
    if control and self.fenv.restore(self.float_env):
      set_back.append(f"the floating-point control state ({', '.join(control)})")
    self.baseline()
    return ", ".join(set_back) or None

  def owned(self, pid: int) -> bool:
    """Whether process ``pid`` belongs to no candidate: Python's own helpers and those loading started."""
    return pid in interpreter_helpers() or (pid in self.processes and _started(pid) == self.processes[pid])

  def reset(self) -> list[str]:
    """Cancels timers, restores signal handlers, the working directory, the environment, the warnings filters
    and NumPy's error handling; returns what could not be restored (the worker is then replaced)."""
    import signal
    import warnings

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
    if warnings.filters != self.warnings:
      warnings.filters[:] = self.warnings
      getattr(warnings, "_filters_mutated", lambda: None)()  # (as warnings.simplefilter does: caches dropped)
    if self.numpy_errors is not None and _numpy_errors() != self.numpy_errors:
      import numpy as np

      np.seterr(**self.numpy_errors)
    return problems

  def float_changes(self) -> str | None:
    """What the candidate changed in the thread's floating-point control state, put back; or None."""
    now = float_control()
    if now == self.float_control:
      return None
    back = self.fenv.restore(self.float_env) and float_control() == self.float_control
    return (f"it left the thread's floating-point control state changed ({', '.join(now) or 'IEEE default'} "
            f"instead of {', '.join(self.float_control) or 'the default'}: a native library built with "
            f"-ffast-math, or fesetround), which changes what the next candidate computes; "
            + ("put back after each check, and " if back else "") + "the worker was replaced after it")

  def restore_config(self) -> None:
    """JAX's configuration as the baseline has it."""
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
    from verification.checks import import_all

    import_all()

    self.modules = []
    for name, module in list(sys.modules.items()):
      if module is None or not (name in WATCHED or name == "verification" or name.startswith("verification.")):
        continue
      names = vars(module)
      self.modules.append((name, module, *_snapshot(names)))
      if name.startswith("verification"):
        for attr, value in list(names.items()):
          if isinstance(value, type) and value.__module__ == name:
            self.modules.append((f"{name}.{attr}", value, *_snapshot(vars(value))))

  def patched(self, put_back: bool = False) -> str | None:
    """What the candidate rebound or deleted in the watched modules since :meth:`watch` (put back, as
    far as a module's attributes go), or None; with ``put_back`` only the names of what was put back."""
    found = []
    for name, owner, attrs, values in self.modules:
      live = vars(owner)
      if all(map(operator.is_, map(live.get, attrs, repeat(_MISSING)), values)):  # the common case, at C speed
        continue
      for attr, value in zip(attrs, values, strict=True):
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


def _numpy_errors() -> dict[str, str] | None:
  numpy = sys.modules.get("numpy")
  return None if numpy is None else dict(numpy.geterr())


_MISSING = object()


def _snapshot(names: Any) -> tuple[tuple[str, ...], tuple[Any, ...]]:
  """A namespace's names and the objects bound to them, in two tuples (compared by identity: :meth:`State.patched`)."""
  d = dict(names)
  return tuple(d), tuple(d.values())


def _is_array(v: Any) -> bool:
  return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, list | tuple | dict)


def _structure(what: str, out: Any) -> str | None:
  """What is wrong with ``out``, the output of ``what`` for a float32 input of shape (4,) (:func:`sanity`), or None."""
  if not _is_array(out):
    return (f"{what} returned a {type(out).__name__} for a float32 array of shape (4,); expected an array of "
            "the input's shape (found before compiling anything)")
  if tuple(out.shape) != (4,):
    return f"{what} returned shape {tuple(out.shape)} for an input of shape (4,)"
  if not any(kind in str(out.dtype) for kind in ("float", "int", "bool", "complex")):  # numpy, jax or torch
    return f"{what} returned dtype {out.dtype} for a float32 input: not a numeric array"
  return None


def sanity(candidate: Any) -> str | None:
  """The structure of each callable's output on a tiny input (4 float32 values), before anything is
  compiled: an array of the input's shape with a numeric dtype. Returns what is wrong, or None.
  Exceptions are left to the checks (they say where and on what input). A JAX callable whose traced
  output (``jax.eval_shape``: nothing runs) has that structure is not called; any other is called eagerly,
  and its output says what is wrong."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  x = np.array([-1.0, -0.0, 0.0, 0.5], np.float32)
  fields = [(name, f) for name in ("surrogate_fun", "surrogate_grad") if (f := getattr(candidate, name)) is not None]
  calls: list[tuple[str, Any, Any]] = []
  if candidate.backend == "jax":
    xj = jnp.asarray(x)

    def forward_and_vjp(v):
      out, pull = jax.vjp(candidate.fn, v)
      return out, pull(jnp.ones_like(out))[0]

    def traced_at_once(v):  # one trace for the common case: the VJP's primal output is the spike function's
      return [*forward_and_vjp(v), *(f(v) for _, f in fields)]

    try:
      if all(_structure("", out) is None for out in jax.eval_shape(traced_at_once, xj)):
        return None
    except BaseException:  # each on its own, below: what is wrong is told of the callable that does it
      pass
    calls += [("the spike function", candidate.fn, xj), ("its VJP", lambda v: forward_and_vjp(v)[1], xj)]
    calls += [(name, f, xj) for name, f in fields]
  else:
    calls += [("forward", candidate.forward, x), ("vjp", lambda v: candidate.vjp(v, np.ones_like(v)), x)]
    calls += [(name, f, x) for name, f in fields]
  for what, f, arg in calls:
    if candidate.backend == "jax":
      try:
        if _structure(what, jax.eval_shape(f, arg)) is None:
          continue
      except BaseException:  # eagerly, below
        pass
    try:
      out = f(arg)
    except BaseException:  # what the candidate raises (KeyboardInterrupt too) is left to the checks
      continue
    problem = _structure(what, out)
    if problem is not None:
      return problem
  return None


class Worker:
  def __init__(self, conn, spec: str | None, state: State | None = None, clock: Clock | None = None):
    self.conn = conn
    self.spec = spec
    self.state = state or State()
    self.clock = clock or Clock()
    self._target: dict[str, Any] | None = None
    self.env: dict[str, Any] = {"dtypes": ["float16", "bfloat16", "float32", "float64"], "platform": "cpu"}

  def send(self, *message: Any) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    self.conn.put(*message)

  def send_record(self, label: str, check: str, entries: list[Any], spoiled: str | None, seconds: float) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    self.conn.put_record(label, check, entries, spoiled, seconds)

  def done(self, label: str, dirty: list[str]) -> None:
    """The candidate is finished: why the worker must be replaced (or None), and where its time went so far."""
    self.send("done", label, "; ".join(dirty) or None, self.clock.report())

  def spoiled(self, label: str) -> list[str]:
    """What the candidate changed that decides verdicts (JAX's configuration, the watched modules' attributes)
    or left running (processes, each ended), each put back as far as it can be; the check during which it
    happened fails and the worker is replaced."""
    left = end_descendants(self.state.owned)
    ended = (f"{label} left {len(left)} process(es) running, ended by the harness: {'; '.join(left[:4])}"
             if left else None)
    return [m for m in (self.state.config_changes(), self.state.patched(), ended) if m]

  def float_state(self, notes: list[str]) -> None:
    """A change of the floating-point control state, put back and added to ``notes`` (once): not a failure
    (the candidate's own outputs are what is judged), but the worker is replaced after the candidate."""
    change = self.state.float_changes()
    if change and change not in notes:
      notes.append(change)

  def _load(self) -> Any:
    """The target (loaded once), with ``candidates_by_label``; what loading set is the module's own and
    the baseline of every candidate (:meth:`State.loaded`)."""
    if self._target is None:
      from verification import targets

      self.state.watch()
      try:
        with self.clock.span("candidate code"):  # the target's modules and libraries, imported
          target = targets.resolve_target(self.spec)
      finally:
        self.loaded()
      self._target = types.SimpleNamespace(target=target, candidates_by_label={c.label: c for c in target.candidates})
    return self._target

  def loaded(self) -> None:
    """After loading: what the module rebound in the watched modules and set in JAX's configuration or the
    floating-point control state that the judging depends on is put back (the names go to the captured
    output); everything else it set stays, as the baseline of every candidate."""
    patched = self.state.patched(put_back=True)
    set_back = self.state.loaded()
    if patched:  # put back: the judge is the harness's, whatever the target rebound at import
      print(f"the target module rebound attributes of modules the checks use at import ({patched}); the "
            "harness put them back", file=sys.stderr)
    if set_back:
      print(f"loading the target changed settings the checks depend on ({set_back}); the harness set them back",
            file=sys.stderr)

  def catalogue(self, only: list[str]) -> None:
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
      spelled = targets.spelled({c.name for c in target.candidates} | set(only)) if only else None
      data = json.loads(json.dumps({"name": target.name, "library": target.library, "is_reference":
                                    target.is_reference, "items": items, "spelled": spelled}, default=repr))
    except targets.TargetError as exc:
      data = {"error": str(exc)}
    except Exception as exc:
      data = {"error": f"--target {self.spec}: loading it raised {describe(exc)}"}
    self.send("catalogue", data)

  def candidate(self, label: str, payload: bytes | None) -> Any:
    """The candidate to check: unpickled, or looked up by label in the target (loaded once)."""
    if payload is not None:
      import cloudpickle

      self.state.watch()
      try:
        return cloudpickle.loads(payload)  # (imports the candidate's module where it is importable)
      except Exception as exc:
        return f"the candidate could not be unpickled in the worker: {type(exc).__name__}: {exc}"
      finally:
        self.loaded()
    by_label = self._load().candidates_by_label
    found = by_label.get(label)
    if found is None:
      from verification.engine.protocol import unstable_labels

      return ("the worker's copy of the target has no candidate labelled so: the target is not deterministic (it "
              "builds different candidates in different processes): "
              + unstable_labels(label, list(by_label), "this worker"))
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
    dirty = self.state.reset()  # what the last candidate left; then loading, whose settings stay (State.loaded)
    candidate = self.candidate(label, payload)
    if isinstance(candidate, str):
      self.send("refused", label, candidate)
      return
    if candidate.label != label:
      self.send("refused", label, f"asked for {label!r}, the worker has {candidate.label!r}")
      return
    self.state.restore_config()
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
          self.send_record(label, check, [], None, 0.0)
      self.done(label, dirty)
      return
    # (the run's provenance names a dtype the platform lacks); the reference target's candidates are the project's
    # own surrogates and this worker runs nothing else: their compiled programs are kept across runs
    # (verification.core.evaluate)
    opts = {**opts, "dtypes": tuple(dtypes), "keep_programs": bool(opts.get("is_reference"))}
    threads = set(threading.enumerate())
    self.state.watch()
    self.send("start", label, "sanity")
    with self.clock.span("candidate code"):
      problem = sanity(candidate)
    changed = self.spoiled(label)
    self.float_state(dirty)
    dirty += self.state.reset()  # (a timer its first call armed must not go off while the checks are prepared)
    if changed:
      dirty += changed
      problem = problem or "; ".join(changed)
    if problem is not None:
      for check in opts["checks"]:
        self.send("result", label, protocol.failed_result(candidate, check, f"sanity: {problem}").to_json())
      self.done(label, dirty)
      return
    tape = None if judged_here else Tape("record")
    if tape is not None:
      tape.timer = lambda: self.clock.span("candidate code")
    ctx = context(candidate, opts, tape)
    self.record_checks(label, opts["checks"], tape, lambda check: run_check(candidate, ctx, check), dirty)
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
      self.float_state(dirty)
    left = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
    if left:
      dirty.append(f"left {len(left)} thread(s) running: {', '.join(t.name for t in left[:4])}")
    self.done(label, dirty)


  def record_checks(self, label: str, checks: Any, tape: Any, check_one: Any, dirty: list[str]) -> None:
    """Each check run next to the candidate: its record sent to the judge, or (judged here) its result."""
    from verification.results import Status

    for check in checks:
      self.send("start", label, check)
      dirty += self.state.reset()
      result = check_one(check)
      changed = self.spoiled(label)
      dirty += changed
      self.float_state(dirty)
      if tape is not None:
        self.send_record(label, check, tape.take(), "; ".join(changed) or None, result.seconds)
        continue
      if changed and not result.failing:
        result = result.with_status(Status.FAIL, f"{'; '.join(changed)} (was: {result.message})")
      self.send("result", label, judged_in_worker(result).to_json())

  def run_layer(self, candidate: Any, opts: dict[str, Any], dirty: list[str]) -> None:
    """A layer candidate's checks (:mod:`verification.checks.layers`): recorded here, judged in the judge
    (or judged here where its surrogate is not a registered class), as for a spike function."""
    from verification.checks.layers import layer_context, run_layer_check
    from verification.core.candidate import judged_fields, self_judged
    from verification.core.tape import Tape

    label = candidate.label
    judged_here = self_judged(judged_fields(candidate))
    threads = set(threading.enumerate())
    self.state.watch()
    tape = None if judged_here else Tape("record")
    if tape is not None:
      tape.timer = lambda: self.clock.span("candidate code")
    ctx = layer_context(candidate, tape)
    self.record_checks(label, opts["checks"], tape, lambda check: run_layer_check(ctx, check), dirty)
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
  clock = Clock()
  with clock.span("start"):
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
  with clock.span("jax import"):
    _configure()
  clock.listen_to_jax()
  worker = Worker(conn, init.get("spec"), State(), clock)
  wanted = init.get("backend")
  try:
    with clock.span("checks"):
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
      with clock.span("waiting"):
        message = conn.receive()
    except (EOFError, OSError):
      return 0
    if message[0] == "stop":  # nothing is left to save (the compilation cache is written as it compiles)
      end_descendants()
      sys.stdout.flush()
      sys.stderr.flush()
      os._exit(0)  # without the interpreter's teardown of JAX and the libraries loaded (a second or more)
    with clock.span("checks"):
      if message[0] == "list":
        worker.catalogue([str(n) for n in message[1]])
        continue
      _, label, payload, opts = message
      try:
        worker.run(label, payload, opts)
      except BaseException:  # the harness's own failure; the parent reports it for this candidate
        worker.send("refused", label, "internal error of the worker:\n" + traceback.format_exc()[-4000:])


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
