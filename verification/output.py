"""Results for people and machines: the console table, JSON (:meth:`results.Run.to_json`) and JUnit XML.

Nothing here imports JAX: the records are :mod:`verification.results` types.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from verification.results import Result, Run, Status, counts, safe_text

#: Characters of a label on the terminal at most: a longer one is cut and given a suffix made from the whole
#: label (:func:`terminal_label`), so two labels that differ only past the cut stay apart. JSON and JUnit
#: keep labels whole.
TERMINAL_LABEL = 80


def terminal_label(label: str, width: int = TERMINAL_LABEL) -> str:
  """``label`` for a terminal: escaped, and where longer than ``width``, its start, ``…`` and the first 8 hex
  digits of the whole label's SHA-256 (a suffix two different labels share once in four billion)."""
  import hashlib

  text = safe_text(label, None)
  if len(text) <= width:
    return text
  digest = hashlib.sha256(text.encode("utf-8", errors="backslashreplace")).hexdigest()[:8]
  return f"{text[:width - 10]}…{digest}"


def check_writable(path: str, what: str) -> None:
  """Raises ValueError unless ``path`` can be written: its folder exists and is writable, it is no folder."""
  p = Path(path)
  parent = p.parent if str(p.parent) else Path(".")
  if p.is_dir():
    raise ValueError(f"{what} {path}: is a directory")
  if not parent.is_dir():
    raise ValueError(f"{what} {path}: the directory {parent} does not exist")
  if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
    raise ValueError(f"{what} {path}: not writable")


def _replace(path: str, data: str | bytes) -> None:
  """Writes atomically (a reader, or a run killed while writing, never sees half a file); a failed write
  leaves no temporary file behind. Text is written as UTF-8 whatever it holds (a lone surrogate escaped)."""
  tmp = f"{path}.tmp{os.getpid()}"
  if isinstance(data, str):
    data = data.encode("utf-8", errors="backslashreplace")
  try:
    with open(tmp, "wb") as f:
      f.write(data)
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(tmp)
    raise


def write_json(path: str, run: Run) -> None:
  _replace(path, json.dumps(run.to_json(), indent=1, ensure_ascii=False) + "\n")


def write_junit(path: str, run: Run) -> None:
  """One testcase per (candidate, check); ``fail`` a failure, ``error`` an error, ``skip`` and
  ``unsupported`` skipped, with :meth:`Diagnosis.text` as the text."""
  results = run.results
  n = counts(results)
  suite = ET.Element("testsuite", name=f"surrogate-verify:{run.target}", tests=str(len(results)),
                     failures=str(n[Status.FAIL]), errors=str(n[Status.ERROR]),
                     skipped=str(n[Status.SKIP] + n[Status.UNSUPPORTED]))
  for r in results:
    case = ET.SubElement(suite, "testcase", classname=r.label, name=r.check, time=f"{r.seconds:.3f}")
    text = r.diagnosis.text()
    if r.status in (Status.FAIL, Status.ERROR):
      tag = "failure" if r.status is Status.FAIL else "error"
      ET.SubElement(case, tag, message=r.message[:500]).text = text
    elif r.status in (Status.SKIP, Status.UNSUPPORTED):
      ET.SubElement(case, "skipped", message=f"{r.status.value}: {r.message}"[:500]).text = text
    elif r.status is Status.CONVENTION:
      ET.SubElement(case, "system-out").text = text
  _replace(path, ET.tostring(suite, encoding="utf-8", xml_declaration=True))


def summary(results: Sequence[Result], checks: Sequence[str], out=sys.stdout) -> None:
  """A candidate × check table (:attr:`Status.symbol`), then one line per failure with its diagnosis, and one
  per candidate that left its worker changed (``left_behind``)."""
  labels = list(dict.fromkeys(r.label for r in results))
  shown = {label: terminal_label(label) for label in labels}
  cell = {(r.label, r.check): r for r in results}
  width = max([len(s) for s in shown.values()] + [9])
  cols = [max(len(c), 5) for c in checks]
  print("candidate".ljust(width), *(c.ljust(w) for c, w in zip(checks, cols, strict=True)), file=out)
  for label in labels:
    row = [cell[(label, c)].status.symbol if (label, c) in cell else "" for c in checks]
    print(shown[label].ljust(width), *(s.ljust(w) for s, w in zip(row, cols, strict=True)), file=out)
  notable = [r for r in results if r.failing or r.status in (Status.CONVENTION, Status.UNSUPPORTED)]
  if notable:
    print("\nFailures, errors, conventions and unsupported capabilities:", file=out)
    for r in notable:
      d = r.diagnosis
      where = f" [{d.location}]" if d.location else ""
      print(f"  {shown[r.label]} / {r.check} ({r.status.value}): {d.message}{where}", file=out)
  left = {r.label: r.diagnosis.extra["left_behind"] for r in results if r.diagnosis.extra.get("left_behind")}
  if left:
    print("\nLeft in their worker process, which was replaced before the next candidate:", file=out)
    for label, note in left.items():
      print(f"  {shown[label]}: {note}", file=out)
  n = counts(results)
  print("\n" + ", ".join(f"{k}: {n[k]}" for k in n), file=out)
