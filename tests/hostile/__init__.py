"""Hostile candidates: each misbehaves in one way a harness meets in the wild (see tests/test_hostile.py).

Every target here mixes hostile candidates with correct ones, so a test can see that the correct
ones are still checked, and pass, in the same run.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from verification.core.candidate import Candidate, candidate_factory

ALPHA = 4.0


def _g(x):
  s = jax.nn.sigmoid(ALPHA * x)
  return ALPHA * s * (1 - s)


def spike(forward_effect=None):
  """Sigmoid(alpha=4) written with custom_jvp; ``forward_effect(x)`` runs (in Python) on every call."""

  @jax.custom_jvp
  def fn(x):
    if forward_effect is not None:
      out = forward_effect(x)
      if out is not None:
        return out
    return jnp.where(x >= 0, 1.0, 0.0).astype(x.dtype)

  @fn.defjvp
  def _(primals, tangents):
    (x,), (t,) = primals, tangents
    return fn(x), (_g(x) * t).astype(x.dtype)

  return fn


def sigmoid(label, effect=None, **fields):
  return Candidate(name="Sigmoid", params={"alpha": ALPHA}, fn=spike(effect), label=label,
                   surrogate_fun=lambda x: jax.nn.sigmoid(ALPHA * x), **fields)


def correct(label="correct"):
  return sigmoid(label)


# ---- the worker process dies ----------------------------------------------------------------
def _exit(x):
  os._exit(3)


def _segfault(x):
  os.kill(os.getpid(), signal.SIGSEGV)


def _hang(x):
  """A compiled loop that never ends (inf > -1 stays true): it blocks XLA's runtime, not a Python thread."""
  return lax.while_loop(lambda v: jnp.all(v > -1.0), lambda v: v + 1.0, jnp.abs(x))


# ---- wrong structure, memory ----------------------------------------------------------------
def _as_list(x):
  return [x[i] for i in range(x.shape[0])]  # 65,536 outputs for the evaluator's block


def _allocate_30gb(x):
  np.ones(30 << 30, np.uint8)


# ---- global state, output ---------------------------------------------------------------------
def _flip_x64(x):
  jax.config.update("jax_enable_x64", False)


def _chatter(x):
  sys.stdout.write("x" * (10 << 20))  # 10 MB per call


def _thread(x):
  threading.Thread(target=threading.Event().wait, daemon=True, name="leftover").start()


@candidate_factory
def _raising_factory():
  raise RuntimeError("the factory is broken")


DIES = [sigmoid("exits", _exit), sigmoid("segfaults", _segfault), correct("correct after deaths")]
HANGS = [sigmoid("hangs", _hang), correct("correct after the hang")]
MONSTERS = [sigmoid("returns a list", _as_list), sigmoid("allocates 30 GB", _allocate_30gb),
            correct("correct after the monsters")]
CONTAMINATES = [sigmoid("flips x64", _flip_x64), sigmoid("leaves a thread", _thread),
                correct("correct after contamination")]
CHATTY = [sigmoid("prints 10 MB per call", _chatter), correct("correct next to chatter")]
UNBUILDABLE = [
    _raising_factory,
    correct("correct among the unbuildable"),
]

#: Candidates whose fields are of the wrong type: each target is a usage error naming the field.
MALFORMED_SCALE = [{"name": "Sigmoid", "params": {"alpha": ALPHA}, "fn": spike(), "scale": "two", "label": "scale two"},
                   correct("correct beside the malformed")]
MALFORMED_PARAMS = [{"name": "Sigmoid", "params": 4.0, "fn": spike(), "label": "params 4.0"}]


class _Loose:
  """A candidate as a plain object, hashable by identity (so it can live in a set)."""

  def __init__(self, label, fn, alpha=ALPHA):
    self.name, self.params, self.fn, self.label = "Sigmoid", {"alpha": alpha}, fn, label


@jax.custom_jvp
def _half_gradient(x):
  return jnp.where(x >= 0, 1.0, 0.0).astype(x.dtype)


_half_gradient.defjvp(lambda p, t: (_half_gradient(p[0]), (0.5 * _g(p[0]) * t[0]).astype(p[0].dtype)))

#: Order differs between processes (identity hashes): candidates must be matched by label. One label
#: differs between processes (it has the process id in it): the worker cannot find it and refuses.
SET_ORDERED = {_Loose("set: correct a", spike()), _Loose("set: half gradient", _half_gradient),
               _Loose("set: correct b", spike()), _Loose("set: correct c", spike()),
               _Loose(f"set: made in process {os.getpid()}", spike())}
#: The first candidate finishes, then the run hangs: a killed run must leave the first one's JSON.
INCREMENTAL = [correct("first"), correct("second"), sigmoid("hangs", _hang)]
EMPTY: list = []
DUPLICATE_LABELS = [correct("same"), correct("same"), correct("other")]


# ---- state left in the worker process (signals, timers, directory, environment, patched modules) -----
def _once(effect):
  """``effect`` on the first call only."""
  done = []

  def once(x):
    if not done:
      done.append(True)
      effect()

  return once


def _delete_cwd():
  import tempfile

  where = tempfile.mkdtemp()
  os.chdir(where)
  os.rmdir(where)


def _innocent(x):
  """A correct candidate that takes 2 s on its first call and reads its directory and environment."""
  import time

  os.getcwd()  # FileNotFoundError in a deleted directory
  if "HOSTILE_VARIABLE" in os.environ:
    raise RuntimeError("the environment holds another candidate's variable")
  if not getattr(_innocent, "slept", False):
    _innocent.slept = True
    time.sleep(2.0)


#: Each hostile candidate here is a correct surrogate that leaves something behind; the last one is
#: correct too and is checked while the alarm and the faulthandler timer would go off (after 1 s).
LEFTOVERS = [
    sigmoid("arms an alarm", _once(lambda: signal.alarm(1))),
    sigmoid("arms a faulthandler timer", _once(lambda: __import__("faulthandler").dump_traceback_later(1, exit=True))),
    sigmoid("deletes its directory", _once(_delete_cwd)),
    sigmoid("sets a variable", _once(lambda: os.environ.__setitem__("HOSTILE_VARIABLE", "1"))),
    sigmoid("innocent", _innocent),
]


def _patch_judge():
  """Makes every comparison of the checks pass (their helper, and numpy's allclose)."""
  from verification.checks import _context

  worst = _context.worst
  _context.worst = lambda *args, **kwargs: {**worst(*args, **kwargs), "failing_points": 0}
  _context.Comparisons.compare = lambda self, *args, **kwargs: None
  np.allclose = lambda *args, **kwargs: True


#: A correct candidate that patches the judge during its call, then a clean wrong one (half the gradient).
PATCHES = [sigmoid("patches the judge", _once(_patch_judge)),
           Candidate(name="Sigmoid", params={"alpha": ALPHA}, fn=_half_gradient, label="half gradient after a patch",
                     surrogate_fun=lambda x: jax.nn.sigmoid(ALPHA * x))]


def _rewrite_judge_code():
  """Makes every comparison pass without rebinding anything: the comparison helpers' code objects are
  replaced in place (the functions keep their identity, so no snapshot of the modules sees it)."""
  from verification.checks import _context

  def no_failure(*args, **kwargs):
    return {"failing_points": 0, "points": 0, "worst_input": None, "expected": None, "got": None,
            "tolerance": None, "error": None}

  def nothing(*args, **kwargs):
    return None

  _context.worst.__code__ = no_failure.__code__
  _context.Comparisons.compare.__code__ = nothing.__code__


@jax.custom_jvp
def _half_gradient_rewriting(x):
  return jnp.where(x >= 0, 1.0, 0.0).astype(x.dtype)


_half_gradient_rewriting.defjvp(lambda p, t: (_once(_rewrite_judge_code)(p[0]) or _half_gradient_rewriting(p[0]),
                                              (0.5 * _g(p[0]) * t[0]).astype(p[0].dtype)))


def _channel():
  """The worker's channel object, found among the process's objects (with the run's token in it)."""
  import gc

  from verification.engine.protocol import Channel

  return next(o for o in gc.get_objects() if isinstance(o, Channel))


def _forge_with_token(x):
  """A 'pass' for the check that is running, with the run's token read from the worker's own channel."""
  ch = _channel()
  ch.put("result", "forges a pass with the token", {"label": "forges a pass with the token", "surrogate": "Sigmoid",
                                                     "params": {"alpha": ALPHA}, "check": "forward",
                                                     "status": "pass", "detail": {"message": "forged"}})


#: A wrong candidate (half the gradient) that rewrites the judging code in its worker without rebinding
#: anything, a clean wrong one after it (same worker), a correct one; and a candidate that forges a
#: verdict with the run's token.
JUDGED_ELSEWHERE = [
    Candidate(name="Sigmoid", params={"alpha": ALPHA}, fn=_half_gradient_rewriting, label="rewrites the judge's code",
              surrogate_fun=lambda x: jax.nn.sigmoid(ALPHA * x)),
    Candidate(name="Sigmoid", params={"alpha": ALPHA}, fn=_half_gradient, label="half gradient after a rewrite",
              surrogate_fun=lambda x: jax.nn.sigmoid(ALPHA * x)),
    correct("correct after a rewrite"),
    sigmoid("forges a pass with the token", _forge_with_token),
    correct("correct after a forged pass"),
]


# ---- BaseException from candidate code ----------------------------------------------------------
class LibraryAbort(BaseException):
  """A library's own BaseException subclass."""


def _raises(kind):
  def effect(x):
    raise kind(f"{kind.__name__} raised by the candidate")

  return effect


BASE_EXCEPTIONS = [sigmoid("keyboard interrupt", _raises(KeyboardInterrupt)),
                   sigmoid("generator exit", _raises(GeneratorExit)),
                   sigmoid("library abort", _raises(LibraryAbort)), correct("correct after base exceptions")]


# ---- text that breaks reports -------------------------------------------------------------------
def _raise_text(text):
  def effect(x):
    raise RuntimeError(text)

  return effect


def _ansi_output(x):
  sys.stdout.write("\x1b[31mred\x1b[0m \x00\x07 output\n")
  raise RuntimeError("\x1b[2J\x1b[31mcleared screen\x1b[0m")


#: An undecodable path (a lone surrogate, as os.fsdecode makes of byte 0xff), ANSI escapes and NUL in a
#: message and in the captured output, a 4.2 MB message.
ODD_TEXT = [sigmoid("undecodable path", _raise_text("cannot open " + os.fsdecode(b"/tmp/\xff.npy"))),
            sigmoid("ansi \x1b[31mlabel\x1b[0m", _ansi_output),
            sigmoid("huge message", _raise_text("y" * 4_200_000)), correct("correct next to odd text")]


# ---- the worker's channel --------------------------------------------------------------------------
def _channel_fd():
  return int(sys.argv[-1])  # python -m verification.engine.worker FD


def _forge_header(x):
  """28 bytes: a header announcing a 1 GiB message, and 20 bytes of it."""
  import struct

  os.write(_channel_fd(), struct.pack("!Q", 1 << 30) + b"x" * 20)


def _half_a_message(x):
  """A header announcing 1,000 bytes, 10 of them, then a hang: the parent must not wait for the rest."""
  import struct
  import time

  os.write(_channel_fd(), struct.pack("!Q", 1000) + b"x" * 10)
  time.sleep(1000)


def _forge_verdicts(x):
  """A pass for every check and 'done', as the harness's messages look (without the run's token)."""
  import json
  import struct

  for message in (["result", "forges verdicts", {"label": "forges verdicts", "check": "forward", "status": "pass"}],
                  ["done", "forges verdicts", None]):
    body = json.dumps(["", *message]).encode()
    os.write(_channel_fd(), struct.pack("!Q", len(body)) + body)


CHANNEL = [sigmoid("forges a header", _forge_header), sigmoid("sends half a message", _half_a_message),
           sigmoid("forges verdicts", _forge_verdicts), correct("correct after forgeries")]


# ---- processes left behind -------------------------------------------------------------------------
#: In the command line of every helper process below, so a test can look for them after the run.
MARKER = "hostile-helper-7f3a"


def _helper(new_session):
  import subprocess

  def start():
    subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(1000)  # {MARKER}"],
                     start_new_session=new_session, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

  return start


def _fork_forever():
  """A forked child that never exits (it holds the worker's channel); its pid goes where the test said."""
  import time

  pid = os.fork()
  if pid == 0:
    time.sleep(1000)
    os._exit(0)
  with open(os.environ["HOSTILE_PID_FILE"], "w") as f:
    f.write(str(pid))


PROCESSES = [sigmoid("starts a helper", _once(_helper(False))),
             sigmoid("starts a helper in its own session", _once(_helper(True))),
             sigmoid("forks a child that never exits", _once(_fork_forever)), correct("correct after helpers")]


# ---- benign side effects of real libraries, and leftovers charged to their author ----------------------
def _numpy_sigmoid(label, effect=None):
  """Sigmoid(alpha=4) in NumPy (``backend="numpy"``); ``effect(x)`` runs before every call of its forward."""

  def g(x):
    s = 1.0 / (1.0 + np.exp(-ALPHA * x.astype(np.float64)))
    return ALPHA * s * (1.0 - s)

  def forward(x):
    if effect is not None:
      effect(x)
    return (x >= 0).astype(x.dtype)

  return Candidate(name="Sigmoid", params={"alpha": ALPHA}, backend="numpy", label=label, forward=forward,
                   vjp=lambda x, ct: (ct * g(x)).astype(x.dtype))


def _shared_memory():
  """A block of shared memory made and released: Python starts its resource tracker, which lives on."""
  from multiprocessing import shared_memory

  block = shared_memory.SharedMemory(create=True, size=1024)
  block.close()
  block.unlink()


def _forkserver_child():
  """A process started through multiprocessing's forkserver (which lives on) and joined."""
  import multiprocessing

  child = multiprocessing.get_context("forkserver").Process(target=os.getpid)
  child.start()
  child.join()


#: Correct candidates whose calls start Python's own helper processes (the resource tracker, the forkserver)
#: and one that leaves a process of its own: only that one is charged.
HELPERS = [sigmoid("makes shared memory", _once(_shared_memory)),
           sigmoid("uses the forkserver", _once(_forkserver_child)),
           sigmoid("leaves a helper", _once(_helper(False))), correct("correct after helpers")]


def _unset(name):
  return lambda: os.environ.pop(name, None)


#: A correct candidate that keeps a cache (``HOSTILE_CACHE_MB`` at its first call, kept in a module list) and
#: one that needs ``HOSTILE_NEED_MB`` of memory at its first call in a process, both correct: under a limit that
#: holds either but not both, the second passes when the first's worker is replaced, and the first is named for it.
_CACHE: list = []
_NEEDED: list = []


def _grow_cache(x):
  if not _CACHE:
    _CACHE.append(np.ones(int(os.environ.get("HOSTILE_CACHE_MB", "0")) << 20, np.uint8))


def _need_memory(x):
  if not _NEEDED:  # (once: a need at every call would only repeat it)
    np.ones(int(os.environ.get("HOSTILE_NEED_MB", "0")) << 20, np.uint8).sum()
    _NEEDED.append(True)


MEMORY = [sigmoid("keeps a cache", _grow_cache), sigmoid("needs memory", _need_memory)]


def _load_fast_math(x):
  """Loads the shared library at ``HOSTILE_FAST_MATH`` (built with -ffast-math: loading it sets flush-to-zero
  and denormals-are-zero for the thread) once, as a candidate's native backend would."""
  import ctypes

  if "HOSTILE_FAST_MATH" in os.environ and not _FAST_MATH:
    _FAST_MATH.append(ctypes.CDLL(os.environ["HOSTILE_FAST_MATH"]))


_FAST_MATH: list = []


def _round_upward():
  import ctypes
  import platform

  fe_upward = {"x86_64": 0x800, "amd64": 0x800, "i686": 0x800, "aarch64": 0x400000, "arm64": 0x400000}
  ctypes.CDLL(None).fesetround(fe_upward[platform.machine().lower()])


#: Correct candidates that change the thread's floating-point control state (a fast-math library, the
#: rounding mode) on their first call, each before a plain NumPy one that must pass.
FLOATING_POINT = [_numpy_sigmoid("loads a fast-math library", _load_fast_math),
                  _numpy_sigmoid("NumPy after fast math"),
                  _numpy_sigmoid("rounds upward", _once(_round_upward)), _numpy_sigmoid("NumPy after rounding")]


def _sleep_first(seconds):
  import time

  def effect(x):
    if not getattr(effect, "slept", False):
      effect.slept = True
      time.sleep(seconds)

  return effect


#: A correct candidate whose first call takes 30 s (a warm-up, an import-time compilation).
SLOW_START = [sigmoid("warms up for 30 s", _sleep_first(30.0)), correct("correct after a slow start")]
#: Two candidates whose 5,000-character labels differ only at the end, among six others.
LONG_LABELS = [correct("x" * 4999 + "a"), correct("x" * 4999 + "b"), *(correct(f"short {k}") for k in range(6))]


# ---- the process a worker was forked from ----------------------------------------------------------
def _template_pid() -> int:
  """This worker's parent where it is a template process (never the harness process: that is left alone)."""
  parent = os.getppid()
  with open(f"/proc/{parent}/cmdline", "rb") as f:
    if b"verification.engine.template" not in f.read():
      raise RuntimeError("this worker was not forked from a template process; its parent is left alone")
  return parent


def _kill_parent(x):
  os.kill(_template_pid(), signal.SIGKILL)


def _kill_parent_group(x):
  os.killpg(os.getpgid(_template_pid()), signal.SIGKILL)


#: A candidate that kills the process its worker was forked from, then correct ones that need a new one.
KILLS_ITS_PARENT = [sigmoid("kills its parent", _kill_parent), correct("correct after the parent's death")]
#: The same with the parent's whole process group, beside correct candidates in other workers.
KILLS_ITS_PARENTS_GROUP = [sigmoid("kills its parent's group", _kill_parent_group),
                           *(correct(f"correct {k}") for k in range(3))]
