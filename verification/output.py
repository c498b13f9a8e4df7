"""Results for people and machines: console summary, JSON and JUnit XML."""

from __future__ import annotations

import json
import math
import platform
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from verification import numerics
from verification.runner import Result

SYMBOL = {"pass": "ok", "fail": "FAIL", "error": "ERR", "skip": "-", "convention": "conv", "unsupported": "unsup"}


def _clean(value: Any) -> Any:
  """JSON-safe: NaN/inf as strings, NumPy scalars as Python numbers."""
  if isinstance(value, dict):
    return {str(k): _clean(v) for k, v in value.items()}
  if isinstance(value, list | tuple):
    return [_clean(v) for v in value]
  if isinstance(value, np.generic):
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  return value


def environment() -> dict[str, Any]:
  return {
      "python": platform.python_version(),
      "jax": jax.__version__,
      "backend": jax.default_backend(),
      "devices": [str(d) for d in jax.devices()],
      "flushes_subnormals": numerics.flushes_subnormals(),
  }


def write_json(path: str, results: Sequence[Result], target: str, library: dict | None) -> None:
  doc = {"schema": 1, "target": target, "library": library, "environment": environment(),
         "results": [_clean(r.as_json()) for r in results]}
  with open(path, "w", encoding="utf-8") as f:
    json.dump(doc, f, indent=1, sort_keys=False, ensure_ascii=False)
    f.write("\n")


def write_junit(path: str, results: Sequence[Result], target: str) -> None:
  suite = ET.Element("testsuite", name=f"surrogate-verify:{target}", tests=str(len(results)),
                     failures=str(sum(r.status == "fail" for r in results)),
                     errors=str(sum(r.status == "error" for r in results)),
                     skipped=str(sum(r.status == "skip" for r in results)))
  for r in results:
    case = ET.SubElement(suite, "testcase", classname=r.label, name=r.check, time=f"{r.seconds:.3f}")
    text = json.dumps(_clean(r.detail), indent=1, ensure_ascii=False)
    if r.status in ("fail", "error"):
      tag = "failure" if r.status == "fail" else "error"
      ET.SubElement(case, tag, message=str(r.detail.get("message", ""))[:500]).text = text
    elif r.status == "skip":
      ET.SubElement(case, "skipped", message=str(r.detail.get("message", "")))
  ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def summary(results: Sequence[Result], checks: Sequence[str], out=sys.stdout) -> None:
  """A candidate × check table, then one line per failure with its diagnosis."""
  labels = list(dict.fromkeys(r.label for r in results))
  cell = {(r.label, r.check): r for r in results}
  width = max([len(s) for s in labels] + [9])
  cols = [max(len(c), 4) for c in checks]
  print("candidate".ljust(width), *(c.ljust(w) for c, w in zip(checks, cols, strict=True)), file=out)
  for label in labels:
    row = [SYMBOL[cell[(label, c)].status] if (label, c) in cell else "" for c in checks]
    print(label.ljust(width), *(s.ljust(w) for s, w in zip(row, cols, strict=True)), file=out)
  bad = [r for r in results if r.status in ("fail", "error")]
  counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "error", "skip")}
  if bad:
    print("\nFailures:", file=out)
    for r in bad:
      d = r.detail
      where = "" if d.get("worst_input") is None else (
          f" [x = {d['worst_input']!r}, expected {d.get('expected')!r}, got {d.get('got')!r}, "
          f"tolerance {d.get('tolerance')!r}{', ' + d['dtype'] if d.get('dtype') else ''}]")
      kind = " (convention)" if d.get("category") == "convention" else ""
      print(f"  {r.label} / {r.check}{kind}: {d.get('message', '')}{where}", file=out)
  print(f"\n{counts['pass']} passed, {counts['fail']} failed, {counts['error']} errors, {counts['skip']} skipped",
        file=out)
