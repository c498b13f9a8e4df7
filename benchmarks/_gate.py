"""The regression gate: the reference's ratios to their baselines now, against a saved run.

A ratio has regressed when the whole interquartile range of now lies above the saved one
(``q1_now > q3_saved``: the change is beyond the spread both runs measured) *and* its median grew by
more than ``threshold`` (a floor for a material change, 5% by default). A flagged ratio is measured
again, longer, up to :data:`ATTEMPTS` times, and counts only if it is flagged every time, so a burst of
load from another process does not fail the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

REFERENCE = "surrogates"
#: How often a flagged ratio is measured again before it counts as a regression.
ATTEMPTS = 2

Key = tuple[str, str, str, str, int]


def entries(doc: dict[str, Any]) -> list[dict[str, Any]]:
  """The extra_info of every benchmark in a pytest-benchmark JSON document."""
  return [b["extra_info"] for b in doc.get("benchmarks", []) if b.get("extra_info", {}).get("op")]


def key(e: dict[str, Any]) -> Key:
  return (e["op"], e["library"], e["surrogate"], e["dtype"], int(e["log2_size"]))


def _finite(v: Any) -> bool:
  return isinstance(v, int | float) and math.isfinite(v) and v > 0


def _quartiles(e: dict[str, Any]) -> tuple[float, float]:
  """(q1, q3) of a ratio; reports without quartiles give (ratio, ratio)."""
  q1, q3 = e.get("ratio_q1"), e.get("ratio_q3")
  return (q1, q3) if _finite(q1) and _finite(q3) else (e["ratio"], e["ratio"])


def regressed(now: dict[str, Any], saved: dict[str, Any], threshold: float) -> bool:
  """Whether ``now``'s ratio lies above ``saved``'s beyond both IQRs and by more than ``threshold``."""
  return _quartiles(now)[0] > _quartiles(saved)[1] and now["ratio"] / saved["ratio"] - 1.0 > threshold


def compare(current: Iterable[dict[str, Any]], baseline: Iterable[dict[str, Any]], threshold: float) -> dict[str, Any]:
  """Every reference benchmark present in both runs, and those that regressed (see the module docstring)."""
  before = {key(e): e for e in baseline if e.get("library") == REFERENCE and _finite(e.get("ratio"))}
  rows = []
  for e in current:
    k = key(e)
    if e.get("library") == REFERENCE and k in before and _finite(e.get("ratio")):
      old = before[k]
      rows.append({
          "key": list(k), "before": old["ratio"], "after": e["ratio"], "growth": e["ratio"] / old["ratio"] - 1.0,
          "before_iqr": list(_quartiles(old)), "after_iqr": list(_quartiles(e)),
          "regressed": regressed(e, old, threshold),
      })
  regressions = [r for r in rows if r.pop("regressed")]
  passed = bool(rows) and not regressions
  return {"threshold": threshold, "compared": len(rows), "regressions": regressions, "passed": passed}


def run_gate(current: list[dict[str, Any]], saved: list[dict[str, Any]], threshold: float,
             remeasure: Callable[[list], dict[str, Any]], attempts: int = ATTEMPTS) -> dict[str, Any]:
  """:func:`compare`, then each flagged ratio measured again with ``remeasure(key)`` up to ``attempts``
  times; it stays a regression only if every new measurement is flagged too."""
  gate = compare(current, saved, threshold)
  confirmed, cleared = [], []
  for row in gate["regressions"]:
    for _ in range(attempts):
      again = compare([remeasure(row["key"])], saved, threshold)
      row.setdefault("remeasured", []).append(again["regressions"][0]["after"] if again["regressions"] else None)
      if not again["regressions"]:
        cleared.append(row)
        break
    else:
      confirmed.append(row)
  passed = bool(gate["compared"]) and not confirmed
  return {**gate, "regressions": confirmed, "cleared_on_remeasure": cleared, "passed": passed}
