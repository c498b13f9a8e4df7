"""The options of a run and their validation: :class:`Options`, :func:`validate` (a :class:`UsageError` before
any work is done) and the number of worker processes they ask for."""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Sequence

from verification import results as R
from verification.engine.devices import DEVICES, cores, default_jobs

DTYPES = ("float16", "bfloat16", "float32", "float64")
GiB = 1 << 30
#: Memory per worker: resident memory with its descendants' (and, on the CPU alone, address space). Over
#: the whole reference run a worker's peak resident memory was 0.95 GiB and its peak address space
#: (VmPeak) 2.2 GiB; 8 GiB leaves room for larger candidates and stops a runaway one long before two
#: workers take a 24 GB machine.
DEFAULT_MEMORY_LIMIT = 8 * GiB


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
  profile: bool = False  # where the time goes, per process, in the run's provenance (``profile``)


def all_checks() -> tuple[str, ...]:
  """Every check: the spike-function checks, then the layer checks (each candidate runs its kind's)."""
  from verification.checks import NAMES

  return NAMES


def validate(options: Options) -> None:
  """Raises :class:`UsageError` for options that cannot be run (before any work is done)."""
  known = all_checks()
  checks = tuple(options.checks)
  if any(not c for c in checks):
    raise UsageError("empty check name in the list of checks")
  unknown = [c for c in checks if c not in known]
  if unknown:
    raise UsageError(f"unknown checks {unknown}{close_matches(unknown, known)}; known: {', '.join(known)}")
  if not options.dtypes or any(not d for d in options.dtypes):
    raise UsageError("the list of dtypes is empty")
  unknown = [d for d in options.dtypes if d not in DTYPES]
  if unknown:
    raise UsageError(f"unknown dtypes {unknown}{close_matches(unknown, DTYPES)}; known: {', '.join(DTYPES)}")
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
    raise UsageError(f"device {options.device!r}: expected one of cpu, gpu, tpu"
                     f"{close_matches([options.device], DEVICES)} (or nothing: the device JAX finds)")
  unknown = [c for c in options.require if c not in R.CAPABILITIES]
  if unknown:
    raise UsageError(f"unknown capabilities {unknown}; known: {', '.join(R.CAPABILITIES)}")
  if options.shard is not None:
    k, n = options.shard
    if not (isinstance(k, int) and isinstance(n, int) and 1 <= k <= n):
      raise UsageError(f"shard {options.shard!r}: expected (k, n) with 1 <= k <= n")


def close_matches(names: Sequence[str], known: Sequence[str]) -> str:
  hints = {n: difflib.get_close_matches(n, known, n=3) for n in names}
  hints = {n: h for n, h in hints.items() if h}
  return "" if not hints else " (did you mean " + "; ".join(f"{n}: {', '.join(h)}" for n, h in hints.items()) + "?)"



def jobs_for(options: Options, n_candidates: int) -> int:
  """Worker processes: as asked (0: :func:`default_jobs`), never more than the cores or the candidates."""
  wanted = options.jobs or default_jobs()
  return max(1, min(wanted, cores(), n_candidates))
