"""The processes under a process: its children and all its descendants. Imported by the harness process
(a worker's resident memory with its descendants', watched ten times a second; the tree it ends) and by the
worker (the processes a candidate left running).

Linux lists a process's children in ``/proc/PID/task/*/children``: reading those of a worker's few
descendants costs microseconds, where finding them from every process's parent (``psutil``'s
``children(recursive=True)``, which reads all of ``/proc``) took about 14 ms a call on a machine of some
hundred processes: over a run, a core's tenth. Elsewhere psutil answers.
"""

from __future__ import annotations

import contextlib
import os


def children(pid: int) -> list[int]:
  """The children of ``pid`` (none once it has ended)."""
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


def descendants(pid: int) -> list[int]:
  """Every process under ``pid``: its children, theirs, and so on (parents before their children)."""
  found, queue = [], children(pid)
  while queue:
    p = queue.pop(0)
    found.append(p)
    queue += children(p)
  return found
