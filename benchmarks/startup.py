"""What starting a worker or a judge costs: the imports every one of them makes before its first check.

``python -m benchmarks.startup [--rounds N] [--with DIR ...]`` starts N fresh interpreters that import what a
worker and a judge import (JAX with 64-bit on, the persistent compilation cache, the checks, the worker's and
the judge's modules) and prints the median wall time and CPU time (user + system, from the children's resource
usage) of one start, the version of JAX and ml_dtypes each imported, and where the import time went
(``python -X importtime``'s cumulative time of :data:`SHOWN`, median over the rounds). Each ``--with DIR`` adds
a row whose interpreters have DIR first on their path (a folder made by ``pip install --target DIR
PACKAGE==VERSION``), the rows interleaved round by round so that a machine's drift reaches each alike. To
compare two ml_dtypes versions::

    pip install --no-deps --target /tmp/mld06 'ml_dtypes==0.6.0'
    pip install --no-deps --target /tmp/mld07 'ml_dtypes==0.7.0'
    python -m benchmarks.startup --with /tmp/mld06 --with /tmp/mld07

A start is the figure that a run pays per process (five for ``python -m verification --jobs 2``: the worker that
lists the target, two workers, two judges), and that a test suite pays for every engine run it makes.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import resource
import statistics
import subprocess
import sys
import time

#: What a worker and a judge import before their first check (``verification/engine/worker.py``'s ``main`` and
#: ``judge.py``'s), then the versions that decide the figure.
IMPORTS = """
import jax
jax.config.update("jax_enable_x64", True)
from verification.core import cache
cache.enable()
import verification.checks, verification.engine.worker, verification.engine.judge
verification.checks.import_all()
import ml_dtypes
print(jax.__version__, ml_dtypes.__version__)
"""

#: The imports listed per row (cumulative seconds, each with what it imported).
SHOWN = ("jax", "ml_dtypes", "numpy", "scipy.integrate", "verification.checks")


def start_once(path: str | None) -> tuple[float, float, str, dict[str, float]]:
  """One fresh interpreter: (wall seconds, CPU seconds, versions, cumulative seconds per module imported)."""
  env = dict(os.environ)
  if path:
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, os.getcwd(), env.get("PYTHONPATH", "")]))
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  t0 = time.perf_counter()
  proc = subprocess.run([sys.executable, "-X", "importtime", "-c", IMPORTS], capture_output=True, text=True, env=env,
                        check=True)
  wall = time.perf_counter() - t0
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
  modules: dict[str, float] = {}
  for line in proc.stderr.splitlines():  # "import time: self [us] | cumulative [us] | name"
    m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| *(\S+)", line)
    if m:
      modules[m.group(2)] = int(m.group(1)) / 1e6
  return wall, cpu, proc.stdout.strip(), modules


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=5, help="fresh interpreters per row (default 5)")
  parser.add_argument("--with", dest="paths", action="append", default=[], metavar="DIR",
                      help="a row with DIR first on the path (repeatable)")
  args = parser.parse_args(argv)
  rows: list[str | None] = [None, *args.paths]
  walls, cpus = collections.defaultdict(list), collections.defaultdict(list)
  versions: dict[str | None, str] = {}
  modules: dict[str | None, dict[str, list[float]]] = collections.defaultdict(lambda: collections.defaultdict(list))
  start_once(None)  # the file system's caches warm for every row alike
  for _ in range(args.rounds):
    for row in rows:
      wall, cpu, versions[row], mods = start_once(row)
      walls[row].append(wall)
      cpus[row].append(cpu)
      for name, seconds in mods.items():
        modules[row][name].append(seconds)
  print(f"one start: the imports of a worker and a judge; median of {args.rounds} fresh interpreters, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
  print(f"{'path first':<24} {'jax, ml_dtypes':<16} {'wall s':>7} {'cpu s':>7}  imports (s, cumulative)")
  for row in rows:
    print(f"{row or '(this environment)':<24} {versions[row].replace(' ', ', '):<16} "
          f"{statistics.median(walls[row]):7.2f} {statistics.median(cpus[row]):7.2f}  "
          + ", ".join(f"{k} {statistics.median(modules[row][k]):.2f}" for k in SHOWN if modules[row].get(k)))
  return 0


if __name__ == "__main__":
  sys.exit(main())
