"""Where a run's time goes (``--profile``, ``Options(profile=True)``): seconds per part, per process.

Each worker and judge process keeps a :class:`Clock` from its first line of code and sends its parts with
its messages (a worker with each ``done``, a judge with each ``result``); the harness process keeps the last
it got from each and prints them at the end of the run (:func:`table`), with its own parts, and puts them
in the run's provenance (``profile``). The parts of a process, each measured by its own timer:

* ``start``: from the process's creation (the kernel's clock) to its first line of harness code:
  Python's start and the harness's imports before JAX; for a process forked from a template process
  (:mod:`verification.engine.template`), from the fork to its first line: what the child sets up;
* ``jax import``: ``import jax`` and the harness's configuration of it (the compilation cache);
* ``compilation``: XLA compiling programs, read back from the persistent cache included
  (``jax.monitoring``'s backend-compile events);
* ``tracing``: JAX tracing Python functions to programs and lowering them (its trace and lowering events);
* ``candidate code``: in a worker, the candidate's calls the checks make (``verification.core.tape``'s
  recorded calls), less the compilation and tracing inside them;
* ``checks`` (worker) / ``judging`` (judge): the rest of handling the parent's messages: the checks' own
  code, the reference's values, encoding or decoding the record, the comparisons;
* ``waiting``: blocked on the parent (its next message, or a write the parent has not yet read).

A span's time less the parts measured inside it is its own, so the parts do not overlap, and their sum
is the process's lifetime up to its last report less what no timer covers (``unaccounted``: the moments
between one timer and the next, a few milliseconds a message). This module runs in all three processes;
it imports nothing of the harness's.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import time
from collections.abc import Iterator, Mapping
from typing import Any

#: The parts of a worker's or judge's time, in the order printed.
PARTS = ("start", "jax import", "compilation", "tracing", "candidate code", "checks", "judging", "waiting")
_JAX_EVENTS = {"/jax/core/compile/backend_compile_duration": "compilation",
               "/jax/core/compile/jaxpr_trace_duration": "tracing",
               "/jax/core/compile/jaxpr_to_mlir_module_duration": "tracing"}


#: When this process was forked from a template process (seconds since the epoch, set by the template in the
#: child), or None for a process started as a fresh interpreter.
FORKED_AT: float | None = None


def created() -> float:
  """This process's creation time (seconds since the epoch): its fork where a template forked it, else the
  kernel's start time (clock-tick resolution, from the boot time in whole seconds)."""
  if FORKED_AT is not None:
    return FORKED_AT
  try:
    with open(f"/proc/{os.getpid()}/stat") as f:
      ticks = int(f.read().rpartition(")")[2].split()[19])
    with open("/proc/stat") as f:
      boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
    return boot + ticks / os.sysconf("SC_CLK_TCK")
  except (OSError, ValueError, StopIteration, IndexError):
    import psutil

    return psutil.Process().create_time()


class Clock:
  """Seconds per part of this process (:data:`PARTS`), by nested spans: a span's own time is its elapsed
  time less what the spans and JAX events inside it took."""

  def __init__(self) -> None:
    self.born = created()
    self.zero = time.time()
    self.parts = dict.fromkeys(PARTS, 0.0)
    self.parts["start"] = max(0.0, self.zero - self.born)
    self._counted = 0.0  # seconds given to any part since zero (the start excluded)
    self._open: list[tuple[str, float, float]] = []  # the spans not yet ended: (part, start, counted at start)
    self._events: list[tuple[float, float]] = []  # the latest JAX events' (start, end), none inside another

  def add(self, part: str, seconds: float) -> None:
    self.parts[part] += seconds
    self._counted += seconds

  @contextlib.contextmanager
  def span(self, part: str) -> Iterator[None]:
    self._open.append((part, time.perf_counter(), self._counted))
    try:
      yield
    finally:
      _, t0, counted0 = self._open.pop()
      self.add(part, time.perf_counter() - t0 - (self._counted - counted0))

  def jax_event(self, part: str, duration: float, end: float | None = None) -> None:
    """A JAX event of ``duration`` seconds that ended at ``end`` (now): the part of it that no event already
    counted covers (an inner function traced while tracing an outer one is counted once, in the inner event;
    a compilation during a trace goes to compilation)."""
    end = time.perf_counter() if end is None else end
    start = end - duration
    inside = [e for e in self._events if e[0] >= start - 1e-4 and e[1] <= end + 1e-4]
    self.add(part, max(0.0, duration - sum(b - a for a, b in inside)))
    self._events = [*[e for e in self._events if e not in inside][-63:], (start, end)]

  def listen_to_jax(self) -> None:
    """Counts JAX's compilation and tracing (``jax.monitoring``; JAX must be imported)."""
    import jax

    def on_duration(event: str, duration: float, **_: Any) -> None:
      part = _JAX_EVENTS.get(event)
      if part is not None:
        self.jax_event(part, duration)

    jax.monitoring.register_event_duration_secs_listener(on_duration)

  def report(self) -> dict[str, float]:
    """The parts so far, ``lifetime`` (creation to now) and ``cpu`` (the CPU time this process used, user and
    system: on a shared machine the wall-clock parts include time the process waited for a core), rounded to
    milliseconds."""
    parts, now, counted = dict(self.parts), time.perf_counter(), self._counted
    for part, t0, counted0 in reversed(self._open):  # the spans still running, innermost first: their time so far
      own = now - t0 - (counted - counted0)
      parts[part] += own
      counted += own
    out = {k: round(v, 3) for k, v in parts.items()}
    out["lifetime"] = round(time.time() - self.born, 3)
    out["cpu"] = round(cpu_seconds(), 3)
    return out


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
  """User and system CPU seconds of this process (or, with ``RUSAGE_CHILDREN``, of its ended children)."""
  usage = resource.getrusage(who)
  return usage.ru_utime + usage.ru_stime


def usable(report: Any) -> dict[str, float] | None:
  """A process's report as sent (JSON from a process that runs candidate code): the known parts as finite
  numbers, or None where it is not one."""
  if not isinstance(report, Mapping):
    return None
  out = {}
  for k in (*PARTS, "lifetime", "cpu"):
    v = report.get(k)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
      return None
    out[k] = float(v)
  return out


def unaccounted(report: Mapping[str, float]) -> float:
  """A process's lifetime less the sum of its parts."""
  return report["lifetime"] - sum(report[k] for k in PARTS)


def summary(processes: Mapping[str, Mapping[str, float]], parent: Mapping[str, float], wall: float
            ) -> dict[str, Any]:
  """The run's profile as data (the provenance's ``profile``): the harness process's parts and wall time, each
  worker's and judge's parts (``worker 1``, ``judge 1``, ...), and their totals per part."""
  totals = {k: round(sum(p[k] for p in processes.values()), 3) for k in (*PARTS, "lifetime", "cpu")}
  return {"wall": round(wall, 3), "parent": {k: round(v, 3) for k, v in parent.items()},
          "processes": {name: dict(p) for name, p in processes.items()}, "totals": totals}


def table(profile: Mapping[str, Any]) -> str:
  """The profile as a text table: one line per process, seconds per part, then the totals."""
  short = {"jax import": "import", "compilation": "compile", "tracing": "trace", "candidate code": "candidate",
           "lifetime": "alive"}
  cols = [*PARTS, "unaccounted", "lifetime", "cpu"]
  head = f"{'process':<10}" + "".join(f"{short.get(c, c):>12}" for c in cols)
  parent = ", ".join(f"{k} {v:.1f}" for k, v in profile["parent"].items())
  lines = [f"where the time went, in seconds: the run {profile['wall']:.1f} (the harness process: {parent})", head]
  rows = [*profile["processes"].items(), ("total", profile["totals"])]
  for name, p in rows:
    values = [p[k] for k in PARTS] + [unaccounted(p), p["lifetime"], p["cpu"]]
    lines.append(f"{name:<10}" + "".join(f"{v:>12.2f}" for v in values))
  return "\n".join(lines)
