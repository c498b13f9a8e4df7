"""Reading the JSON of ``verify`` and ``bench`` into plain structures the renderers share."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks._report import BASELINES, entries
from verification.checks import CHECKS

#: The checks in the order ``python -m verification`` runs them; others follow in first-seen order.
CHECK_ORDER = tuple(CHECKS)
#: Cell kinds, in the order of the legend.
KINDS = ("pass", "fail", "convention", "error", "skip")
KIND_TEXT = {"pass": "ok", "fail": "FAIL", "convention": "conv", "error": "ERR", "skip": "skip"}
#: Diagnosis fields shown first, in this order; the rest of ``detail`` follows as JSON.
MAIN_FIELDS = ("message", "worst_input", "expected", "got", "tolerance", "dtype", "reason")


@dataclasses.dataclass(frozen=True)
class Verification:
  """One verification run (the reference, a target or a peer library)."""

  title: str
  target: str
  library: dict[str, Any] | None
  environment: dict[str, Any]
  results: tuple[dict[str, Any], ...]
  prefix: str  # anchor prefix, unique per run in a page

  @property
  def checks(self) -> list[str]:
    return ordered_checks(r["check"] for r in self.results)

  @property
  def labels(self) -> list[str]:
    return list(dict.fromkeys(r["label"] for r in self.results))

  @property
  def cells(self) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["label"], r["check"]): r for r in self.results}

  @property
  def anchors(self) -> dict[tuple[str, str], str]:
    return anchor_ids(self.prefix, [(r["label"], r["check"]) for r in self.results])


@dataclasses.dataclass(frozen=True)
class Bench:
  """One pytest-benchmark file: its run metadata and the ``extra_info`` of each benchmark."""

  name: str
  meta: dict[str, Any]
  rows: tuple[dict[str, Any], ...]

  @property
  def ops(self) -> list[str]:
    seen = list(dict.fromkeys(r["op"] for r in self.rows))
    known = [op for op in self.meta.get("ops", []) if op in seen]
    return known + [op for op in seen if op not in known]

  @property
  def tables(self) -> list[Table]:
    return [table(self, op) for op in self.ops]


@dataclasses.dataclass(frozen=True)
class Table:
  """Ratio and GB/s of one op: rows (surrogate, or 'surrogate [library]') × columns (dtype, log2 size)."""

  op: str
  baseline: str
  rows: list[str]
  columns: list[tuple[str, int]]
  ratio: dict[tuple[str, tuple[str, int]], float]
  gbps: dict[tuple[str, tuple[str, int]], float]
  baseline_gbps: dict[tuple[str, int], float]


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


def slug(text: str) -> str:
  """Lower-case letters, digits and single dashes: safe in an HTML id and a file name."""
  return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def ordered_checks(checks: Iterable[str]) -> list[str]:
  seen = list(dict.fromkeys(checks))
  return [c for c in CHECK_ORDER if c in seen] + [c for c in seen if c not in CHECK_ORDER]


def anchor_ids(prefix: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
  """A unique, readable id per (label, check), numbered where two labels slug alike."""
  out: dict[tuple[str, str], str] = {}
  used: set[str] = set()
  for label, check in keys:
    base = f"{prefix}-{slug(label)}-{slug(check)}"
    ident, n = base, 1
    while ident in used:
      n += 1
      ident = f"{base}-{n}"
    used.add(ident)
    out[(label, check)] = ident
  return out


def kind(result: dict[str, Any]) -> str:
  """The cell kind: a failure that is a convention difference is not counted as a defect."""
  status = result.get("status", "error")
  if status == "fail" and (result.get("detail") or {}).get("category") == "convention":
    return "convention"
  return status if status in KINDS else "error"


def counts(results: Iterable[dict[str, Any]]) -> dict[str, int]:
  tally = dict.fromkeys(KINDS, 0)
  for r in results:
    tally[kind(r)] += 1
  return tally


def diagnosis(detail: dict[str, Any]) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
  """(the main fields present, in order; everything else in ``detail``)."""
  main = [(k, detail[k]) for k in MAIN_FIELDS if k in detail]
  rest = {k: v for k, v in detail.items() if k not in MAIN_FIELDS and k != "candidate"}
  return main, rest


def as_text(value: Any) -> str:
  """A detail value as one line of text (JSON for containers)."""
  if isinstance(value, str):
    return value
  return json.dumps(value, ensure_ascii=False)


def load_verification(path: Path, prefix: str) -> Verification:
  doc = json.loads(path.read_text(encoding="utf-8"))
  library = doc.get("library")
  title = f"{library['name']} {library.get('version', '')}".strip() if library else str(doc.get("target", path.stem))
  return Verification(title=title, target=str(doc.get("target", "")), library=library,
                      environment=doc.get("environment") or {}, results=tuple(doc.get("results", [])),
                      prefix=prefix)


def load_peers(paths: Iterable[Path]) -> list[Verification]:
  """Peer runs sorted by library name and version (as text)."""
  runs = [load_verification(p, "peer") for p in paths]
  runs.sort(key=lambda v: (v.title.lower(), v.target))
  return [dataclasses.replace(v, prefix=f"peer-{slug(v.title)}-{i}") for i, v in enumerate(runs)]


# ---------------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------------


def load_bench(path: Path) -> Bench:
  doc = json.loads(path.read_text(encoding="utf-8"))
  meta = dict(doc.get("bench") or {})
  meta.setdefault("datetime", doc.get("datetime", ""))
  return Bench(name=path.stem, meta=meta, rows=tuple(entries(doc)))


def row_name(e: dict[str, Any]) -> str:
  lib = e.get("library", "surrogates")
  return e["surrogate"] if lib == "surrogates" else f"{e['surrogate']} [{lib}]"


def table(bench: Bench, op: str) -> Table:
  """The ratio / GB/s table of one op; rows sorted by name, columns by dtype (as run) then size."""
  rows = [e for e in bench.rows if e["op"] == op]
  dtypes = list(dict.fromkeys(e["dtype"] for e in rows))
  columns = sorted({(e["dtype"], int(e["log2_size"])) for e in rows}, key=lambda c: (dtypes.index(c[0]), c[1]))
  ratio = {(row_name(e), (e["dtype"], int(e["log2_size"]))): float(e["ratio"]) for e in rows}
  gbps = {(row_name(e), (e["dtype"], int(e["log2_size"]))): float(e["gbps"]) for e in rows}
  base: dict[tuple[str, int], list[float]] = {}
  for e in rows:
    base.setdefault((e["dtype"], int(e["log2_size"])), []).append(float(e["baseline_gbps"]))
  baseline_gbps = {c: sorted(v)[len(v) // 2] for c, v in base.items()}
  return Table(op=op, baseline=BASELINES.get(op, "baseline"), rows=sorted({row_name(e) for e in rows}),
               columns=columns, ratio=ratio, gbps=gbps, baseline_gbps=baseline_gbps)


def column_title(column: tuple[str, int]) -> str:
  return f"{column[0]} 2^{column[1]}"
