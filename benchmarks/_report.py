"""Reports of a benchmark run: the JSON document, its Markdown summary, the regression gate."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REFERENCE = "surrogates"
#: Targets on the VJP ratio to the baseline, by arithmetic class (float32, largest CPU size).
#: Saved ratios below this are compared as this (see :func:`compare`).
FLOOR = 1.0
#: A peer ratio below this counts as the reference being slower (10%: the usual noise band).
SLOWER = 0.9
TARGETS = {"polynomial": 1.1, "transcendental": 2.0}
BASELINES = {
    "fwd": "x * 0.5",
    "vjp": "ct * x",
    "jvp": "(x * 0.5, x * t)",
    "vmap_grad": "x * 0.5",
    "lif": "straight-through LIF",
}

Key = tuple[str, str, str, str, int]


def entries(doc: dict[str, Any]) -> list[dict[str, Any]]:
  """The extra_info of every benchmark in a pytest-benchmark JSON document."""
  return [b["extra_info"] for b in doc.get("benchmarks", []) if b.get("extra_info", {}).get("op")]


def key(e: dict[str, Any]) -> Key:
  return (e["op"], e["library"], e["surrogate"], e["dtype"], int(e["log2_size"]))


def compare(current: Iterable[dict[str, Any]], baseline: Iterable[dict[str, Any]], threshold: float) -> dict[str, Any]:
  """Ratios to the baseline kernel, now against a saved run: a regression is a ratio grown by more
  than ``threshold`` (0.25 = 25%). Only the reference's benchmarks present in both are compared.

  Both estimates of a ratio must have grown, the paired median (``ratio``) and the ratio of the
  fastest rounds (``ratio_of_mins``, where both runs have it): a slower formula raises both, a burst
  of load from another process rarely does. Saved ratios below ``FLOOR`` count as ``FLOOR``: a kernel
  that moves the same bytes cannot beat the baseline by much, so such a value is a disturbed
  baseline measurement.
  """
  before = {key(e): e for e in baseline if e.get("library") == REFERENCE and _finite(e.get("ratio"))}
  rows = []
  for e in current:
    k = key(e)
    if e.get("library") == REFERENCE and k in before and _finite(e.get("ratio")):
      old = before[k]
      growth = e["ratio"] / max(old["ratio"], FLOOR) - 1.0
      if _finite(e.get("ratio_of_mins")) and _finite(old.get("ratio_of_mins")):
        growth = min(growth, e["ratio_of_mins"] / max(old["ratio_of_mins"], FLOOR) - 1.0)
      rows.append({"key": list(k), "before": old["ratio"], "after": e["ratio"], "growth": growth})
  regressions = [r for r in rows if r["growth"] > threshold]
  passed = bool(rows) and not regressions
  return {"threshold": threshold, "compared": len(rows), "regressions": regressions, "passed": passed}


def _finite(v: Any) -> bool:
  return isinstance(v, int | float) and math.isfinite(v) and v > 0


def load(path: str | Path) -> dict[str, Any]:
  with open(path) as fh:
    return json.load(fh)


def write(doc: dict[str, Any], out_dir: str | Path, device: str) -> tuple[Path, Path]:
  """Writes ``bench-<device>.json`` and ``bench-<device>.md``; returns their paths."""
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  json_path, md_path = out / f"bench-{device}.json", out / f"bench-{device}.md"
  json_path.write_text(json.dumps(doc, separators=(",", ":"), default=str) + "\n")
  md_path.write_text(markdown(doc))
  return json_path, md_path


# ------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------


def _fmt(v: float | None, digits: int = 2) -> str:
  return "" if v is None else f"{v:.{digits}f}"


def _columns(es: list[dict[str, Any]]) -> list[tuple[str, int]]:
  return sorted({(e["dtype"], e["log2_size"]) for e in es}, key=lambda c: (c[0] != "float32", c[0], c[1]))


def _label(op: str, dtype: str, log2: int) -> str:
  return f"{dtype} 2^{log2}" + (" neurons" if op == "lif" else "")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  return lines + ["| " + " | ".join(r) + " |" for r in rows]


def target_rows(es: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
  """The VJP float32 entries at the largest size, with their target and whether they meet it."""
  vjp = [e for e in es if e["op"] == "vjp" and e["dtype"] == "float32" and e["library"] == REFERENCE]
  if not vjp:
    return "", []
  top = max(e["log2_size"] for e in vjp)
  rows = []
  for e in sorted((e for e in vjp if e["log2_size"] == top), key=lambda e: e["surrogate"]):
    target = TARGETS[e["arithmetic"]]
    rows.append({**e, "target": target, "met": e["ratio"] <= target})
  return f"2^{top}", rows


def markdown(doc: dict[str, Any]) -> str:
  """A human summary: targets, ratio tables per operation, GB/s, compile times, peers, gate."""
  es = entries(doc)
  run = doc.get("bench", {})
  ref = [e for e in es if e["library"] == REFERENCE]
  lines = [f"# Surrogate throughput: {run.get('device', '?')} ({run.get('device_kind', '?')})", ""]
  v = run.get("versions", {})
  lines += [
      f"{doc.get('datetime', '')}; " + ", ".join(f"{k} {val}" for k, val in v.items() if val) + ".",
      "",
      "`ratio = t_surrogate / t_baseline`, the median over rounds, the baseline kernel (same bytes moved) timed"
      " right before each of the surrogate's rounds: " + ", ".join(f"{op}: `{b}`" for op, b in BASELINES.items())
      + ". GB/s: bytes moved / median time.",
      f"Every surrogate at its default parameters. LIF: {run.get('lif_steps', 100)} time steps, size = neurons"
      " × steps. Compile time is reported separately and not included.",
      "",
  ]
  where, targets = target_rows(es)
  if targets:
    lines += [f"## Targets: VJP ratio to `ct * x`, float32, {where}", ""]
    rows = [
        [
            e["surrogate"], e["arithmetic"], ", ".join(e["transcendental_ops"]), _fmt(e["ratio"]),
            f"<= {e['target']}", "yes" if e["met"] else "**no**", _fmt(e["gbps"], 1), _fmt(e["baseline_gbps"], 1),
        ]
        for e in targets
    ]
    header = ["surrogate", "arithmetic", "transcendental ops", "ratio", "target", "met", "GB/s", "baseline GB/s"]
    lines += _table(header, rows)
    missed = [e["surrogate"] for e in targets if not e["met"]]
    lines += ["", f"{len(targets) - len(missed)} of {len(targets)} meet the target." + (
        f" Missed: {', '.join(missed)}." if missed else ""), ""]
  for op in BASELINES:
    sub = [e for e in ref if e["op"] == op]
    if not sub:
      continue
    cols = _columns(sub)
    by = {(e["surrogate"], e["dtype"], e["log2_size"]): e for e in sub}
    names = sorted({e["surrogate"] for e in sub})
    lines += [f"## {op}: ratio to baseline (`{BASELINES[op]}`)", ""]
    header = ["surrogate", *[_label(op, d, s) for d, s in cols]]
    rows = [[n, *[_fmt(by[(n, d, s)]["ratio"]) if (n, d, s) in by else "" for d, s in cols]] for n in names]
    base = ["*baseline GB/s*", *[_fmt(next(by[(n, d, s)]["baseline_gbps"] for n in names if (n, d, s) in by), 1)
                                 for d, s in cols]]
    lines += [*_table(header, [*rows, base]), ""]
  lines += compile_section(ref)
  lines += peer_section(es)
  lines += gate_section(doc.get("gate"))
  skipped = doc.get("skipped", [])
  if skipped:
    lines += ["## Skipped", ""] + [f"- `{s['test']}`: {s['reason']}" for s in skipped] + [""]
  return "\n".join(lines)


def compile_section(ref: list[dict[str, Any]]) -> list[str]:
  """Median compile time (s) per surrogate and operation."""
  if not ref:
    return []
  ops = [op for op in BASELINES if any(e["op"] == op for e in ref)]
  names = sorted({e["surrogate"] for e in ref})
  rows = []
  for n in names:
    row = [n]
    for op in ops:
      ts = sorted(e["compile_s"] for e in ref if e["surrogate"] == n and e["op"] == op)
      row.append(_fmt(ts[len(ts) // 2], 3) if ts else "")
    rows.append(row)
  return ["## Compile time (s, median over sizes and dtypes)", "", *_table(["surrogate", *ops], rows), ""]


def peer_section(es: list[dict[str, Any]]) -> list[str]:
  """``t_peer / t_reference`` per peer, surrogate and case (> 1: the reference is faster)."""
  peers = [e for e in es if e["library"] != REFERENCE]
  if not peers:
    return []
  lines = ["## Peers: `t_peer / t_reference` (> 1: the reference is faster)", ""]
  by = {(e["library"], e["surrogate"], e["op"], e["dtype"], e["log2_size"]): e for e in peers}
  for op in (op for op in BASELINES if any(e["op"] == op for e in peers)):
    sub = [e for e in peers if e["op"] == op]
    cols = _columns(sub)
    groups = sorted({(e["library"], e["surrogate"]) for e in sub})
    rows = [
        [lib, n, *[_fmt(by[(lib, n, op, d, s)]["peer_ratio"]) if (lib, n, op, d, s) in by else "" for d, s in cols]]
        for lib, n in groups
    ]
    lines += [f"### {op}", "", *_table(["library", "surrogate", *[_label(op, d, s) for d, s in cols]], rows), ""]
  slower = sorted({f"{k[0]}:{k[1]} {k[2]}" for k, e in by.items() if e["peer_ratio"] < SLOWER})
  verdict = ", ".join(slower) if slower else "none"
  lines += [f"Reference slower than the peer beyond noise (ratio < {SLOWER}) in: {verdict}.", ""]
  return lines


def gate_section(gate: dict[str, Any] | None) -> list[str]:
  if not gate:
    return []
  head = f"## Regression gate against `{gate.get('against')}` (threshold {gate['threshold']:.0%})"
  cleared = len(gate.get("cleared_on_remeasure", []))
  verdict = ("passed" if gate["passed"] else "**failed**") + (
      f"; {cleared} flagged ratios were within the threshold when measured again" if cleared else "")
  lines = [head, "", f"{gate['compared']} ratios compared: {verdict}.", ""]
  if gate["regressions"]:
    rows = [[" ".join(map(str, r["key"])), _fmt(r["before"]), _fmt(r["after"]), f"{r['growth']:+.0%}"]
            for r in gate["regressions"]]
    lines += [*_table(["benchmark", "ratio before", "ratio now", "growth"], rows), ""]
  return lines
