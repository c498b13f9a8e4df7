"""Failing results grouped into distinct defects: one entry per cause, not per candidate and check.

A result's *mechanism* is its message with what varies between calls of one cause taken out: the
numbers (inputs, parameter values, counts), the dtypes, and where an exception was raised. Results
are one defect when they share the library, the mechanism and:

- for an exception or a wrong output dtype, nothing more: the same exception (or dtype) met by
  several checks is one cause, and the checks it breaks are listed;
- otherwise the check, and for a numerical mechanism (a non-finite value, a value off the
  reference, an integral) the reference surrogate too, since there the formula is the cause.

Results that are errors of the harness itself (a traceback inside ``verification/``) are kept
apart: they are not the library's. Imports only :mod:`verification.results`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from verification.results import Result, Run

DTYPES = ("float16", "bfloat16", "float32", "float64")
_DTYPE = re.compile(r"\b(?:torch\.)?(?:b?float(?:16|32|64))\b")
_WHERE = re.compile(r" \(at [^)]*\)")
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?(?![\w])")
#: Where an error is the harness's own (a traceback in the harness, not in the library).
_HARNESS = re.compile(r"\(at [^)]*verification/[^)]*\)")

#: The mechanism kinds, in the order the findings list them.
KINDS = ("raises", "dtype", "nonfinite", "value", "quadrature", "second_order", "parameters", "other")


def mechanism(message: str) -> str:
  """The message with the numbers, dtypes and source locations replaced: ``N``, ``DTYPE``, nothing."""
  text = _WHERE.sub("", message)
  text = _DTYPE.sub("DTYPE", text)
  return _NUMBER.sub("N", text).strip()


def kind(r: Result) -> str:
  """How the defect shows: an exception, a wrong dtype, a non-finite value, a value off the
  reference, an integral off the primitive, a second derivative, an output that depends on a parameter."""
  m = r.message
  if " raised " in m or re.match(r"^\w+Error: ", m):
    return "raises"
  if re.search(r"returned dtype|returns \S+ for a", m):
    return "dtype"
  if r.check == "parameters":
    return "parameters"
  if r.check == "second_order" or "double backward" in m:
    return "second_order"
  if m.startswith("∫g over"):
    return "quadrature"
  if re.search(r"\bis (?:-?inf|nan)\b", m) or (r.check in ("differential", "low_precision")
                                                 and nonfinite(r.diagnosis.got)):
    return "nonfinite"
  if r.diagnosis.worst_input is not None and r.diagnosis.expected is not None:
    return "value"
  return "other"


def nonfinite(value: Any) -> str:
  """"nan", "inf" or "-inf" for such a float, else ""."""
  if not isinstance(value, float) or math.isfinite(value):
    return ""
  return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def quantity(r: Result) -> str:
  """What the check judged: H, g, P, dP (autodiff derivative of P), sg (surrogate_grad), d2H."""
  q = r.diagnosis.extra.get("quantity")
  if q:
    return str(q)
  if r.message.startswith(("forward", "H ")):
    return "H"
  return "g"


def harness_error(r: Result) -> bool:
  """An error raised in the harness's own code, not the library's."""
  return bool(_HARNESS.search(r.message))


def _library(run: Run) -> tuple[str, str]:
  lib = dict(run.library or {})
  return str(lib.get("name", run.target)), str(lib.get("version", "?"))


def _size(r: Result) -> tuple[float, int]:
  """Sort key of "the smallest input that shows it": |x|, then the lower precision first."""
  x = r.diagnosis.worst_input
  size = abs(x) if isinstance(x, float) and not math.isnan(x) else math.inf
  dtype = r.diagnosis.dtype
  return size, DTYPES.index(dtype) if dtype in DTYPES else len(DTYPES)


@dataclasses.dataclass(frozen=True)
class Defect:
  """One cause: the results it explains, and the one that shows it at the smallest input."""

  library: str
  version: str
  number: int
  kind: str
  mechanism: str
  results: tuple[Result, ...]

  @property
  def id(self) -> str:
    return f"{self.library}-{self.number:03d}"

  @property
  def example(self) -> Result:
    """The result at the smallest input (the reproducer's)."""
    return min(self.results, key=_size)

  @property
  def checks(self) -> list[str]:
    return list(dict.fromkeys(r.check for r in self.results))

  @property
  def calls(self) -> list[str]:
    return list(dict.fromkeys(str(r.notes.get("call", r.label)) for r in self.results))

  @property
  def surrogates(self) -> list[str]:
    return list(dict.fromkeys(r.surrogate for r in self.results))

  @property
  def dtypes(self) -> list[str]:
    """Every dtype the results name, in their messages or per-dtype failures."""
    found: set[str] = set()
    for r in self.results:
      found |= set(re.findall(r"for (?:a |input dtype )(b?float(?:16|32|64))", r.message))
      rows = r.diagnosis.extra.get("all_failures") or r.diagnosis.extra.get("per_dtype") or []
      found |= {str(f.get("dtype")) for f in rows if isinstance(f, dict) and not f.get("failing_points") == 0}
      if r.diagnosis.dtype:
        found.add(r.diagnosis.dtype)
    return [d for d in DTYPES if d in found]

  @property
  def title(self) -> str:
    """The mechanism as a reader says it: the dtypes it meets in place of ``DTYPE``."""
    text = self.mechanism
    dtypes = self.dtypes
    if "DTYPE" in text and dtypes:
      text = text.replace("DTYPE", "/".join(dtypes), 1) if text.count("DTYPE") == 1 else text
    return text


def _key(r: Result) -> tuple[Any, ...]:
  k = kind(r)
  if k in ("raises", "dtype"):
    text = mechanism(r.message)
    if k == "raises":  # the exception, whichever check (or quantity) met it
      text = re.sub(r"^.*?\braised ", "", text)
    else:  # the dtype of one quantity's output, whichever check saw it
      text = str(r.diagnosis.extra.get("quantity", "H"))
    return k, text
  if k == "nonfinite":  # one quantity non-finite, whichever check met it
    word = nonfinite(r.diagnosis.got) or (re.findall(r"\bis (-?inf|nan)\b", r.message) or ["?"])[0]
    return k, r.surrogate, quantity(r), word
  if k in ("value", "quadrature", "other"):
    return k, r.check, r.surrogate, mechanism(r.message)
  return k, r.check, mechanism(r.message)


def group(run: Run) -> tuple[list[Defect], list[Result]]:
  """(the run's defects in order of first appearance, the harness's own errors)."""
  name, version = _library(run)
  groups: dict[tuple[Any, ...], list[Result]] = {}
  harness: list[Result] = []
  for r in run.results:
    if not r.failing:
      continue
    if harness_error(r):
      harness.append(r)
      continue
    groups.setdefault(_key(r), []).append(r)
  defects = []
  for i, (key, results) in enumerate(groups.items(), 1):
    first = results[0]
    if key[0] == "dtype":
      text = _dtype_title(results)
    elif key[0] == "nonfinite":
      text = f"{_QUANTITY.get(key[2], key[2])} is {key[3]} for {key[1]} (DTYPE)"
    else:
      text = mechanism(first.message)
    defects.append(Defect(name, version, i, key[0], text, tuple(results)))
  return defects, harness


_QUANTITY = {"g": "g (the VJP)", "H": "H (the forward)", "P": "P (the primitive)",
             "dP": "the autodiff derivative of P", "d2H": "the second derivative of H", "sg": "surrogate_grad"}


def _dtype_title(results: Sequence[Result]) -> str:
  got = sorted({m for r in results for m in re.findall(r"(?:returned dtype|returns) (\S+)", r.message)})
  quantity = sorted({str(r.diagnosis.extra.get("quantity", "H")) for r in results})
  what = "the forward (H)" if quantity == ["H"] else "/".join(quantity)
  return f"{what} returns {'/'.join(got) or 'another dtype'} for a DTYPE input"


def group_all(runs: Iterable[Run]) -> dict[str, tuple[Run, list[Defect], list[Result]]]:
  """Library name -> (its run, its defects, the harness's errors), in the order given."""
  out = {}
  for run in runs:
    defects, harness = group(run)
    out[_library(run)[0]] = (run, defects, harness)
  return out
