"""Reports of a benchmark run: the JSON document, its Markdown summary, the regression gate."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from benchmarks._gate import entries

REFERENCE = "surrogates"
CONTROL = "control"
#: The A/A control's median ratio must lie in this band (see ``_harness``).
AA_BAND = (0.97, 1.03)
#: Targets on the VJP ratio to the baseline, float32, largest size: by arithmetic class, and per
#: surrogate where the formula needs more (a Fourier series, three Gaussians).
TARGETS = {"polynomial": 1.1, "transcendental": 1.5}
TARGET_OVERRIDES = {"SquarewaveFourierSeries": 1.5, "MultiGaussianGrad": 2.0}
#: Kernels that must be at least as fast as a peer's: t_peer / t_reference with median >= 1.00 and the
#: IQR not below PEER_Q1 (VJP, float32, largest size).
PEER_TARGETS = {("braintools", n) for n in ("ERF", "GaussianGrad", "S2NN", "ReluGrad")}
PEER_Q1 = 0.98
#: A group separates two kernels this far apart when its A/A control's IQR is at most this wide (``_harness``).
RESOLUTION = 0.05
#: The layer benchmark's common surrogate (SuperSpike), the row the others are divided by.
LAYER_SURROGATE = "InvSquareGrad"


def surrogate_bench(doc: dict[str, Any], ops: tuple[str, ...], dtypes: tuple[str, ...]) -> dict[str, Any]:
  """The ``surrogate_bench`` key of the JSON: the op declarations of the run and the A/A control."""
  from benchmarks._ops import BY_NAME

  return {"ops": [BY_NAME[o].record(dtypes) for o in ops], "aa_control": aa_control(entries(doc))}


def aa_control(es: list[dict[str, Any]]) -> dict[str, Any]:
  """Per group, the A/A control's median ratio and quartiles; trustworthy when every median is in the band."""
  groups = [
      {"group": f"{e['op']}-{e['dtype']}-2^{e['log2_size']}", "ratio": e["ratio"], "q1": e["ratio_q1"],
       "q3": e["ratio_q3"], "passed": AA_BAND[0] <= e["ratio"] <= AA_BAND[1],
       "resolves": resolves(e), "copy_gbps": e.get("copy_gbps"), "baseline_copy_share": e.get("copy_share"),
       "host_overhead_s": e.get("host_overhead_s"), "device": e.get("device")}
      for e in es if e["library"] == CONTROL
  ]
  return {"band": list(AA_BAND), "resolution": RESOLUTION, "groups": groups,
          "trustworthy": bool(groups) and all(g["passed"] for g in groups)}


def resolves(e: dict[str, Any]) -> bool:
  """Whether an A/A control's IQR is narrow enough to tell apart kernels :data:`RESOLUTION` apart: two ratios
  that far apart, each with an IQR as wide, have IQRs that do not overlap."""
  return e["ratio_q3"] - e["ratio_q1"] <= RESOLUTION


def separated(a: dict[str, Any], b: dict[str, Any]) -> bool:
  """Two kernels of a group differ beyond the noise: their IQRs of paired ratios do not overlap."""
  return a["ratio_q3"] < b["ratio_q1"] or b["ratio_q3"] < a["ratio_q1"]


def load(path: str | Path) -> dict[str, Any]:
  with open(path) as fh:
    return json.load(fh)


def write(doc: dict[str, Any], out_dir: str | Path, device: str, stem: str = "bench") -> tuple[Path, Path]:
  """Writes ``<stem>-<device>.json`` and ``.md``; returns their paths."""
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  json_path, md_path = out / f"{stem}-{device}.json", out / f"{stem}-{device}.md"
  json_path.write_text(json.dumps(doc, separators=(",", ":"), default=str) + "\n")
  md_path.write_text(layer_markdown(doc) if stem == "layer" else markdown(doc))
  return json_path, md_path


def write_layer(doc: dict[str, Any], out_dir: str | Path, device: str) -> tuple[Path, Path]:
  return write(doc, out_dir, device, "layer")


# ------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------


def _fmt(v: float | None, digits: int = 2) -> str:
  return "" if v is None else f"{v:.{digits}f}"


def _us(v: float | None, scale: float = 1e6, digits: int = 1) -> str:
  """A host overhead; a negative one (a single call measured faster than the batch's average, which
  happens on the CPU, where the device is the host) is below the run's noise, not a time."""
  if v is None:
    return ""
  return f"below noise ({v * scale:.{digits}f})" if v < 0 else f"{v * scale:.{digits}f}"


def _share(v: float | None) -> str:
  return "" if v is None else f"{v:.0%}"


def _ratio(e: dict[str, Any]) -> str:
  """'1.02 (0.99–1.05)': the median ratio and its interquartile range."""
  return f"{e['ratio']:.2f} ({e['ratio_q1']:.2f}–{e['ratio_q3']:.2f})"


def _columns(es: list[dict[str, Any]]) -> list[tuple[str, int]]:
  return sorted({(e["dtype"], e["log2_size"]) for e in es}, key=lambda c: (c[0] != "float32", c[0], c[1]))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  return lines + ["| " + " | ".join(r) + " |" for r in rows]


def target_of(e: dict[str, Any]) -> float:
  return TARGET_OVERRIDES.get(e["surrogate"], TARGETS[e["arithmetic"]])


def target_rows(es: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
  """The VJP float32 entries at the largest size, with their target and whether they meet it."""
  vjp = [e for e in es if e["op"] == "vjp" and e["dtype"] == "float32" and e["library"] == REFERENCE]
  if not vjp:
    return "", []
  top = max(e["log2_size"] for e in vjp)
  rows = []
  for e in sorted((e for e in vjp if e["log2_size"] == top), key=lambda e: e["surrogate"]):
    rows.append({**e, "target": target_of(e), "met": e["ratio"] <= target_of(e)})
  return f"2^{top}", rows


def markdown(doc: dict[str, Any]) -> str:
  """A human summary: A/A control, targets, ratio tables per operation, compile times, peers, gate."""
  es = entries(doc)
  run = doc.get("bench", {})
  sb = doc.get("surrogate_bench", {})
  ops = sb.get("ops", [])
  ref = [e for e in es if e["library"] == REFERENCE]
  lines = [f"# Surrogate throughput: {run.get('device', '?')} ({run.get('device_kind', '?')})", ""]
  v = run.get("versions", {})
  lines += [
      f"{doc.get('datetime', '')}; " + ", ".join(f"{k} {val}" for k, val in v.items() if val) + ".",
      load_line(run),
      grid_line(run),
      "",
      "`ratio = t / t_baseline` per round, the baseline kernel moving the same bytes; median (IQR) over rounds."
      " A round times a batch of each back to back in a random order; a batch enqueues N calls back to back and"
      " waits once, on the last output, and the time per call is the batch's / N (N chosen so that a batch lasts"
      " at least 0.2 ms on the CPU, 2 ms on an accelerator): the device's time, not the host's. Each kernel writes"
      " into its own donated output buffers (nothing allocated in the timed call); on the CPU the last-level cache"
      " is scrubbed before each batch where the working set is smaller than twice its size. Baselines: "
      + ", ".join(f"{o['name']}: `{o['baseline']}`" for o in ops) + ". GB/s: bytes moved / median time per call;"
      " share: that / the copy bandwidth (`-x`, one array read and one written, measured in the run at the"
      " group's dtype and size). Host overhead: one call followed by a wait, minus the time per call.",
      "Every surrogate at its default parameters. Compile time is reported separately and not included."
      f" Two kernels differ beyond the noise when their IQRs do not overlap; a group whose A/A IQR is at most"
      f" {RESOLUTION:.2f} wide separates kernels {RESOLUTION:.0%} apart.",
      "",
  ]
  lines += aa_section(sb.get("aa_control"))
  where, targets = target_rows(es)
  if targets:
    lines += [f"## Targets: VJP ratio to `ct * x`, float32, {where}", ""]
    rows = [
        [
            e["surrogate"], e["arithmetic"], ", ".join(e["transcendental_ops"]), _ratio(e),
            f"<= {e['target']}", "yes" if e["met"] else "**no**", _fmt(e["gbps"], 1), _share(e.get("copy_share")),
            _fmt(e["comparator_gbps"], 1), _share(e.get("comparator_copy_share")),
        ]
        for e in targets
    ]
    header = ["surrogate", "arithmetic", "transcendental ops", "ratio (IQR)", "target", "met", "GB/s",
              "share of copy", "baseline GB/s", "baseline share"]
    lines += _table(header, rows)
    missed = [e["surrogate"] for e in targets if not e["met"]]
    lines += ["", f"{len(targets) - len(missed)} of {len(targets)} meet the target." + (
        f" Missed: {', '.join(missed)}." if missed else ""), ""]
  for o in ops:
    op = o["name"]
    sub = [e for e in ref if e["op"] == op]
    if not sub:
      continue
    cols = _columns(sub)
    by = {(e["surrogate"], e["dtype"], e["log2_size"]): e for e in sub}
    names = sorted({e["surrogate"] for e in sub})
    lines += [f"## {op}: ratio to baseline (`{o['baseline']}`)", ""]
    header = ["surrogate", *[f"{d} 2^{s}" for d, s in cols]]
    rows = [[n, *[_ratio(by[(n, d, s)]) if (n, d, s) in by else "" for d, s in cols]] for n in names]
    def column(key: str, c: tuple[str, int], sub: list[dict[str, Any]] = sub) -> list[float]:
      return [e[key] for e in sub if (e["dtype"], e["log2_size"]) == c and e.get(key) is not None]

    base = ["*baseline GB/s (share of copy)*", *[
        f"{_fmt(statistics.median(column('comparator_gbps', c)), 1)}"
        + (f" ({_share(statistics.median(column('comparator_copy_share', c)))})"
           if column("comparator_copy_share", c) else "") for c in cols]]
    copy = ["*copy GB/s*", *[_fmt(statistics.median(column("copy_gbps", c)), 1) if column("copy_gbps", c) else ""
                            for c in cols]]
    lines += [*_table(header, [*rows, base, copy]), ""]
  lines += traced_section(ref)
  lines += compile_section(ref, [o["name"] for o in ops])
  lines += peer_section(es, [o["name"] for o in ops])
  lines += gate_section(doc.get("gate"))
  lines += skipped_section(doc.get("skipped", []))
  return "\n".join(lines)


def skipped_section(skipped: list[dict[str, str]]) -> list[str]:
  """Skipped tests with their reasons ("not run on <device>: ..." for a peer that cannot use the device)."""
  if not skipped:
    return []
  return ["## Skipped or not run", ""] + [f"- `{s['test']}`: {s['reason']}" for s in skipped] + [""]


def grid_line(run: dict[str, Any]) -> str:
  """Which grid was run (``--smoke``, the default or ``--full``, and the options that changed it)."""
  text = run.get("grid_text")
  if not text:
    return "Grid: not recorded."
  hint = "" if run.get("grid") == "full" else " `--full` runs every op and dtype at the full sizes."
  return f"Grid: {text}.{hint}"


def load_line(run: dict[str, Any]) -> str:
  """CPUs and the load averages (1, 5, 15 min) at the start and the end of the run, as recorded."""
  def fmt(v: Any) -> str:
    return ", ".join(f"{x:.2f}" for x in v) if v else "unknown"

  parts = [f"at the start {fmt(run['load_average_start'])}"] if "load_average_start" in run else []
  end = run.get("load_average_end", run.get("load_average"))
  parts.append(f"at the end {fmt(end)}")
  return f"{run.get('cpus', '?')} CPUs; load average (1, 5, 15 min) {' and '.join(parts)}."


def aa_section(aa: dict[str, Any] | None) -> list[str]:
  """The A/A control per group, and the verdict on the run."""
  if not aa or not aa["groups"]:
    return []
  lo, hi = aa["band"]
  verdict = ("**passed**: every group's A/A median lies in the band" if aa["trustworthy"]
             else "**FAILED: this run is not trustworthy** (an A/A median lies outside the band)")
  resolution = aa.get("resolution", RESOLUTION)
  rows = [[g["group"], f"{g['ratio']:.3f} ({g['q1']:.2f}–{g['q3']:.2f})", "yes" if g["passed"] else "**no**",
           _fmt(g["q3"] - g["q1"], 3), "yes" if g.get("resolves") else "no", _fmt(g.get("copy_gbps"), 1),
           _share(g.get("baseline_copy_share")), _us(g.get("host_overhead_s"))]
          for g in aa["groups"]]
  header = ["group", "ratio (IQR)", "in band", "IQR width", f"separates {resolution:.0%}", "copy GB/s",
            "baseline share of copy", "host overhead (µs/call)"]
  return [f"## A/A control: the baseline against a copy of itself (median must lie in {lo}–{hi})", "",
          f"{verdict}. The IQR width is the group's resolution: kernels {resolution:.0%} apart are told apart"
          f" (IQRs that do not overlap) where it is at most {resolution:.2f}. The copy bandwidth is measured in the"
          " same run; the host overhead is what a single call and its wait add to the device's time per call.", "",
          *_table(header, rows), ""]


def traced_section(ref: list[dict[str, Any]]) -> list[str]:
  """The VJP with a static alpha next to the VJP with a traced per-element alpha, each as its ratio to its
  own same-bytes baseline (``ct * x``, ``ct * x * a``): what a learnable alpha costs beyond its bytes."""
  by = {(e["op"], e["surrogate"], e["dtype"], e["log2_size"]): e for e in ref}
  keys = sorted({k[1:] for k in by if k[0] == "vjp_alpha" and ("vjp", *k[1:]) in by})
  if not keys:
    return []
  rows = [[n, f"{d} 2^{s}", _ratio(by[("vjp", n, d, s)]), _ratio(by[("vjp_alpha", n, d, s)])] for n, d, s in keys]
  return ["## VJP: static alpha against a traced per-element alpha (ratios to each one's baseline)", "",
          *_table(["surrogate", "case", "static (`ct * x`)", "traced (`ct * x * a`)"], rows), ""]


def compile_section(ref: list[dict[str, Any]], ops: list[str]) -> list[str]:
  """Median compile time (s) per surrogate and operation."""
  if not ref:
    return []
  ops = [op for op in ops if any(e["op"] == op for e in ref)]
  names = sorted({e["surrogate"] for e in ref})
  rows = []
  for n in names:
    row = [n]
    for op in ops:
      ts = [e["compile_s"] for e in ref if e["surrogate"] == n and e["op"] == op]
      row.append(_fmt(statistics.median(ts), 3) if ts else "")
    rows.append(row)
  return ["## Compile time (s, median over sizes and dtypes)", "", *_table(["surrogate", *ops], rows), ""]


def slower(e: dict[str, Any]) -> bool:
  """The reference is slower than the peer beyond noise: the whole IQR of t_peer / t_reference below 1."""
  return e["ratio_q3"] < 1.0


def peer_target_met(e: dict[str, Any]) -> bool:
  """At least as fast as the peer: median t_peer / t_reference >= 1 and its IQR not below :data:`PEER_Q1`."""
  return e["ratio"] >= 1.0 and e["ratio_q1"] >= PEER_Q1


def peer_section(es: list[dict[str, Any]], ops: list[str]) -> list[str]:
  """``t_peer / t_reference`` per peer, surrogate and case (> 1: the reference is faster)."""
  peers = [e for e in es if e["library"] not in (REFERENCE, CONTROL)]
  if not peers:
    return []
  lines = ["## Peers: `t_peer / t_reference`, median (IQR) over paired rounds (> 1: the reference is faster)", "",
            "Every peer ran on the device in its row (the reference's, in the same run).", ""]
  by = {(e["library"], e["surrogate"], e["op"], e["dtype"], e["log2_size"]): e for e in peers}
  for op in (op for op in ops if any(e["op"] == op for e in peers)):
    sub = [e for e in peers if e["op"] == op]
    cols = _columns(sub)
    groups = sorted({(e["library"], e["surrogate"]) for e in sub})
    devices = {(e["library"], e["surrogate"]): _device(e) for e in sub}
    rows = [
        [lib, n, devices[(lib, n)],
         *[_ratio(by[(lib, n, op, d, s)]) if (lib, n, op, d, s) in by else "" for d, s in cols]]
        for lib, n in groups
    ]
    lines += [f"### {op}", "", *_table(["library", "surrogate", "device", *[f"{d} 2^{s}" for d, s in cols]], rows),
              ""]
  found = sorted({f"{k[0]}:{k[1]} {k[2]} {k[3]} 2^{k[4]}" for k, e in by.items() if slower(e)})
  verdict = ", ".join(found) if found else "none"
  lines += [f"Reference slower than the peer beyond noise (the whole IQR below 1) in: {verdict}.", ""]
  vjp = [e for e in peers if e["op"] == "vjp" and e["dtype"] == "float32" and (e["library"], e["surrogate"])
         in PEER_TARGETS]
  if vjp:
    top = max(e["log2_size"] for e in vjp)
    rows = [[e["library"], e["surrogate"], _ratio(e), "yes" if peer_target_met(e) else "**no**"]
            for e in sorted(vjp, key=lambda e: (e["library"], e["surrogate"])) if e["log2_size"] == top]
    lines += [f"### Targets: at least as fast as the peer (VJP, float32, 2^{top}; median >= 1.00, q1 >= {PEER_Q1})",
              "", *_table(["library", "surrogate", "t_peer / t_reference", "met"], rows), ""]
  return lines


def _device(e: dict[str, Any]) -> str:
  """'gpu (NVIDIA H200)', or the platform alone where the kind says nothing more."""
  device, kind = e.get("device", "?"), e.get("device_kind")
  return device if not kind or kind == device else f"{device} ({kind})"


def gate_section(gate: dict[str, Any] | None) -> list[str]:
  if not gate:
    return []
  head = f"## Regression gate against `{gate.get('against')}` (growth > {gate['threshold']:.0%} beyond both IQRs)"
  cleared = len(gate.get("cleared_on_remeasure", []))
  verdict = ("passed" if gate["passed"] else "**failed**") + (
      f"; {cleared} flagged ratios were within the threshold when measured again" if cleared else "")
  lines = [head, "", f"{gate['compared']} ratios compared: {verdict}.", ""]
  if gate["regressions"]:
    rows = [[" ".join(map(str, r["key"])), _fmt(r["before"]), _fmt(r["after"]), f"{r['growth']:+.0%}"]
            for r in gate["regressions"]]
    lines += [*_table(["benchmark", "ratio before", "ratio now", "growth"], rows), ""]
  return lines


def layer_markdown(doc: dict[str, Any]) -> str:
  """The layer benchmark: one row per library and surrogate, milliseconds per call and the ratio to the
  reference's row of the same neurons, steps and pass."""
  es = [b["extra_info"] for b in doc.get("benchmarks", []) if b.get("extra_info", {}).get("layer")]
  run = doc.get("bench", {})
  lines = [
      f"# Layer benchmark: Linear + LIF, {run.get('device', '?')} ({run.get('device_kind', '?')})", "",
      f"{doc.get('datetime', '')}; " + ", ".join(f"{k} {v}" for k, v in run.get("versions", {}).items() if v) + ".",
      load_line(run), grid_line(run), "",
  ]
  if es:
    lines += [es[0]["equations"], "",
              f"Each row is timed in rounds paired, in a random order, with the reference row of its group"
              f" ({LAYER_SURROGATE}); the reference row's own ratio is against a second build of itself, an A/A"
              " control: its spread is the noise of the run. A round times a batch of passes of each, enqueued back to"
              " back with one wait at the end (at least 10 ms), the time per pass the batch's / N; the host overhead"
              " is one pass and its wait minus that. Each row ran on the device it names; a library that cannot use"
              " the run's device is listed under Skipped or not run, not timed elsewhere.", ""]
  rows = []
  for e in sorted(es, key=lambda e: (e["neurons"], e["steps"], e["pass"], e["library"] != REFERENCE, e["library"],
                                     e["surrogate"])):
    ratio = _ratio(e) if "ratio_q1" in e else ""
    overhead = e.get("host_overhead_s")
    rows.append([e["library"], e["surrogate"], e["loop"], _device(e) if "device" in e else "", str(e["neurons"]),
                 str(e["steps"]), str(e["batch"]), e["pass"],
                 f"{e['median_s'] * 1e3:.2f} ({e['q1_s'] * 1e3:.2f}–{e['q3_s'] * 1e3:.2f})", ratio,
                 _us(overhead, 1e3, 2)])
  header = ["library", "surrogate", "loop", "device", "neurons", "T", "batch", "pass", "ms, median (IQR)",
            f"t / t_reference ({LAYER_SURROGATE}), paired rounds, median (IQR)", "host overhead (ms/pass)"]
  lines += [*_table(header, rows), ""]
  lines += skipped_section(doc.get("skipped", []))
  return "\n".join(lines)

