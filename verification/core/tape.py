"""The record of a candidate's outputs: what crosses from the process that runs candidate code to the
process that judges it.

Every piece of harness code that runs candidate code is a function marked :func:`recorded`: it takes
the inputs the harness chose and returns the candidate's outputs as data (arrays, numbers, strings,
exceptions, and tuples, lists and dicts of them). Its first argument (the check's context or the
candidate's evaluator) holds the :class:`Tape`:

* recording (the worker process, next to the candidate): the function runs, and its result, or the
  exception it raised, is kept under the call's *key* (its name and a SHA-256 digest of the other
  arguments, bytes exact: -0.0 and NaN payloads are inputs of their own);
* replaying (the judge process, where no candidate code is loaded): the function does not run; the
  result recorded under the same key comes back, or :class:`Unrecorded` where the record has none;
* no tape: the function runs (in-process use and tests).

The check itself runs in both processes. Its inputs, the reference's values, the tolerances and the
comparisons are computed afresh where it is judged, so what a candidate does to its own process (a
patched comparison, a forged message) can change nothing there but the outputs recorded for it: at
inputs the judge did not ask for they are never looked at, and a record that lacks what the judge
asks for is an ``error``. The recording side hands the check the values as they will be replayed
(encoded, then decoded), so both sides see the same data.

The record travels as bytes (:func:`dumps`, :func:`loads`): its entries as JSON, with each array's raw
bytes after the JSON (referred to by offset and length, never base64) and a dtype from a fixed list;
exceptions as their type's name, kind and message. Nothing is unpickled.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import struct
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np

from verification.core.errors import CandidateError, Recorded, describe

#: The dtypes an array on the record may have.
DTYPES = {name: np.dtype(name) for name in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                                            "uint64", "float16", "float32", "float64", "complex64", "complex128")}
DTYPES["bfloat16"] = np.dtype(ml_dtypes.bfloat16)
#: The longest exception message kept on the record (results keep 4,096 characters of a field).
MESSAGE_LIMIT = 8192


class Unrecorded(BaseException):  # not an Exception: a check's ``except Exception`` must not take it
  """The judge asked for an output of the candidate that the record does not hold."""


class TapeError(Exception):
  """A record that cannot be read (malformed JSON values, an unknown dtype, a size that does not match)."""


#: The exception classes the checks tell apart, most specific first: a rebuilt exception derives from
#: the first its original was an instance of (else from Exception, or BaseException).
_KINDS: dict[str, type[BaseException]] = {"CandidateError": CandidateError, "NotImplementedError": NotImplementedError}
_REBUILT: dict[tuple[str, str], type] = {}


def _kind(exc: BaseException) -> str:
  for name, cls in _KINDS.items():
    if isinstance(exc, cls):
      return name
  return "Exception" if isinstance(exc, Exception) else "BaseException"


def _rebuild(type_name: str, kind: str, message: str, description: str) -> BaseException:
  base = _KINDS.get(kind) or (Exception if kind == "Exception" else BaseException)
  key = (type_name, kind)
  if key not in _REBUILT:
    _REBUILT[key] = type(type_name, (base, Recorded), {})
  exc = _REBUILT[key](message)
  exc.description = description
  return exc


def _text(exc: BaseException) -> tuple[str, str]:
  try:
    message = str(exc)
  except BaseException:  # an exception whose __str__ raises
    message = f"<{type(exc).__name__} whose message cannot be read>"
  try:
    description = describe(exc)
  except BaseException:
    description = f"{type(exc).__name__}: {message}"
  return message[:MESSAGE_LIMIT], description[:MESSAGE_LIMIT]


# -------------------------------------------------------------------------------------------------
# Values <-> JSON
# -------------------------------------------------------------------------------------------------


def encode(value: Any) -> Any:
  """A result as JSON values (tagged lists) and, for an array, its bytes (a copy taken now); what cannot be
  recorded becomes an exception value."""
  if value is None:
    return ["n"]
  if isinstance(value, bool | np.bool_):
    return ["b", bool(value)]
  if isinstance(value, int) and not isinstance(value, bool):
    return ["i", int(value)]
  if isinstance(value, float):
    return ["f", float(value).hex()]
  if isinstance(value, str):
    return ["s", value]
  if isinstance(value, BaseException):
    return ["e", type(value).__name__[:200], _kind(value), *_text(value)]
  if isinstance(value, np.generic | np.ndarray) or type(value).__module__.startswith(("jax", "jaxlib")):
    a = np.asarray(value)
    name = "bfloat16" if a.dtype == DTYPES["bfloat16"] else a.dtype.name
    if name not in DTYPES:  # an object array, say
      return _unrecordable(f"an array of dtype {a.dtype}")
    return ["g" if isinstance(value, np.generic) else "a", name, list(a.shape), np.ascontiguousarray(a).tobytes()]
  if isinstance(value, tuple | list):
    return ["t" if isinstance(value, tuple) else "l", [encode(v) for v in value]]
  if isinstance(value, dict) and all(isinstance(k, str) for k in value):
    return ["d", [[k, encode(v)] for k, v in value.items()]]
  return _unrecordable(f"a {type(value).__name__}")


def _unrecordable(what: str) -> list[Any]:
  message = f"the candidate returned {what}, which is not an array of numbers"
  return ["e", "CandidateError", _kind(CandidateError(message)), message, message]


def as_replayed(value: Any, data: Any) -> Any:
  """``value`` as :func:`decode` gives back its encoding ``data``, without the round trip for arrays (a copy of
  the same bytes, dtype and shape): exceptions rebuilt, scalars and containers as they are."""
  tag = data[0]
  if tag == "a":
    return np.array(value, copy=True)
  if tag in ("t", "l"):
    items = [as_replayed(v, d) for v, d in zip(value, data[1], strict=True)]
    return tuple(items) if tag == "t" else items
  if tag == "d":
    return {k: as_replayed(value[k], d) for k, d in data[1]}
  return decode(data)


def decode(data: Any) -> Any:
  """The value :func:`encode` recorded (raises :class:`TapeError` on anything else)."""
  try:
    tag = data[0]
    if tag == "n":
      return None
    if tag in ("b", "i", "s"):
      value = data[1]
      if type(value) is not {"b": bool, "i": int, "s": str}[tag]:
        raise TapeError(f"a {tag!r} value of type {type(value).__name__}")
      return value
    if tag == "f":
      return float.fromhex(data[1])
    if tag in ("a", "g"):
      name, shape, raw = data[1:4]
      if name not in DTYPES or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise TapeError(f"an array of dtype {str(name)[:40]!r} and shape {str(shape)[:80]}")
      if not isinstance(raw, bytes | memoryview):
        raise TapeError(f"an array whose data is a {type(raw).__name__}, not bytes")
      a = np.frombuffer(raw, DTYPES[name]).reshape(shape).copy()
      return a[()] if tag == "g" else a
    if tag in ("t", "l"):
      items = [decode(v) for v in data[1]]
      return tuple(items) if tag == "t" else items
    if tag == "d":
      return {str(k): decode(v) for k, v in data[1]}
    if tag == "e":
      type_name, kind, message, description = (str(v) for v in data[1:5])
      return _rebuild(type_name, kind, message, description)
  except TapeError:
    raise
  except Exception as exc:
    raise TapeError(f"a malformed value on the record ({type(exc).__name__}: {exc})") from None
  raise TapeError(f"a value with the unknown tag {str(tag)[:20]!r}")


_LENGTH = struct.Struct("!Q")


def dumps(entries: list[Any]) -> bytes:
  """Entries of the record (:meth:`Tape.take`) as the bytes that cross to the judge: an 8-byte length, the
  entries as JSON where each array's bytes are ``{"b": [offset, length]}``, then those bytes. Anything else
  JSON cannot hold is written as its ``repr``."""
  chunks: list[bytes] = []
  size = 0

  def placed(o: Any) -> Any:
    nonlocal size
    if isinstance(o, bytes | bytearray | memoryview):
      n = memoryview(o).nbytes
      chunks.append(o)
      size += n
      return {"b": [size - n, n]}
    return repr(o)

  head = json.dumps(entries, default=placed, separators=(",", ":")).encode()
  return b"".join([_LENGTH.pack(len(head)), head, *chunks])


def loads(body: bytes | bytearray | memoryview) -> Any:
  """The entries :func:`dumps` wrote (checked for shape by :meth:`Tape.add`; arrays are views of ``body`` until
  decoded). Raises :class:`TapeError` on bytes that are not such a record."""
  view = memoryview(body).cast("B")
  if len(view) < _LENGTH.size or _LENGTH.unpack_from(view)[0] > len(view) - _LENGTH.size:
    raise TapeError(f"a record of {len(view):,} bytes that does not start with the length of its entries")
  end = _LENGTH.size + _LENGTH.unpack_from(view)[0]
  data = view[end:]

  def placed(d: dict) -> memoryview:
    where = d.get("b") if len(d) == 1 else None
    if not (isinstance(where, list) and len(where) == 2 and all(type(n) is int and n >= 0 for n in where)
            and where[0] + where[1] <= len(data)):
      raise TapeError(f"a reference to the record's data that is not one: {str(d)[:80]}")
    return data[where[0]:where[0] + where[1]]

  try:
    return json.loads(bytes(view[_LENGTH.size:end]), object_hook=placed)
  except (ValueError, RecursionError) as exc:
    raise TapeError(f"a record that is not JSON ({type(exc).__name__}: {str(exc)[:80]})") from None


def _elements(a: np.ndarray) -> np.ndarray:
  """The elements of a contiguous array as unsigned integers of their size (rows of bytes for 16-byte ones):
  equal exactly where the bytes are (-0.0 is not 0.0, NaN payloads count)."""
  flat = a.reshape(-1)
  size = a.dtype.itemsize
  return flat.view(f"u{size}") if size in (1, 2, 4, 8) else flat.view(np.uint8).reshape(flat.size, size)


def packed_against(values: np.ndarray, expected: np.ndarray) -> np.ndarray:
  """``values`` (an output of the candidate) on the record in few bytes, losslessly: where its elements' bytes
  differ from those of ``expected`` (an array the judge has too, of the same dtype and shape), their positions
  (uint32) then their bytes, as uint8. Where the two agree the record holds nothing; where they do not every
  differing element is there, so the judge restores ``values`` exactly (:func:`unpacked_against`) and decides
  itself."""
  v = np.ascontiguousarray(values)
  e = np.ascontiguousarray(expected)
  if v.dtype != e.dtype or v.shape != e.shape or v.size >= 1 << 32:
    raise ValueError(f"packed against an array of dtype {e.dtype} and shape {e.shape}: got {v.dtype} {v.shape}")
  got = _elements(v)
  differ = got != _elements(e)
  where = np.flatnonzero(differ if differ.ndim == 1 else differ.any(axis=1)).astype(np.uint32)
  return np.concatenate([where.view(np.uint8), np.ascontiguousarray(got[where]).reshape(-1).view(np.uint8)])


def unpacked_against(packed: np.ndarray, expected: np.ndarray) -> np.ndarray:
  """The array :func:`packed_against` packed against ``expected`` (raises :class:`TapeError` on anything else)."""
  e = np.ascontiguousarray(expected)
  raw = np.ascontiguousarray(packed).reshape(-1)
  width = 4 + e.dtype.itemsize
  if raw.dtype != np.uint8 or raw.size % width:
    raise TapeError(f"a packed array of {raw.size} {raw.dtype} that is not whole positions and elements of "
                    f"{e.dtype.itemsize} bytes")
  k = raw.size // width
  where = raw[:4 * k].view(np.uint32)
  if k and (int(where[-1]) >= e.size or not np.all(where[1:] > where[:-1])):
    raise TapeError(f"a packed array whose positions are not increasing positions of an array of {e.size}")
  out = e.copy()
  elements = _elements(out)
  elements[where] = raw[4 * k:].view(elements.dtype).reshape(k, *elements.shape[1:])
  return out


# -------------------------------------------------------------------------------------------------
# Keys
# -------------------------------------------------------------------------------------------------


def _feed(h: Any, v: Any) -> None:
  if v is None:
    h.update(b"N")
  elif isinstance(v, bool | np.bool_):
    h.update(b"B1" if v else b"B0")
  elif isinstance(v, int):
    h.update(b"I%d;" % v)
  elif isinstance(v, float):
    h.update(b"F" + struct.pack("<d", v))
  elif isinstance(v, str):
    b = v.encode("utf-8", "surrogatepass")
    h.update(b"S%d;" % len(b) + b)
  elif isinstance(v, np.dtype):
    h.update(b"D" + str(v).encode() + b";")
  elif isinstance(v, np.ndarray | np.generic):
    a = np.ascontiguousarray(v)
    h.update(b"A" + str(a.dtype).encode() + b";" + repr(a.shape).encode() + b";")
    h.update(a.tobytes())
  elif isinstance(v, tuple | list):
    h.update(b"T%d;" % len(v))
    for item in v:
      _feed(h, item)
  elif isinstance(v, dict):
    h.update(b"M%d;" % len(v))
    for k in sorted(v, key=str):
      _feed(h, str(k))
      _feed(h, v[k])
  else:
    raise TypeError(f"a recorded call's argument of type {type(v).__name__} has no key (pass arrays, numbers, "
                    "strings, or tuples and dicts of them)")


def key(name: str, args: tuple, kwargs: dict) -> str:
  h = hashlib.sha256(name.encode())
  _feed(h, list(args))
  _feed(h, kwargs)
  return f"{name}:{h.hexdigest()[:32]}"


# -------------------------------------------------------------------------------------------------
# The tape
# -------------------------------------------------------------------------------------------------


class Tape:
  """The candidate's outputs of one candidate's checks, recording or replaying (see the module)."""

  def __init__(self, mode: str):
    if mode not in ("record", "replay"):
      raise ValueError(f"mode {mode!r}: expected 'record' or 'replay'")
    self.mode = mode
    #: Recording: a context manager around each call of the candidate's code (the worker's clock), or None.
    self.timer: Callable[[], contextlib.AbstractContextManager] | None = None
    self._segment: list[list[Any]] = []
    self._held: dict[str, list[list[Any]]] = {}

  def call(self, name: str, fn: Callable[..., Any], owner: Any, args: tuple, kwargs: dict) -> Any:
    k = key(name, args, kwargs)
    if self.mode == "record":
      try:
        with self.timer() if self.timer is not None else contextlib.nullcontext():
          value = fn(owner, *args, **kwargs)
      except BaseException as exc:  # the candidate's (SystemExit, KeyboardInterrupt too): raised as replayed
        entry = ["raised", encode(exc)]
        self._segment.append([k, entry])
        raise decode(entry[1]) from None
      entry = ["ok", encode(value)]
      self._segment.append([k, entry])
      return as_replayed(value, entry[1])
    else:
      queue = self._held.get(k)
      if not queue:
        raise Unrecorded(f"the worker's record holds no output of the candidate for {name} at the inputs the judge "
                         "chose: the candidate's process did not compute what the harness asked for (something "
                         "in it changed the check's inputs, or the record was altered)")
      entry = queue.pop(0) if len(queue) > 1 else queue[0]
    value = decode(entry[1])
    if entry[0] == "raised":
      raise value
    return value

  def take(self) -> list[list[Any]]:
    """Recording: the entries since the last ``take`` (JSON values and arrays' bytes: :func:`dumps`), for the
    judge."""
    segment, self._segment = self._segment, []
    return segment

  def add(self, segment: Any) -> None:
    """Replaying: entries from the worker, as :meth:`take` gave them or as the bytes :func:`dumps` made of them
    (checked for shape; the values are decoded when asked for)."""
    if isinstance(segment, bytes | bytearray | memoryview):
      segment = loads(segment)
    if not isinstance(segment, list):
      raise TapeError("a record that is not a list of entries")
    for item in segment:
      if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], list)
              and len(item[1]) == 2 and item[1][0] in ("ok", "raised")):
        raise TapeError(f"a malformed entry on the record: {str(item)[:80]!r}")
      self._held.setdefault(item[0], []).append(item[1])


def recorded(fn: Callable[..., Any]) -> Callable[..., Any]:
  """Marks a function that runs candidate code (see the module): its first argument's ``tape``
  (None: the function just runs) records or replays it; the other arguments are its key."""
  name = fn.__qualname__

  @functools.wraps(fn)
  def wrapper(owner: Any, *args: Any, **kwargs: Any) -> Any:
    tape = getattr(owner, "tape", None)
    if tape is None:
      return fn(owner, *args, **kwargs)
    return tape.call(name, fn, owner, args, kwargs)

  wrapper.__recorded__ = True
  return wrapper
