"""An estimate of how a verification run scales with its workers, from one run's JSON (not a measurement).

``python -m benchmarks.scaling RUN.json [--start S] [--serial P] [--judge J] [--cores C]`` prints the
estimated time with 2, 4, 8 and 16 workers and the ratio to 2, for a machine of C cores (default 16).

The model, from the profile (``--profile``) of a run on 2 cores: each slot (a worker and its judge) pays a
fixed start S in parallel (process start, JAX import, the device probe: 2.4 s of CPU measured); the
harness process's serial part P comes first (its imports and loading the target). Candidates are handed
out as the engine does (a worker keeps to the surrogate it had, else takes one no other worker is on,
else the next in order). A candidate costs the median of its surrogate's candidates in the run (the
checks' seconds in the JSON), plus the surrogate's first-candidate premium (its costliest candidate less
that median: tracing and compiling the surrogate's programs) in every worker that has not had that
surrogate yet. Each judge needs a share J of a core beside its worker (its CPU time over the worker's in
the profile); N slots on C cores run max(1, N (1 + J) / C) times slower. What it leaves out: XLA's own
thread pools (each worker's is sized to the machine's cores), memory bandwidth and an accelerator shared
by the workers; a measured ratio is the figure to trust where there is one.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
from collections.abc import Mapping, Sequence
from typing import Any


def costs(run: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
  """Seconds per candidate (the sum over its checks) and each candidate's surrogate, in the run's order."""
  seconds: dict[str, float] = {}
  surrogate: dict[str, str] = {}
  for r in run["results"]:
    seconds[r["label"]] = seconds.get(r["label"], 0.0) + float(r.get("seconds") or 0.0)
    surrogate[r["label"]] = r["surrogate"]
  return seconds, surrogate


def estimate(seconds: Mapping[str, float], surrogate: Mapping[str, str], workers: int, start: float = 2.5,
             serial: float = 3.0, judge: float = 0.3, cores: int = 16) -> float:
  """The run's estimated wall time with ``workers`` workers (see the module)."""
  groups: dict[str, list[float]] = collections.defaultdict(list)
  for label, s in seconds.items():
    groups[surrogate[label]].append(s)
  base = {n: statistics.median(v) for n, v in groups.items()}
  premium = {n: max(v) - base[n] for n, v in groups.items()}
  todo = list(seconds)
  busy, last, seen = [start] * workers, [None] * workers, [set() for _ in range(workers)]
  while todo:
    i = min(range(workers), key=lambda k: busy[k])
    others = {last[k] for k in range(workers) if k != i}
    pick = next((lab for lab in todo if surrogate[lab] == last[i]), None) \
        or next((lab for lab in todo if surrogate[lab] not in others), None) or todo[0]
    todo.remove(pick)
    name = surrogate[pick]
    busy[i] += base[name] + (premium[name] if name not in seen[i] else 0.0)
    seen[i].add(name)
    last[i] = name
  return serial + max(busy) * max(1.0, workers * (1 + judge) / cores)


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__.splitlines()[0])
  p.add_argument("run", help="a run's JSON (python -m verification --json)")
  p.add_argument("--start", type=float, default=2.5, help="seconds to start a worker or judge (default 2.5)")
  p.add_argument("--serial", type=float, default=3.0, help="the harness process's seconds before the pool")
  p.add_argument("--judge", type=float, default=0.3, help="a judge's share of a core beside its worker")
  p.add_argument("--cores", type=int, default=16)
  args = p.parse_args(argv)
  with open(args.run) as f:
    seconds, surrogate = costs(json.load(f))
  kw = {"start": args.start, "serial": args.serial, "judge": args.judge, "cores": args.cores}
  two = estimate(seconds, surrogate, 2, **kw)
  print(f"{len(seconds)} candidates, {sum(seconds.values()):.1f} s of checks; estimated on {args.cores} cores "
        f"(not measured): 2 workers {two:.1f} s" + "".join(
            f", {n} workers {estimate(seconds, surrogate, n, **kw):.1f} s "
            f"({estimate(seconds, surrogate, n, **kw) / two:.2f})" for n in (4, 8, 16)))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
