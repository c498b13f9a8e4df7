"""The device the workers compute on, and how many of them: ``--device`` as JAX platforms, the environment
of a worker process, whether it runs on the CPU alone, and the cores this process may use."""

from __future__ import annotations

import functools
import os

#: ``--device``: what the workers' ``JAX_PLATFORMS`` is set to ("" leaves JAX to find the device). The
#: CPU stays listed beside an accelerator (the harness compiles some host programs); a worker whose
#: default backend is not the device asked for refuses to start.
DEVICES = {"": None, "cpu": "cpu", "gpu": "cuda,cpu", "tpu": "tpu,cpu"}
#: ``jax.default_backend()`` for each device.
BACKENDS = {"cpu": "cpu", "gpu": "gpu", "tpu": "tpu"}


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
