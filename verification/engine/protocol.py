"""What crosses the boundary between the harness process (:mod:`verification.engine.runner`) and a
worker process (:mod:`verification.engine.worker`); both import this module, neither imports the other.

Messages (pickled tuples over a :class:`multiprocessing.connection.Connection`):

* parent to worker: ``init`` (a dict: ``memory_limit``, ``sys_path``, ``spec``), then ``("list",)``,
  ``("check", label, payload, options)`` or ``("stop",)``;
* worker to parent: ``("ready", environment)``, ``("catalogue", data)`` in answer to ``list``,
  ``("start", label, phase)`` before each phase (loading, sanity, each check, curves), then
  ``("result", label, record)`` per check, ``("curve", label, curve)``, and ``("done", label,
  dirty_reason)``, or ``("refused", label, reason)``.

Candidates given as objects travel pickled with cloudpickle (:func:`pickled`); ``jax.custom_vjp``
objects, which have no default pickling, are rebuilt from their function and rules
(:func:`rebuild_custom_vjp`). Results travel as :meth:`verification.results.Result.to_json` records.
"""

from __future__ import annotations

from typing import Any

from verification.results import Diagnosis, Result, Status


def failed_result(candidate: Any, check: str, message: str, status: Status = Status.FAIL) -> Result:
  return Result(candidate.label, candidate.name, dict(candidate.params), check, status, Diagnosis(message),
                0.0, dict(getattr(candidate, "notes", {}) or {}))


def rebuild_custom_vjp(fun: Any, nondiff_argnums: tuple[int, ...], fwd: Any, bwd: Any, symbolic_zeros: bool,
                       optimize_remat: bool) -> Any:
  """The inverse of the runner's pickling of a ``jax.custom_vjp`` object."""
  import jax

  f = jax.custom_vjp(fun, nondiff_argnums=nondiff_argnums)
  f.defvjp(fwd, bwd, symbolic_zeros=symbolic_zeros, optimize_remat=optimize_remat)
  return f


def reduce_custom_vjp(f: Any) -> tuple:
  """``jax.custom_vjp`` objects have no default pickling (their ``__new__`` needs the function):
  rebuild them from the function and its rules (:func:`rebuild_custom_vjp`)."""
  return rebuild_custom_vjp, (f.fun, tuple(f.nondiff_argnums), f.fwd, f.bwd, f.symbolic_zeros,
                              getattr(f, "optimize_remat", False))


def pickled(candidate: Any) -> bytes | str:
  import io

  import cloudpickle
  import jax
  from jax.extend.core import Primitive

  try:
    class Pickler(cloudpickle.CloudPickler):
      def reducer_override(self, obj: Any) -> Any:
        if type(obj) is jax.custom_vjp:
          return reduce_custom_vjp(obj)
        if isinstance(obj, Primitive):
          raise TypeError(f"it uses the custom primitive {obj.name!r}, whose rules (lowering, JVP, batching) are "
                          "registered by the code that creates it and do not travel with a pickled copy")
        return super().reducer_override(obj)

    buffer = io.BytesIO()
    Pickler(buffer).dump(candidate)
    payload = buffer.getvalue()
    cloudpickle.loads(payload)  # a candidate that cannot be rebuilt is named here, not in the worker
    return payload
  except Exception as exc:
    return (f"the candidate cannot be sent to a worker process (cloudpickle: {type(exc).__name__}: {exc}); "
            "give it as a target 'module:ATTR' instead, so each worker imports it")
