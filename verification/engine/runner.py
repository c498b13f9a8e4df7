"""Running the checks: every candidate in a worker process, results as typed records.

:func:`run` is the API (the CLI is a thin layer over it)::

  run("reference")                                  # or a built-in name, or "module:ATTR"
  run([candidate, ...], Options(checks=("forward",), dtypes=("float32",)))

Isolation. Each candidate is checked in a worker process (:mod:`verification.engine.worker`), also with
``jobs=1``; workers are reused between well-behaved candidates. The parent enforces the time limit
per check by ending the worker, and the memory limit by watching each worker's resident memory (with
its descendants') and ending it past ``memory_limit``; where the worker runs on the CPU alone it also
caps its own address space at that limit (an accelerator runtime reserves far more address space
than it uses, so there the resident size is the guard). A worker
that dies (a signal, an exit, the memory cap, the time limit) gives ``error`` results for the
candidate it was running, naming the cause and the check that was running; the next candidate gets a
fresh worker. So does a candidate that changed JAX's configuration or left threads running.

Judging. Beside each worker a judge process (:mod:`verification.engine.judge`) decides the verdicts from
the worker's record of the candidate's outputs; it never loads the target. A worker may report only
failures itself (README, Isolation: where the verdicts are made).

Identity. Candidates are identified by label: the workers load the target themselves (spec
sources) or receive the candidate pickled with cloudpickle (object sources), and refuse a label they
do not have. Labels must be unique (a duplicate is a :class:`UsageError` naming it), so a target whose
order differs between processes (a ``set``) is checked correctly.

Where it lives. This module is the public entry; the work is in one file per concern, each importing only
the ones before it: :mod:`~verification.engine.devices` (the device and the cores),
:mod:`~verification.engine.options` (the options and their validation), :mod:`~verification.engine.processes`
(the worker and judge processes and their limits), :mod:`~verification.engine.loading` (the target and its
candidates) and :mod:`~verification.engine.scheduling` (the pool of workers and judges, and :func:`run`).
"""

from __future__ import annotations

from verification.engine.devices import DEVICES
from verification.engine.loading import in_shard, load
from verification.engine.options import DEFAULT_MEMORY_LIMIT, DTYPES, GiB, Options, UsageError, all_checks, validate
from verification.engine.scheduling import run, verify, verify_candidate
from verification.results import Run

__all__ = ["DEFAULT_MEMORY_LIMIT", "DEVICES", "DTYPES", "GiB", "Options", "Run", "UsageError", "all_checks", "in_shard",
           "load", "run", "validate", "verify", "verify_candidate"]
