"""The checks: one module each, and their registry (:data:`CHECKS`, in the order they run).

Each module holds one check: its docstring says what the check establishes and where its tolerance
comes from; ``check(ctx)`` is its form for JAX candidates (and for NumPy-bridged candidates where the
check applies to them); ``check_torch(ctx)``, where present, is its form for torch candidates, judged
with torch's own transforms (shared torch pieces in :mod:`verification.checks._torch`). Shared pieces:
:mod:`~verification.checks._context` (the context, sample points, comparisons) and
:mod:`~verification.checks._jax` (the compiled JAX transforms, capability gaps).

Adding a check: one module with ``check`` (and ``CAPABILITIES`` if it judges any), one line in
:data:`_MODULES`, a planted defect it catches and a correct twin it passes in the tests.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import time
import types
from collections.abc import Callable, Mapping
from typing import Any

from verification.results import Outcome, Result, errored

#: The check modules in the order they run (and are reported). Names only: this package imports a check's module
#: (and with it JAX) on first use of :data:`CHECKS`, so that the harness process, which needs the names alone,
#: never imports JAX.
_MODULES: tuple[str, ...] = ("forward", "autodiff", "forward_mode", "second_order", "transforms", "derivative",
                             "quadrature", "edge", "low_precision", "differential", "parameters")

#: The checks of a layer candidate (the functions of these names in :mod:`verification.checks.layers`), in the
#: order they run.
LAYER_CHECK_NAMES: tuple[str, ...] = ("layer_forward", "layer_gradient", "layer_learnable", "layer_probes")

#: Every check's name: the spike-function checks, then the layer checks.
NAMES: tuple[str, ...] = (*_MODULES, *LAYER_CHECK_NAMES)


@dataclasses.dataclass(frozen=True)
class Check:
  """One registered check: its name, its forms, the capabilities it may report ``unsupported``, and its
  summary (the module docstring's first line). Calling it runs the form for the candidate's backend;
  a reference quantity that cannot be computed at the claimed parameters is an ``error`` outcome."""

  name: str
  jax_form: Callable[[Any], Outcome]
  torch_form: Callable[[Any], Outcome] | None
  capabilities: tuple[str, ...]
  summary: str

  def __call__(self, ctx: Any) -> Outcome:
    from verification.checks._context import ReferenceUncomputable

    form = self.torch_form if self.torch_form is not None and ctx.candidate.backend == "torch" else self.jax_form
    try:
      return form(ctx)
    except ReferenceUncomputable as exc:
      return errored(str(exc))


def _registered(module: types.ModuleType) -> Check:
  name = module.__name__.rsplit(".", 1)[1]
  return Check(name, module.check, getattr(module, "check_torch", None), tuple(getattr(module, "CAPABILITIES", ())),
               (module.__doc__ or "").strip().splitlines()[0])


#: Names this package gives on first use (each imports JAX): ``CHECKS`` (check name -> :class:`Check`, in the
#: order they run), and the checks' shared context from :mod:`verification.checks._context`.
_LAZY = {"Context": "verification.checks._context", "ReferenceUncomputable": "verification.checks._context"}


@functools.cache
def _registry() -> dict[str, Check]:
  return {c.name: c for c in (_registered(importlib.import_module(f"{__name__}.{m}")) for m in _MODULES)}


def import_all() -> None:
  """Imports every check's module, the layer checks' too: what a process that runs checks imports before its
  first (the template process, a worker's watch of the modules the checks use)."""
  _registry()
  importlib.import_module(f"{__name__}.layers")


def __getattr__(name: str) -> Any:
  if name == "CHECKS":
    return _registry()
  if name in _LAZY:
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def checks_for(kind: str, checks: tuple[str, ...]) -> tuple[str, ...]:
  """The checks of ``checks`` that apply to a candidate of ``kind`` ("spike" or "layer")."""
  return tuple(c for c in checks if (c in LAYER_CHECK_NAMES) == (kind == "layer"))

def context(candidate: Any, opts: Mapping[str, Any], tape: Any = None) -> Any:
  """The checks' shared context for a candidate (``opts``: dtypes, is_reference, hypothesis_examples, and
  keep_programs where a worker checks the reference target: :class:`verification.core.evaluate.Evaluator`),
  its outputs recorded or replayed on ``tape`` (:mod:`verification.core.tape`); or a message why there is
  none (no reference surrogate of that name and parameters)."""
  import numpy as np

  from verification.checks._context import Context
  from verification.core.evaluate import Evaluator, describe

  try:
    reference = candidate.reference()
  except Exception as exc:
    return (f"{candidate.label}: no reference surrogate {candidate.name!r} with params {dict(candidate.params)}: "
            f"{describe(exc)}")
  evaluator = Evaluator(candidate, tape, keep_programs=bool(opts.get("keep_programs")))
  return Context(candidate, reference, evaluator, tuple(np.dtype(d) for d in opts["dtypes"]),
                 is_reference=opts["is_reference"], hypothesis_examples=opts["hypothesis_examples"])


def run_check(candidate: Any, ctx: Any, check: str) -> Result:
  """One check as a :class:`verification.results.Result`; whatever the candidate does (raise, exit) is a
  result, and so is a record that lacks what the judge asks for."""
  import numpy as np

  from verification.core.evaluate import describe
  from verification.core.tape import Unrecorded

  start = time.perf_counter()
  if isinstance(ctx, str):
    outcome = errored(ctx)
  else:
    try:
      with np.errstate(all="ignore"):
        outcome = _registry()[check](ctx)
    except BaseException as exc:  # SystemExit, KeyboardInterrupt, GeneratorExit, a library's own: the candidate's
      outcome = errored(str(exc) if isinstance(exc, Unrecorded) else describe(exc))
  return outcome.result(candidate.label, candidate.name, candidate.params, check, time.perf_counter() - start,
                        candidate.notes)


__all__ = ["CHECKS", "LAYER_CHECK_NAMES", "NAMES", "Check", "Context", "ReferenceUncomputable", "checks_for",
           "context", "import_all", "run_check"]
