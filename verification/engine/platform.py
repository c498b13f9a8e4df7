"""The platform a worker or judge process computes on: what it reports, the dtypes it has, and the
checks' dtypes on it. Imported by :mod:`verification.engine.worker` and :mod:`verification.engine.judge`
(each in its own process; neither imports the other)."""

from __future__ import annotations

import contextlib
import resource
from typing import Any


def environment() -> dict[str, Any]:
  import platform

  import jax

  from verification.core import numerics

  cap = resource.getrlimit(resource.RLIMIT_AS)[0]
  return {"python": platform.python_version(), "jax": jax.__version__, "platform": jax.default_backend(),
          "backend": jax.default_backend(), "device_kind": jax.devices()[0].device_kind,
          "devices": [str(d) for d in jax.devices()], "dtypes": supported_dtypes(),
          "flushes_subnormals": numerics.flushes_subnormals(),
          "address_space_limit": None if cap == resource.RLIM_INFINITY else cap}


def supported_dtypes() -> list[str]:
  """The float dtypes the default device computes in (a TPU has no float64): those for which a compiled
  ``x * 2 + 1`` keeps its dtype and value."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  found = []
  for name in ("float16", "bfloat16", "float32", "float64"):
    with contextlib.suppress(Exception):
      out = jax.jit(lambda v: v * 2 + 1)(jnp.ones(2, name))
      if str(out.dtype) == name and np.asarray(out, np.float64).tolist() == [3.0, 3.0]:
        found.append(name)
  return found


def platform_gaps(dtypes: list[str], supported: list[str], platform: str) -> tuple[list[str], str | None]:
  """The selected dtypes the platform computes in, and why every check is skipped (or None): the checks'
  oracles compute in float64, so a platform without it (a TPU) can judge nothing; a 16-bit dtype it
  lacks is left out of the checks, with the reason in their results."""
  if "float64" not in supported:
    return [], (f"the {platform} platform has no float64, which the checks' oracles compute in: run the checks on "
                "the CPU (--device cpu)")
  kept = [d for d in dtypes if d in supported]
  if not kept:
    return [], f"none of the selected dtypes ({', '.join(dtypes)}) is available on the {platform} platform"
  return kept, None


