"""What crosses the boundary between the harness process (:mod:`verification.engine.runner`) and a
worker process (:mod:`verification.engine.worker`); both import this module, neither imports the other.

Messages are frames on a socket pair (:class:`Channel`): an 8-byte length, then the body. The parent
sends pickles (the worker trusts its parent); the worker sends JSON lists ``[token, kind, *args]``
(the parent unpickles nothing a candidate could have written), each at most :data:`MAX_MESSAGE`
bytes. The parent reads without ever blocking: a frame counts once all its bytes have arrived, so a
header announcing more than arrives only lets the time limit run out. ``token`` is a random value
the parent sends in ``init``: a message without it is something else writing to the worker's channel
(an accident; a candidate in the worker's process can read the token, so it is no defence against
deliberate forgery). The parent checks the order of the messages too (:class:`Sequence`).

* parent to worker: ``init`` (a dict: ``memory_limit``, ``sys_path``, ``spec``, ``token``), then ``("list", only)``
  (the ``--only`` names), ``("check", label, payload, options)`` or ``("stop",)``;
* worker to parent: ``("ready", environment)``, ``("catalogue", data)`` in answer to ``list`` (the candidates as
  plain data and, with ``--only``, the registry class each of their names and each ``--only`` name spells),
  ``("start", label, phase)`` before each phase (loading, sanity, each check, curves), then per check
  ``("record", label, check, size, spoiled, seconds)`` followed by a frame of ``size`` bytes, the record's
  entries (the candidate's outputs for the judge, as :func:`verification.core.tape.dumps` writes them: JSON
  and the arrays' bytes; the parent passes these bytes on to the judge as they came, without reading them),
  or ``("result", label, record)`` (a failure the worker saw itself; any verdict only for a candidate judged
  in its worker), ``("curve", label, curve)``, and ``("done", label, dirty_reason, profile)``
  (:mod:`verification.engine.profile`), or ``("refused", label, reason)``.

The judge process (:mod:`verification.engine.judge`) uses the same frames: the parent's messages pickled
(queued and sent as the judge reads them: :func:`frame`, :meth:`Channel.send_some`), the judge's JSON.

Candidates given as objects travel pickled with cloudpickle (:func:`pickled`); ``jax.custom_vjp``
objects, which have no default pickling, are rebuilt from their function and rules
(:func:`rebuild_custom_vjp`). Results travel as :meth:`verification.results.Result.to_json` records.
"""

from __future__ import annotations

import io
import json
import pickle
import select
import socket
import struct
import time
from collections.abc import Sequence as Seq
from typing import Any

from verification.results import Diagnosis, Result, Status

#: The largest message the parent reads (a catalogue of thousands of candidates is well under 1 MiB).
MAX_MESSAGE = 64 << 20
_HEADER = struct.Struct("!Q")
#: A frame at least this large that has not fully arrived is read into a buffer of its own.
LARGE_FRAME = 1 << 20
#: The worker's messages and how many fields each has after its kind.
ARITY = {"ready": 1, "catalogue": 1, "start": 2, "result": 2, "record": 5, "curve": 2, "done": 2, "refused": 2}
KINDS = tuple(ARITY)


class ProtocolError(Exception):
  """A message the parent cannot accept: too large, malformed, without the token, out of sequence."""


class Channel:
  """One end of the socket pair: framed messages (an 8-byte length, then the body)."""

  def __init__(self, sock: socket.socket, token: str = ""):
    self.sock, self.token, self.buffer = sock, token, bytearray()
    #: A 'record' message whose entries (the next frame) have not fully arrived.
    self.pending: list[Any] | None = None
    #: A large frame being read into place, and how many of its bytes have arrived.
    self.body: bytearray | None = None
    self.filled = 0

  def fileno(self) -> int:
    return self.sock.fileno()

  def close(self) -> None:
    self.sock.close()

  def _send_frame(self, body: bytes) -> None:
    if len(body) < 1 << 16:
      self.sock.sendall(_HEADER.pack(len(body)) + body)
    else:  # not copied to join its length
      self.sock.sendall(_HEADER.pack(len(body)))
      self.sock.sendall(body)

  def _send_framed(self, framed: bytes | memoryview, timeout: float) -> None:
    data = memoryview(framed)
    deadline = time.monotonic() + timeout
    while data:
      try:
        data = data[self.sock.send(data):]
      except BlockingIOError:
        if not select.select([], [self.sock], [], max(0.0, deadline - time.monotonic()))[1]:
          raise TimeoutError(f"the worker did not read a message within {timeout:g} s") from None

  # the parent's side
  def send(self, message: Any, timeout: float = 60.0) -> None:
    """Sends a pickled message to the worker (the parent's socket is non-blocking: at most ``timeout``)."""
    self._send_framed(frame(message), timeout)

  def send_some(self, data: bytes | memoryview) -> int:
    """Sends what the socket takes now of a :func:`frame` (never blocks); the number of bytes sent."""
    try:
      return self.sock.send(data, socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
      return 0

  def messages(self) -> list[list[Any]]:
    """The worker's messages that have fully arrived, without blocking: ``[kind, *args]`` each. Raises
    :class:`ProtocolError` (too large, malformed, without the token) or EOFError (the worker closed it).
    At most :data:`MAX_MESSAGE` bytes are read per call (a worker that writes without end cannot hold it)."""
    closed, read, out = False, 0, []
    while read <= MAX_MESSAGE:
      into = self.body is not None  # a large frame's bytes, read into place (no copy to join them)
      try:
        if into:
          with memoryview(self.body) as view:
            n = self.sock.recv_into(view[self.filled:], 0, socket.MSG_DONTWAIT)
        else:
          data = self.sock.recv(1 << 20, socket.MSG_DONTWAIT)
          n = len(data)
      except (BlockingIOError, InterruptedError):
        break
      except OSError:
        closed = True
        break
      if not n:
        closed = True
        break
      read += n
      if into:
        self.filled += n
        if self.filled == len(self.body):
          body, self.body = self.body, None
          self._take(body, out)
      else:
        self.buffer += data
        self._frames(out)
    if closed and not out:
      raise EOFError
    return out

  def _frames(self, out: list[list[Any]]) -> None:
    """The frames whole in the buffer, taken; a large one begun is read into place from then on."""
    while len(self.buffer) >= _HEADER.size:
      (size,) = _HEADER.unpack_from(self.buffer)
      if size > MAX_MESSAGE:
        raise ProtocolError(f"a message announced as {size:,} bytes, over the limit of {MAX_MESSAGE:,}")
      have = len(self.buffer) - _HEADER.size
      if have < size:
        if size >= LARGE_FRAME:  # the rest is read into a buffer of its own
          self.body, self.filled = bytearray(size), have
          with memoryview(self.buffer) as view:
            self.body[:have] = view[_HEADER.size:]
          self.buffer.clear()
        return
      with memoryview(self.buffer) as view:  # one copy (a slice of the bytearray would be a second)
        body = bytes(view[_HEADER.size:_HEADER.size + size])
      del self.buffer[:_HEADER.size + size]
      self._take(body, out)

  def _take(self, body: bytes | bytearray, out: list[list[Any]]) -> None:
    """One frame's body: a record's entries (bytes for the judge, not read here), or a message."""
    if self.pending is not None:
      message, self.pending = self.pending, None
      if len(body) != message[3]:
        raise ProtocolError(f"a record's entries of {len(body):,} bytes, announced as {message[3]!r}")
      message[3] = body
      out.append(message)
      return
    message = self._decode(bytes(body))
    if message[0] == "record":
      if len(message) < 4 or isinstance(message[3], bool) or not isinstance(message[3], int):
        raise ProtocolError("a 'record' message without the size of its entries")
      self.pending = message
      return
    out.append(message)

  def _decode(self, body: bytes) -> list[Any]:
    try:
      message = json.loads(body)
    except (ValueError, UnicodeDecodeError):
      raise ProtocolError(f"a message that is not JSON ({len(body):,} bytes: {body[:40]!r}...)") from None
    if not isinstance(message, list) or len(message) < 2 or not all(isinstance(m, str) for m in message[:2]):
      raise ProtocolError(f"a malformed message {str(message)[:80]!r}")
    if message[0] != self.token:
      raise ProtocolError("a message without the run's token (something other than the worker wrote to its channel)")
    if message[1] not in KINDS:
      raise ProtocolError(f"a message of unknown kind {message[1][:40]!r}")
    return message[1:]

  # the worker's side
  def put(self, *message: Any) -> None:
    """Sends ``[token, *message]`` as JSON to the parent (blocking)."""
    self._send_frame(json.dumps([self.token, *message], default=repr).encode())

  def put_record(self, label: str, check: str, entries: list[Any], spoiled: str | None, seconds: float) -> None:
    """Sends a ``record`` message, then its entries as a frame of their bytes (blocking)."""
    from verification.core.tape import dumps

    body = dumps(entries)
    self.put("record", label, check, len(body), spoiled, seconds)
    self._send_frame(body)

  def receive(self) -> Any:
    """The parent's next message (blocking); EOFError once it has closed the channel."""
    header = self._exactly(_HEADER.size)
    return pickle.loads(self._exactly(_HEADER.unpack(header)[0]))

  def _exactly(self, n: int) -> bytearray:
    data = bytearray(n)
    with memoryview(data) as view:
      got = 0
      while got < n:
        k = self.sock.recv_into(view[got:])
        if not k:
          raise EOFError
        got += k
    return data


def frame(message: Any) -> memoryview:
  """A parent's message as the bytes of one frame (:meth:`Channel.send_some`), pickled in place after its length."""
  out = io.BytesIO()
  out.write(bytes(_HEADER.size))
  pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
  framed = out.getbuffer()
  framed[:_HEADER.size] = _HEADER.pack(len(framed) - _HEADER.size)
  return framed


class Sequence:
  """The messages the parent expects while a worker checks one candidate: ``start`` of each phase once
  (loading, sanity, the checks asked for, curves), one ``result`` per check asked for, ``done`` after all
  of them, all for the label the worker was given. :meth:`accept` raises :class:`ProtocolError` otherwise."""

  def __init__(self, label: str, checks: Seq[str]):
    self.label, self.checks = label, tuple(checks)
    self.started: set[str] = set()
    self.results: set[str] = set()

  def accept(self, kind: str, rest: list[Any]) -> None:
    if kind in ("ready", "catalogue"):
      return
    if not rest or rest[0] != self.label:
      raise ProtocolError(f"a {kind!r} message for {str(rest[0] if rest else None)[:80]!r}, while the worker was "
                          f"given {self.label[:80]!r}")
    if kind == "start":
      phase = rest[1] if len(rest) > 1 else None
      if phase not in ("loading", "sanity", "curves", *self.checks) or phase in self.started:
        raise ProtocolError(f"a 'start' of {str(phase)[:40]!r}, not asked for or started before")
      self.started.add(phase)
    elif kind in ("result", "record"):
      check = rest[1] if kind == "record" else rest[1].get("check") if len(rest) > 1 and isinstance(rest[1], dict) \
          else None
      if check not in self.checks or check in self.results:
        raise ProtocolError(f"a result for {str(check)[:40]!r}, a check not asked for or reported before")
      self.results.add(check)
    elif kind == "done":
      if "loading" not in self.started or self.results != set(self.checks):
        raise ProtocolError(f"'done' before every check had its result (missing: "
                            f"{', '.join(c for c in self.checks if c not in self.results) or 'none'})")


def unstable_labels(label: str, others: Seq[str], other_process: str) -> str:
  """Why a label one process built is missing in another, with the nearest label ``other_process`` built as the
  example: labels that change between processes (a memory address, a process id, a random number)."""
  import difflib

  from verification.results import safe_text

  def shown(text: str) -> str:
    return repr(safe_text(text, 120))

  nearest = difflib.get_close_matches(label, others, n=1, cutoff=0.0)
  example = f" ({shown(label)} where the target was listed, {shown(nearest[0])} in {other_process})" if nearest else ""
  return (f"its labels differ between the processes that load it{example}: a label that holds a memory address, "
          "a process id or a random number (a default repr, id(), os.getpid()) changes from one process to the "
          "next; give each candidate a label of its own that does not")


def failed_result(candidate: Any, check: str, message: str, status: Status = Status.FAIL) -> Result:
  params = getattr(candidate, "params_json", None) or dict(candidate.params)  # a layer's LIFParams as a dict
  return Result(candidate.label, candidate.name, params, check, status, Diagnosis(message),
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
