"""A target module that settles its process at import, as real libraries do: a default in the environment
(Django's settings pattern), a signal handler, a warnings filter, NumPy's error handling, a JAX logging
option, a block of shared memory (Python starts its resource tracker) and a helper process of its own.
Each candidate reads what the module set on every call and raises if it is gone; one of them changes it
during its checks (put back before the next). All are correct and must pass."""

import os
import signal
import subprocess
import sys
import warnings
from multiprocessing import shared_memory

import jax
import numpy as np

from tests.hostile import MARKER, _once, sigmoid

os.environ.setdefault("SPIKELIB_BACKEND", "xla")


def _on_usr1(signum, frame):
  pass


signal.signal(signal.SIGUSR1, _on_usr1)
warnings.filterwarnings("ignore", message="spikelib: deprecated")
np.seterr(over="ignore")
jax.config.update("jax_log_compiles", False)
jax.config.update("jax_traceback_filtering", "off")
_BLOCK = shared_memory.SharedMemory(create=True, size=1024)
_SERVER = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(1000)  # {MARKER}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _reads_settings(x):
  problems = []
  if os.environ.get("SPIKELIB_BACKEND") != "xla":
    problems.append("SPIKELIB_BACKEND is gone")
  if signal.getsignal(signal.SIGUSR1) is not _on_usr1:
    problems.append("the SIGUSR1 handler is gone")
  if not any(f[1] is not None and f[1].pattern == "spikelib: deprecated" for f in warnings.filters):
    problems.append("the warnings filter is gone")
  if np.geterr()["over"] != "ignore":
    problems.append("NumPy's error handling is not the module's")
  if jax.config.jax_traceback_filtering != "off":
    problems.append("jax_traceback_filtering is back to its default")
  if _SERVER.poll() is not None:
    problems.append("the helper process was ended")
  if problems:
    raise RuntimeError("; ".join(problems))


def _changes_settings():
  os.environ["SPIKELIB_BACKEND"] = "other"
  warnings.resetwarnings()
  np.seterr(all="raise")
  signal.signal(signal.SIGUSR1, signal.SIG_DFL)


CANDIDATES = [sigmoid("reads the module's settings", _reads_settings),
              sigmoid("changes the module's settings", _once(_changes_settings)),
              sigmoid("reads them after a change", _reads_settings)]
