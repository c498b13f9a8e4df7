"""The judge process: decides the verdicts from the worker's record of a candidate's outputs.

Started as ``python -m verification.engine.judge FD`` by :mod:`verification.engine.processes` (or forked from
a template process that runs its ``main([FD])``: :mod:`verification.engine.template`), one beside each
worker, on the same device; FD is one end of a socket pair (:class:`verification.engine.protocol.Channel`).
It never imports a target module and never receives candidate code: it gets each candidate as data
(:func:`verification.core.candidate.judged_fields`, from the harness process's listing), the run's
options, and per check the worker's record (:mod:`verification.core.tape`, JSON the harness process
passes on). For each check it runs the same check code as the worker, on a stand-in candidate whose
recorded calls replay the record: inputs, reference values, tolerances and comparisons are its own.

Messages (the parent's pickled, this process's JSON with the run's token):

* parent to judge: ``init`` (a dict: ``sys_path``, ``token``, ``backend``), then ``("begin", label,
  fields, options)``, ``("record", label, check, entries, spoiled, seconds)`` per check (``entries`` the
  bytes the worker sent), ``("end", label)`` (possibly after the next candidate's ``begin``: a candidate's
  records all come before it), ``("stop",)``; a judge that takes over a candidate from
  one that ended gets the earlier checks' records after ``begin``, as ``("entries", label, [entries, ...])``
  (added to its record, not judged);
* judge to parent: ``("ready", environment)``, then ``("result", label, record, profile)`` per ``record``
  (``profile``: where its time went so far, :mod:`verification.engine.profile`).

A reader thread takes the parent's messages as they come, so the parent's writes never wait on a
check being judged. This module runs only in the judge process.
"""

from __future__ import annotations

import queue
import sys
import threading
import traceback
import types
from collections.abc import Mapping
from typing import Any

from verification.engine.profile import Clock


class Judging:
  """One candidate's checks judged from its record, check by check (in the judge process, and in process
  for tests: :func:`replayed`)."""

  def __init__(self, fields: Mapping[str, Any], opts: Mapping[str, Any], env: Mapping[str, Any]):
    from verification.checks import context
    from verification.core.candidate import stand_in
    from verification.core.tape import Tape
    from verification.engine.platform import platform_gaps

    self.candidate = stand_in(fields)
    dtypes, self.gap = platform_gaps(list(opts["dtypes"]), list(env["dtypes"]), env["platform"])
    self.tape = Tape("replay")
    self.layer = fields.get("kind") == "layer"
    if self.layer:  # a layer candidate (verification.checks.layers): float64 reference, its own checks
      from verification.checks.layers import layer_context

      self.gap, self.ctx = None, layer_context(self.candidate, self.tape)
    else:
      self.ctx = context(self.candidate, {**opts, "dtypes": tuple(dtypes)}, self.tape)

  def judge(self, check: str, entries: Any, spoiled: str | None = None, seconds: float | None = None) -> Any:
    """The :class:`verification.results.Result` of ``check`` given the worker's entries for it (and what the
    worker saw the candidate change during it, which fails it)."""
    import dataclasses

    from verification.checks import run_check
    from verification.core.tape import TapeError
    from verification.engine import protocol
    from verification.results import Status

    if self.gap is not None:
      return protocol.failed_result(self.candidate, check, self.gap, Status.SKIP)
    try:
      self.tape.add(entries)
    except TapeError as exc:
      return protocol.failed_result(self.candidate, check, f"the worker's record cannot be read: {exc}", Status.ERROR)
    if self.layer:
      from verification.checks.layers import run_layer_check

      result = run_layer_check(self.ctx, check)
    else:
      result = run_check(self.candidate, self.ctx, check)
    if spoiled and not result.failing:
      result = result.with_status(Status.FAIL, f"{spoiled} (was: {result.message})")
    return result if seconds is None else dataclasses.replace(result, seconds=round(float(seconds), 3))


def replayed(candidate: Any, checks: tuple[str, ...], opts: Mapping[str, Any], env: Mapping[str, Any]
             ) -> tuple[list[Any], list[Any]]:
  """In one process: each check run next to the candidate, recording (the worker's side), and judged from
  that record (the judge's side); the two lists of results. For tests: the verdicts must agree."""
  from verification.checks import context, run_check
  from verification.core.candidate import judged_fields
  from verification.core.tape import Tape

  tape = Tape("record")
  ctx = context(candidate, opts, tape)
  judging = Judging(judged_fields(candidate), opts, env)
  direct, judged = [], []
  for check in checks:
    direct.append(run_check(candidate, ctx, check))
    judged.append(judging.judge(check, tape.take()))
  return direct, judged


def main(argv: list[str]) -> int:
  clock = Clock()
  with clock.span("start"):
    import socket

    from verification.engine.platform import environment
    from verification.engine.protocol import Channel

    conn = Channel(socket.socket(fileno=int(argv[0])))
    init = conn.receive()
    conn.token = init.get("token", "")
    sys.path[:] = list(dict.fromkeys([*init.get("sys_path", []), *sys.path]))
  with clock.span("jax import"):
    import jax

    from verification.core import cache

    jax.config.update("jax_enable_x64", True)
    cache.enable()
    cache.save_values_here()  # no candidate code runs here: the reference's values it computes are kept
  clock.listen_to_jax()
  try:
    with clock.span("judging"):
      env = environment()
  except Exception as exc:
    conn.put("ready", {"device_error": f"--device {init.get('backend')}: JAX could not start it in the judge "
                                       f"process: {type(exc).__name__}: {str(exc).strip()[:300]}"})
    return 4
  conn.put("ready", env)
  inbox: queue.Queue[Any] = queue.Queue()

  def read() -> None:
    while True:
      try:
        inbox.put(conn.receive())
      except (EOFError, OSError):
        inbox.put(("stop",))
        return

  threading.Thread(target=read, name="judge-reader", daemon=True).start()
  current: dict[str, Judging | str] = {}
  while True:
    with clock.span("waiting"):
      message = inbox.get()
    if message[0] == "stop":
      return 0
    kind = message[0]
    with clock.span("judging"):
      if kind == "begin":
        _, label, fields, opts = message
        try:
          current = {label: Judging(fields, opts, env)}
        except Exception as exc:  # a stand-in the harness cannot build from the listing: errors, named
          current = {label: f"the judge could not take the candidate: {type(exc).__name__}: {exc}"}
      elif kind == "record":
        _, label, check, entries, spoiled, seconds = message
        judging = current.get(label)
        try:
          if not isinstance(judging, Judging):
            raise RuntimeError(judging or "the judge was not told of this candidate")
          result = judging.judge(check, entries, spoiled, seconds)
        except Exception:
          from verification.engine import protocol
          from verification.results import Status

          who = types.SimpleNamespace(label=label, name="?", params={}, notes={})
          result = protocol.failed_result(who, check, "internal error of the judge:\n" + traceback.format_exc()[-3000:],
                                          Status.ERROR)
        conn.put("result", label, result.to_json(), clock.report())
      elif kind == "entries":  # what an earlier judge was given for this candidate, before it ended
        _, label, entries = message
        judging = current.get(label)
        if isinstance(judging, Judging):
          try:
            for segment in entries:
              judging.tape.add(segment)
          except Exception as exc:
            current[label] = f"the records of the earlier checks cannot be read: {exc}"
      elif kind == "end":  # may come after the next candidate's "begin" (the parent's worker went on to it)
        current.pop(message[1] if len(message) > 1 else None, None)


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
