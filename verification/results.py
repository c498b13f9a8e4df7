"""The typed result every layer shares: :class:`Status`, :class:`Diagnosis`, :class:`Result`, :class:`Run`.

This module is the bottom of ``verification/``: it imports neither jax, numpy nor hypothesis, so
``reports/`` can read and render results without them. The JSON schema is written here, once
(:meth:`Run.to_json`), and read here, once (:meth:`Run.from_json`), including files written before
``schema_version`` 2 (which had a plain ``status`` string and ``detail.category == "convention"``).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Version of the JSON document written by :meth:`Run.to_json`. 1: no version key, untyped records.
SCHEMA_VERSION = 2



class Status(enum.StrEnum):
  """The verdict of one (candidate, check)."""

  PASS = "pass"
  #: A defect: wrong numbers, a wrong dtype or shape, an exception from the candidate's code.
  FAIL = "fail"
  #: The check could not be carried out (the candidate could not be built, its worker died, a
  #: time limit, the reference cannot be computed at the claimed parameters).
  ERROR = "error"
  #: The check does not apply (no primitive given, the candidate is the reference, ...).
  SKIP = "skip"
  #: Differs from the specification only by a documented convention (H(0) = 0 for ``x > 0``, the
  #: value of g exactly at a jump): not a defect.
  CONVENTION = "convention"
  #: A capability (forward mode, second order, vmap, jit) that the candidate's mechanism does not
  #: have; a failure only where the user requires that capability.
  UNSUPPORTED = "unsupported"

  @property
  def failing(self) -> bool:
    """Whether this status makes a run fail (exit status 1)."""
    return self in (Status.FAIL, Status.ERROR)

  @property
  def symbol(self) -> str:
    """Short text for tables (console, Markdown, HTML)."""
    return SYMBOLS[self]

  @property
  def description(self) -> str:
    return DESCRIPTIONS[self]



SYMBOLS = {Status.PASS: "ok", Status.FAIL: "FAIL", Status.ERROR: "ERR", Status.SKIP: "skip",
           Status.CONVENTION: "conv", Status.UNSUPPORTED: "unsup"}
DESCRIPTIONS = {
    Status.PASS: "passed",
    Status.FAIL: "a defect: the diagnosis gives the input, expected and got values and the tolerance",
    Status.ERROR: "the check could not be carried out (the candidate could not be built or run)",
    Status.SKIP: "not applicable, with the reason",
    Status.CONVENTION: "a convention difference (H(0), the value at a jump), not a defect",
    Status.UNSUPPORTED: "a capability the candidate's mechanism does not have (a failure only if required)",
}
#: The order of statuses in legends and counts.
ORDER = (Status.PASS, Status.FAIL, Status.CONVENTION, Status.UNSUPPORTED, Status.ERROR, Status.SKIP)

#: The capabilities a user may require (``--require``); each check that finds one missing reports
#: ``unsupported`` with ``Diagnosis.capability`` set to one of these.
CAPABILITIES = ("forward", "second", "vmap", "jit")


#: Characters of a field (message, label, captured output) at most: a 4 MB exception message becomes 4 KB.
FIELD_LIMIT = 4096
#: What never reaches a report raw: control characters but tab and newline (ANSI escapes start with
#: ESC), lone surrogates (undecodable bytes from ``os.fsdecode``: not UTF-8) and what XML 1.0 forbids.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def safe_text(text: Any, limit: int | None = FIELD_LIMIT) -> str:
  """``text`` safe to print, to write as UTF-8 JSON and as XML: each unsafe character as a ``\\xNN`` or
  ``\\uNNNN`` escape, and at most ``limit`` characters (what is left out is counted). Idempotent: every
  string from a candidate goes through it once where it enters a result, and again harmlessly."""
  text = text if isinstance(text, str) else str(text)
  if _UNSAFE.search(text):
    text = _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)
  if limit is not None and len(text) > limit:
    note = f" [... {len(text) - limit:,} characters left out]"
    note = f" [... {len(text) - limit + len(note):,} characters left out]"
    text = text[:limit - len(note)] + note
  return text


#: Characters of a label at most, as written in results (JSON, JUnit): candidates are identified by label, so
#: labels are kept whole up to this bound, and their uniqueness is checked on exactly what is written
#: (:func:`written_label`); only the terminal shortens them (``verification.output``).
LABEL_LIMIT = 65536


def written_label(label: Any) -> str:
  """``label`` as results hold it and reports write it: escaped (:func:`safe_text`), at most LABEL_LIMIT long."""
  return safe_text(label, LABEL_LIMIT)


def _safe(value: Any, limit: int | None = FIELD_LIMIT) -> Any:
  """``value`` with every string in it (keys too, in mappings and lists) made :func:`safe_text`."""
  if isinstance(value, str):
    return safe_text(value, limit)
  if isinstance(value, Mapping):
    return {safe_text(k, limit) if isinstance(k, str) else k: _safe(v, limit) for k, v in value.items()}
  if isinstance(value, list | tuple):
    return type(value)(_safe(v, limit) for v in value)
  return value


def _clean(value: Any) -> Any:
  """JSON-safe: NaN/inf as strings, tuples as lists, numpy scalars as Python numbers (duck-typed), strings
  escaped (:func:`safe_text`, not shortened)."""
  if isinstance(value, str):
    return safe_text(value, None)
  if isinstance(value, Mapping):
    return {safe_text(k, None): _clean(v) for k, v in value.items()}
  if isinstance(value, list | tuple):
    return [_clean(v) for v in value]
  if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalar or 0-d array
    try:
      value = value.item()
    except (TypeError, ValueError):
      return str(value)
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  return value


def _number(value: Any) -> float | None:
  """A float from JSON (where NaN and inf are strings), or None."""
  if value is None or isinstance(value, bool):
    return None
  try:
    return float(value)
  except (TypeError, ValueError):
    return None


@dataclasses.dataclass(frozen=True)
class Diagnosis:
  """Why a result is what it is: the message and, for a comparison, its worst point.

  ``tolerance`` is the bound the comparison used at ``worst_input`` and ``reason`` where it comes
  from (dtype epsilon, the condition term, the finite-difference step). ``extra`` holds
  check-specific detail (per-dtype rows, quadrature intervals, ...), kept as written.
  """

  message: str
  worst_input: float | None = None
  expected: float | None = None
  got: float | None = None
  tolerance: float | None = None
  reason: str | None = None
  dtype: str | None = None
  failing_points: int | None = None
  #: For ``unsupported``: the capability (one of :data:`CAPABILITIES`) and how to get it.
  capability: str | None = None
  fix: str | None = None
  extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self) -> None:
    for name in ("message", "reason", "dtype", "capability", "fix"):
      value = getattr(self, name)
      if value is not None or name == "message":
        object.__setattr__(self, name, safe_text("" if value is None else value))
    object.__setattr__(self, "extra", _safe(dict(self.extra)))

  _MAIN = ("message", "worst_input", "expected", "got", "tolerance", "reason", "dtype", "failing_points",
           "capability", "fix")

  @classmethod
  def of(cls, message: str, /, **detail: Any) -> Diagnosis:
    """The main fields by name, everything else into ``extra``."""
    main = {k: detail.pop(k) for k in cls._MAIN if k in detail}
    for k in ("worst_input", "expected", "got", "tolerance"):
      if k in main and main[k] is not None and not isinstance(main[k], str):
        main[k] = _number(main[k])
    if main.get("failing_points") is not None:
      main["failing_points"] = int(main["failing_points"])
    return cls(message=message, **main, extra=detail)

  def to_json(self) -> dict[str, Any]:
    """A flat JSON object (the ``detail`` of a record): main fields that are set, then ``extra``."""
    out: dict[str, Any] = {k: getattr(self, k) for k in self._MAIN if getattr(self, k) is not None}
    out.update(self.extra)
    return _clean(out)

  @classmethod
  def from_json(cls, detail: Mapping[str, Any] | None) -> Diagnosis:
    detail = dict(detail or {})
    detail.pop("category", None)  # schema 1's convention marker: the status carries it now
    message = str(detail.pop("message", ""))
    main = {k: detail.pop(k) for k in cls._MAIN if k in detail}
    for k in ("worst_input", "expected", "got", "tolerance"):
      if k in main:  # a formula written as text (schema 1's tolerances: "4·eps·peak") is kept as text
        number = _number(main[k])
        main[k] = main[k] if number is None and isinstance(main[k], str) else number
    return cls(message=message, **main, extra=detail)

  @property
  def location(self) -> str:
    """``x = ..., expected ..., got ..., tolerance ... (dtype)`` or empty."""
    if self.worst_input is None:
      return ""
    parts = [f"x = {self.worst_input!r}"]
    if self.expected is not None:
      parts.append(f"expected {self.expected!r}")
    if self.got is not None:
      parts.append(f"got {self.got!r}")
    if self.tolerance is not None:
      parts.append(f"tolerance {self.tolerance!r}")
    return ", ".join(parts) + (f" ({self.dtype})" if self.dtype else "")

  def text(self) -> str:
    """The whole diagnosis as a few lines of text (pytest failures, JUnit, assertion messages)."""
    lines = [self.message]
    if self.location:
      lines.append(self.location)
    if self.reason:
      lines.append(f"tolerance: {self.reason}")
    if self.fix:
      lines.append(f"fix: {self.fix}")
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Result:
  """One (candidate, check) verdict."""

  label: str
  surrogate: str
  params: Mapping[str, Any]
  check: str
  status: Status
  diagnosis: Diagnosis
  seconds: float = 0.0
  #: Free-form notes of the candidate (library, version, the call that built it, scale).
  notes: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self) -> None:
    object.__setattr__(self, "label", written_label(self.label))
    for name in ("surrogate", "check"):
      object.__setattr__(self, name, safe_text(getattr(self, name), 500))
    object.__setattr__(self, "params", _safe(dict(self.params), 500))
    object.__setattr__(self, "notes", _safe(dict(self.notes)))

  @property
  def failing(self) -> bool:
    return self.status.failing

  @property
  def message(self) -> str:
    return self.diagnosis.message

  @property
  def detail(self) -> dict[str, Any]:
    """The record's JSON ``detail`` object (the diagnosis as callers of the untyped record read it)."""
    return self.to_json()["detail"]

  def to_json(self) -> dict[str, Any]:
    detail = {"candidate": self.label, **self.diagnosis.to_json()}
    if self.notes:
      detail["notes"] = _clean(dict(self.notes))
    return {"label": self.label, "surrogate": self.surrogate, "params": _clean(dict(self.params)),
            "check": self.check, "status": self.status.value, "detail": detail, "seconds": self.seconds}

  @classmethod
  def from_json(cls, record: Mapping[str, Any]) -> Result:
    """Reads a record of any schema version (1: ``status`` "fail"/"pass" + ``category`` "convention")."""
    detail = dict(record.get("detail") or {})
    raw = str(record.get("status", "error"))
    if detail.get("category") == "convention" and raw in ("fail", "pass"):
      raw = "convention"
    try:
      status = Status(raw)
    except ValueError:
      status = Status.ERROR
      detail["message"] = f"unknown status {raw!r} in the input: {detail.get('message', '')}"
    notes = detail.pop("notes", None) or {}
    detail.pop("candidate", None)
    return cls(label=str(record["label"]), surrogate=str(record.get("surrogate", "")),
               params=dict(record.get("params") or {}), check=str(record["check"]), status=status,
               diagnosis=Diagnosis.from_json(detail), seconds=float(record.get("seconds") or 0.0),
               notes=dict(notes))

  def with_status(self, status: Status, message: str | None = None) -> Result:
    diagnosis = self.diagnosis if message is None else dataclasses.replace(self.diagnosis, message=message)
    return dataclasses.replace(self, status=status, diagnosis=diagnosis)


def require(results: Iterable[Result], capabilities: Iterable[str]) -> list[Result]:
  """``unsupported`` results for a required capability become ``fail`` (the message says why)."""
  wanted = set(capabilities)
  unknown = wanted - set(CAPABILITIES)
  if unknown:
    raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {', '.join(CAPABILITIES)}")
  out = []
  for r in results:
    if r.status is Status.UNSUPPORTED and r.diagnosis.capability in wanted:
      r = r.with_status(Status.FAIL, f"required capability {r.diagnosis.capability!r} is missing: {r.message}")
    out.append(r)
  return out


def counts(results: Iterable[Result]) -> dict[Status, int]:
  """How many results of each status, in :data:`ORDER`."""
  out = dict.fromkeys(ORDER, 0)
  for r in results:
    out[r.status] += 1
  return out


def ordered_checks(names: Iterable[str], known: Sequence[str] = ()) -> list[str]:
  """The known checks in their order, then any others in first-seen order (a schema-1 file lists each
  candidate's results in the engine's order, so first-seen order is that order)."""
  seen = list(dict.fromkeys(names))
  return [c for c in known if c in seen] + [c for c in seen if c not in known]


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What a check returns; the runner adds the candidate, the check's name and the time."""

  status: Status
  diagnosis: Diagnosis

  def result(self, label: str, surrogate: str, params: Mapping[str, Any], check: str, seconds: float = 0.0,
             notes: Mapping[str, Any] | None = None) -> Result:
    return Result(label, surrogate, dict(params), check, self.status, self.diagnosis, round(seconds, 3),
                  dict(notes or {}))


def _outcome(status: Status) -> Any:
  def make(message: str, /, **detail: Any) -> Outcome:
    return Outcome(status, Diagnosis.of(message, **detail))

  make.__name__ = {Status.PASS: "passed", Status.FAIL: "failed", Status.ERROR: "errored", Status.SKIP: "skipped",
                   Status.CONVENTION: "convention"}[status]
  make.__doc__ = f"An outcome with status ``{status.value}``: the message, then diagnosis fields by name."
  return make


passed = _outcome(Status.PASS)
failed = _outcome(Status.FAIL)
errored = _outcome(Status.ERROR)
skipped = _outcome(Status.SKIP)
convention = _outcome(Status.CONVENTION)


def unsupported(capability: str, message: str, /, *, fix: str, **detail: Any) -> Outcome:
  """A capability (one of :data:`CAPABILITIES`) that the candidate's mechanism lacks, and the fix."""
  if capability not in CAPABILITIES:
    raise ValueError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITIES)}")
  return Outcome(Status.UNSUPPORTED, Diagnosis.of(message, capability=capability, fix=fix, **detail))


@dataclasses.dataclass(frozen=True)
class Curve:
  """A candidate's g (and P) next to the reference's, sampled in float64 for plotting."""

  x: tuple[float, ...]
  g: tuple[float | None, ...]
  reference_g: tuple[float | None, ...] = ()
  P: tuple[float | None, ...] = ()
  reference_P: tuple[float | None, ...] = ()

  def to_json(self) -> dict[str, Any]:
    return _clean({f.name: list(getattr(self, f.name)) for f in dataclasses.fields(self)})

  @classmethod
  def from_json(cls, doc: Mapping[str, Any]) -> Curve:
    return cls(**{f.name: tuple(_number(v) for v in doc.get(f.name) or ()) for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class Run:
  """One verification run: what was checked, where, and the results (the JSON document)."""

  target: str
  results: tuple[Result, ...]
  #: The checks that were run, in the engine's order (written into the JSON, so readers need not
  #: import the engine to learn them).
  checks: tuple[str, ...] = ()
  library: Mapping[str, Any] | None = None
  environment: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  #: Provenance: commit, date, command line, shard; whatever the writer knows.
  provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  #: Per candidate label: its g (and P) next to the reference's on a grid, for the plots.
  curves: Mapping[str, Curve] = dataclasses.field(default_factory=dict)
  schema_version: int = SCHEMA_VERSION

  @property
  def passed(self) -> bool:
    return not any(r.failing for r in self.results)

  @classmethod
  def merge(cls, runs: Sequence[Run], names: Sequence[str] = ()) -> Run:
    """One run from the shards of one run (``--shard K/N``): results, checks and curves joined in order.

    Shards must agree on the target, the library (name and version) and, where both record them, the
    commit and version in their provenance; a (label, check) in two shards is an error. Raises
    ValueError naming the shards (by ``names``, else by position). The environment and provenance
    are the first shard's; the provenance lists every shard's under ``shards``.
    """
    if not runs:
      raise ValueError("nothing to merge")
    names = list(names) or [f"run #{i + 1}" for i in range(len(runs))]
    first = runs[0]

    def identity(run: Run) -> tuple[Any, ...]:
      lib = run.library or {}
      return run.target, lib.get("name"), lib.get("version")

    for name, run in zip(names[1:], runs[1:], strict=True):
      if identity(run) != identity(first):
        raise ValueError(f"{names[0]} and {name} are runs of different targets or versions "
                         f"({identity(first)} and {identity(run)}): not merged")
      for key, what in (("commit", "commits"), ("version", "versions")):
        mine, theirs = first.provenance.get(key), run.provenance.get(key)
        if mine is not None and theirs is not None and mine != theirs:
          raise ValueError(f"{names[0]} and {name} were run at different {what} ({mine} and {theirs}): not merged")
    owner: dict[tuple[str, str], str] = {}
    for name, run in zip(names, runs, strict=True):
      for r in run.results:
        if (r.label, r.check) in owner:
          raise ValueError(f"{r.label} / {r.check} is in both {owner[(r.label, r.check)]} and {name}")
        owner[(r.label, r.check)] = name
    checks = ordered_checks([c for run in runs for c in run.checks], first.checks)
    provenance = {**first.provenance, "shards": [dict(run.provenance) for run in runs]}
    return dataclasses.replace(first, results=tuple(r for run in runs for r in run.results), checks=tuple(checks),
                               provenance=provenance, curves={k: v for run in runs for k, v in run.curves.items()})

  def to_json(self) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "target": self.target, "checks": list(self.checks),
            "library": _clean(self.library), "environment": _clean(dict(self.environment)),
            "provenance": _clean(dict(self.provenance)), "results": [r.to_json() for r in self.results],
            "curves": {label: c.to_json() for label, c in self.curves.items()}}

  @classmethod
  def from_json(cls, doc: Mapping[str, Any]) -> Run:
    """Reads a document of any schema version; raises ValueError naming what is malformed."""
    if not isinstance(doc, Mapping):
      raise ValueError(f"expected a JSON object, got {type(doc).__name__}")
    if not isinstance(doc.get("results"), list):
      raise ValueError("no 'results' list")
    results = []
    for i, record in enumerate(doc["results"]):
      try:
        results.append(Result.from_json(record))
      except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"result #{i} is malformed: {type(exc).__name__}: {exc}") from None
    checks = doc.get("checks") or ordered_checks(r.check for r in results)
    curves = {str(k): Curve.from_json(v) for k, v in (doc.get("curves") or {}).items()}
    return cls(target=str(doc.get("target", "?")), results=tuple(results), checks=tuple(checks),
               library=doc.get("library"), environment=dict(doc.get("environment") or {}),
               provenance=dict(doc.get("provenance") or {}), curves=curves,
               schema_version=int(doc.get("schema_version", doc.get("schema", 1)) or 1))


__all__ = ["CAPABILITIES", "LABEL_LIMIT", "ORDER", "SCHEMA_VERSION", "Curve", "Diagnosis", "Outcome", "Result", "Run",
           "Status", "convention", "counts", "errored", "failed", "ordered_checks", "passed", "require", "skipped",
           "unsupported", "written_label"]
