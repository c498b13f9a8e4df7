"""The page and its Markdown twin: warnings, verification matrix, diagnoses, peer conformance, benchmarks, plots.

Every function here is pure: it takes the loaded inputs (:class:`reports.data.Inputs`) and the image
paths and returns text. Status names, symbols and descriptions come from
:mod:`verification.results` (``Status.symbol``, ``ORDER``, ``DESCRIPTIONS``); a cell's CSS class is
its status value.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence

from verification.results import DESCRIPTIONS, ORDER, Result, Status, counts

from .data import Bench, Inputs, Source, Table, Verification, as_text, column_title, diagnosis

TITLE = "Surrogate gradients: verification and benchmarks"
PLOT_CAPTION = (
  "One row per candidate: its g(x) and P(x) (solid) over the reference's (dashed), and |g − reference g| on a log "
  "scale (an exact match is drawn at 1e-18). Shaded red: where |g − reference g| exceeds 1e-3 of the reference's "
  "peak (a difference visible at the plot's resolution; dotted on the right); red lines: the worst inputs of the "
  "candidate's failing checks. Curves are sampled in float64 by the verification run."
)
CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 78em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.15em 0.5em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.cell { text-align: center; }
td.cell a { display: block; color: inherit; text-decoration: none; }
.pass { background: #d4edda; } .fail { background: #f5a3a3; font-weight: bold; }
.convention { background: #ffe8a1; font-style: italic; } .error { background: #d6b4e8; font-weight: bold; }
.unsupported { background: #b9d7f5; } .skip { background: #eee; color: #777; }
.diag { border-left: 4px solid #ccc; margin: 0.6em 0; padding: 0.2em 0.8em; }
.diag.fail { border-color: #c62828; background: none; font-weight: normal; }
.diag.convention { border-color: #e0a800; background: none; font-style: normal; }
.diag.error { border-color: #7b1fa2; background: none; font-weight: normal; }
.diag.unsupported { border-color: #1565c0; background: none; }
.diag.pass, .diag.skip { background: none; color: inherit; }
.diag:target { background: #fff8d0; }
.warnings { border: 2px solid #c62828; background: #fdecea; padding: 0.3em 1em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; margin: 0.3em 0; }
dt { color: #555; } dd { margin: 0; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
.note { color: #555; }
""".strip()


def esc(value: object) -> str:
  return html.escape(str(value), quote=True)


def count_text(v: Verification) -> str:
  c = counts(v.results)
  return (f"{len(v.labels)} candidates × {len(v.checks)} checks: "
          + ", ".join(f"{c[s]} {s.symbol}" for s in ORDER))


def conformance_row(v: Verification) -> list[str]:
  """Library, version, candidates, counts per status, surrogates with no defect or error."""
  c = counts(v.results)
  bad = {r.surrogate for r in v.results if r.failing}
  names = list(dict.fromkeys(r.surrogate for r in v.results))
  clean = sum(n not in bad for n in names)
  lib = v.library or {}
  return [str(lib.get("name", v.target)), str(lib.get("version", "")), str(len(v.labels)),
          *(str(c[s]) for s in ORDER), f"{clean} of {len(names)}"]


CONFORMANCE_HEADER = ["library", "version", "candidates", *(s.symbol for s in ORDER), "surrogates without defects"]


def curves_note(v: Verification) -> str | None:
  """Why a run has no plots: it carries no curves (written before schema 2, or without them)."""
  if v.curves:
    return None
  return (f"No plots: {', '.join(s.path for s in v.sources) or 'this run'} carries no curves of g and P "
          f"(schema version {v.run.schema_version}); rerun nox -s verify to draw the candidates over the reference.")


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool] = ()) -> str:
  """A table from already-escaped cells; columns flagged numeric are right-aligned."""
  head = "".join(f"<th>{h}</th>" for h in header)
  body = []
  for row in rows:
    cells = "".join(f'<td class="num">{c}</td>' if i < len(numeric) and numeric[i] else f"<td>{c}</td>"
                    for i, c in enumerate(row))
    body.append(f"<tr>{cells}</tr>")
  return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def html_legend() -> str:
  items = "".join(f'<td class="cell {s.value}">{esc(s.symbol)}</td><td>{esc(DESCRIPTIONS[s])}</td>' for s in ORDER)
  return f'<table class="legend"><tr>{items}</tr></table>'


def html_warnings(inputs: Inputs) -> str:
  """Inputs left out and inputs older than the code, above everything else."""
  lines = [f"Not read: {p.line}" for p in inputs.problems] + list(inputs.warnings)
  if not lines:
    return ""
  items = "\n".join(f"<li>{esc(line)}</li>" for line in lines)
  return f'<div class="warnings" id="warnings"><strong>Warnings</strong>\n<ul>\n{items}\n</ul>\n</div>'


def html_sources(sources: Sequence[Source]) -> str:
  if not sources:
    return ""
  items = "".join(f"<li>{esc(s.describe())}</li>" for s in sources)
  return f'<p class="note">Input:</p><ul class="sources note">{items}</ul>'


def html_matrix(v: Verification) -> str:
  cells, anchors = v.cells, v.anchors
  head = "<th>candidate</th>" + "".join(f"<th>{esc(c)}</th>" for c in v.checks)
  rows = []
  for label in v.labels:
    tds = [f"<td>{esc(label)}</td>"]
    for check in v.checks:
      r = cells.get((label, check))
      if r is None:
        tds.append("<td></td>")
        continue
      link = f'<a href="#{anchors[(label, check)]}" title="{esc(r.message)}">{esc(r.status.symbol)}</a>'
      tds.append(f'<td class="cell {r.status.value}">{link}</td>')
    rows.append("<tr>" + "".join(tds) + "</tr>")
  return f'<table class="matrix">\n<thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(rows) + "\n</tbody>\n</table>"


def html_diagnosis(r: Result, ident: str) -> str:
  main, rest = diagnosis(r)
  fields = "".join(f"<dt>{esc(name.replace('_', ' '))}</dt><dd>{esc(as_text(value))}</dd>" for name, value in main)
  extra = ""
  if rest:
    text = json.dumps(rest, indent=1, ensure_ascii=False)
    extra = f"<details><summary>all details</summary><pre>{esc(text)}</pre></details>"
  return (f'<div class="diag {r.status.value}" id="{ident}"><strong>{esc(r.label)} / {esc(r.check)}</strong>: '
          f"{esc(r.status.symbol)}<dl>{fields}</dl>{extra}</div>")


def html_diagnoses(v: Verification) -> str:
  anchors = v.anchors
  return "\n".join(html_diagnosis(r, anchors[(r.label, r.check)]) for r in v.results)


def html_environment(v: Verification) -> str:
  lib = f"{v.library.get('name', '')} {v.library.get('version', '')}" if v.library else "—"
  extra = [(f"library {k}", as_text(val)) for k, val in (v.library or {}).items() if k not in ("name", "version")]
  rows = [("target", v.target), ("library", lib), *extra, *((k, as_text(val)) for k, val in v.environment.items())]
  body = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(val)}</td></tr>" for k, val in rows)
  return f'<table class="environment">\n{body}\n</table>'


def html_verification(v: Verification | None, source: str) -> str:
  if v is None:
    return (f'<h2 id="verification">Verification</h2>\n<p class="note">No verification results from {esc(source)} '
            "(write them with <code>nox -s verify</code>).</p>")
  return "\n".join([
    '<h2 id="verification">Verification</h2>',
    html_sources(v.sources), html_environment(v), f"<p>{esc(count_text(v))}.</p>", html_legend(),
    "<p>Each cell links to its diagnosis below.</p>", html_matrix(v),
    '<h3 id="diagnoses">Diagnoses</h3>', html_diagnoses(v),
  ])


def html_peers(peers: Sequence[Verification], source: str) -> str:
  if not peers:
    return (f'<h2 id="peers">Peer conformance</h2>\n<p class="note">No peer results ({esc(source)} matched no '
            "readable file).</p>")
  rows = [[f'<a href="#{p.prefix}">{esc(cell)}</a>' if i == 0 else esc(cell)
           for i, cell in enumerate(conformance_row(p))] for p in peers]
  parts = ['<h2 id="peers">Peer conformance</h2>', html_legend(),
           html_table([esc(h) for h in CONFORMANCE_HEADER], rows, [False, False, *([True] * (len(ORDER) + 2))])]
  for p in peers:
    parts += [f'<h3 id="{p.prefix}">{esc(p.title)}</h3>', html_sources(p.sources), html_environment(p),
              f"<p>{esc(count_text(p))}.</p>", html_matrix(p),
              f'<h4 id="{p.prefix}-diagnoses">Diagnoses: {esc(p.title)}</h4>', html_diagnoses(p)]
  return "\n".join(parts)


def bench_cell(t: Table, row: str, column: tuple[str, int]) -> tuple[str, str]:
  """(ratio, GB/s) as text, blank where missing."""
  ratio, gbps = t.ratio.get((row, column)), t.gbps.get((row, column))
  return ("" if ratio is None else f"{ratio:.2f}", "" if gbps is None else f"{gbps:.3g}")


def bench_rows(t: Table) -> list[list[str]]:
  """Plain-text rows: 'ratio (GB/s)' per column, then the baseline's GB/s."""
  rows = []
  for name in t.rows:
    cells = [bench_cell(t, name, c) for c in t.columns]
    rows.append([name, *(f"{r} ({g})" if r else "" for r, g in cells)])
  rows.append(["baseline GB/s", *(f"{t.baseline_gbps[c]:.3g}" if c in t.baseline_gbps else "" for c in t.columns)])
  return rows


def bench_meta(b: Bench) -> str:
  versions = ", ".join(f"{k} {v}" for k, v in sorted((b.meta.get("versions") or {}).items()))
  device = b.meta.get("device", "")
  kind = b.meta.get("device_kind", "")
  return f"device {device} ({kind}); {b.meta.get('datetime', '')}; {versions}"


def html_bench(benches: Sequence[Bench], images: dict[tuple[str, str], str], source: str) -> str:
  if not benches:
    return (f'<h2 id="benchmarks">Benchmarks</h2>\n<p class="note">No benchmark results ({esc(source)} matched no '
            "readable file).</p>")
  parts = ['<h2 id="benchmarks">Benchmarks</h2>',
           "<p>Cells: time ratio to the baseline kernel moving the same bytes (below 1 is faster), and GB/s in "
           "parentheses.</p>"]
  for b in benches:
    parts += [f'<h3 id="bench-{esc(b.name)}">{esc(b.name)}</h3>', html_sources([b.source] if b.source else []),
              f"<p>{esc(bench_meta(b))}</p>", *([f"<p>{esc(b.control)}.</p>"] if b.control else [])]
    for t in b.tables:
      parts.append(f"<h4>{esc(t.op)}: baseline <code>{esc(t.baseline)}</code></h4>")
      if (b.name, t.op) in images:
        src = images[(b.name, t.op)]
        parts.append(f'<p><img src="{esc(src)}" alt="{esc(b.name)} {esc(t.op)} throughput"></p>')
      header = ["surrogate", *(column_title(c) for c in t.columns)]
      parts.append(html_table([esc(h) for h in header], [[esc(c) for c in row] for row in bench_rows(t)],
                              [False, *([True] * len(t.columns))]))
  return "\n".join(parts)


def html_surrogates(v: Verification | None, images: Sequence[tuple[str, str]]) -> str:
  if v is None:
    return ""
  parts = ['<h2 id="surrogates">Surrogates</h2>']
  note = curves_note(v)
  if note:
    return "\n".join([*parts, f'<p class="note">{esc(note)}</p>'])
  parts.append(f"<p>{esc(PLOT_CAPTION)}</p>")
  for name, src in images:
    parts += [f'<h3 id="surrogate-{esc(name)}">{esc(name)}</h3>',
              f'<p><img src="{esc(src)}" alt="{esc(name)}: the candidates over the reference"></p>']
  return "\n".join(parts)


def page(inputs: Inputs, surrogate_images: Sequence[tuple[str, str]], bench_images: dict[tuple[str, str], str]) -> str:
  """The whole static page (no scripts; images by relative path)."""
  sections = (("verification", "Verification"), ("peers", "Peer conformance"), ("benchmarks", "Benchmarks"),
              ("surrogates", "Surrogates"))
  nav = " · ".join(f'<a href="#{i}">{t}</a>' for i, t in sections if i != "surrogates" or inputs.verify)
  body = "\n".join(part for part in [
    f"<h1>{esc(TITLE)}</h1>", f"<p>{nav}</p>", html_warnings(inputs),
    html_verification(inputs.verify, inputs.asked["verify"]),
    html_peers(inputs.peers, inputs.asked["peers"]),
    html_bench(inputs.benches, bench_images, inputs.asked["bench"]),
    html_surrogates(inputs.verify, surrogate_images),
  ] if part)
  return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(TITLE)}</title>\n'
          f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<style>\n{CSS}\n</style>\n'
          f"</head>\n<body>\n{body}\n</body>\n</html>\n")


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def md(value: object) -> str:
  """Text safe inside Markdown (and its table cells): HTML escaped, Markdown punctuation backslashed."""
  text = html.escape(str(value), quote=False).replace("\n", " ")
  return re.sub(r"([\\`*_\[\]|#{}!~])", r"\\\1", text)


def md_symbol(status: Status) -> str:
  """A status in a Markdown table: its symbol, in bold where it fails a run."""
  return f"**{status.symbol}**" if status.failing else status.symbol


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(row) + " |" for row in rows]
  return "\n".join(lines)


def md_matrix(v: Verification) -> str:
  cells, anchors = v.cells, v.anchors
  rows = []
  for label in v.labels:
    row = [md(label)]
    for check in v.checks:
      r = cells.get((label, check))
      row.append(f"[{md_symbol(r.status)}](#{anchors[(label, check)]})" if r else "")
    rows.append(row)
  return md_table(["candidate", *(md(c) for c in v.checks)], rows)


def md_diagnoses(v: Verification) -> str:
  anchors = v.anchors
  out = []
  for r in v.results:
    main, _ = diagnosis(r)
    out.append(f'<a id="{anchors[(r.label, r.check)]}"></a>\n**{md(r.label)} / {md(r.check)}**: {r.status.symbol}\n')
    out += [f"- {md(name.replace('_', ' '))}: {md(as_text(value))}" for name, value in main]
    out.append("")
  return "\n".join(out)


def md_legend() -> str:
  return "Legend: " + "; ".join(f"{s.symbol} = {md(DESCRIPTIONS[s])}" for s in ORDER) + "."


def md_warnings(inputs: Inputs) -> list[str]:
  lines = [f"Not read: {p.line}" for p in inputs.problems] + list(inputs.warnings)
  if not lines:
    return []
  return ["**Warnings**", "", *(f"- {md(line)}" for line in lines), ""]


def md_sources(sources: Sequence[Source]) -> list[str]:
  if not sources:
    return []
  return ["Input:", "", *(f"- {md(s.describe())}" for s in sources), ""]


def markdown(inputs: Inputs, surrogate_images: Sequence[tuple[str, str]],
             bench_images: dict[tuple[str, str], str]) -> str:
  verify, peers, benches = inputs.verify, inputs.peers, inputs.benches
  out = [f"# {TITLE}", "", *md_warnings(inputs), "## Verification", ""]
  if verify is None:
    out += [f"No verification results from {md(inputs.asked['verify'])}.", ""]
  else:
    lib = verify.library or {}
    out += [*md_sources(verify.sources),
            f"Target: {md(verify.target)}" + (f" ({md(lib.get('name'))} {md(lib.get('version'))})" if lib else ""),
            "", md(count_text(verify)), "", md_legend(), "", md_matrix(verify), "", "### Diagnoses", "",
            md_diagnoses(verify)]
  out += ["## Peer conformance", ""]
  if not peers:
    out += [f"No peer results ({md(inputs.asked['peers'])} matched no readable file).", ""]
  else:
    out += [md_table([md(h) for h in CONFORMANCE_HEADER], [[md(c) for c in conformance_row(p)] for p in peers]), ""]
    for p in peers:
      out += [f'<a id="{p.prefix}"></a>', f"### {md(p.title)}", "", *md_sources(p.sources), md(count_text(p)), "",
              md_matrix(p), "", md_diagnoses(p)]
  out += ["## Benchmarks", ""]
  if not benches:
    out += [f"No benchmark results ({md(inputs.asked['bench'])} matched no readable file).", ""]
  for b in benches:
    out += [f"### {md(b.name)}", "", *md_sources([b.source] if b.source else []), md(bench_meta(b)), "",
            *([md(b.control) + ".", ""] if b.control else []),
            "Cells: time ratio to the baseline kernel (below 1 is faster), GB/s in parentheses.", ""]
    for t in b.tables:
      out += [f"#### {md(t.op)}: baseline `{t.baseline}`", ""]
      if (b.name, t.op) in bench_images:
        out += [f"![{md(b.name)} {md(t.op)} throughput]({bench_images[(b.name, t.op)]})", ""]
      out += [md_table(["surrogate", *(md(column_title(c)) for c in t.columns)],
                       [[md(c) for c in row] for row in bench_rows(t)]), ""]
  if verify is not None:
    out += ["## Surrogates", ""]
    note = curves_note(verify)
    if note:
      out += [md(note), ""]
    else:
      out += [md(PLOT_CAPTION), ""]
      for name, src in surrogate_images:
        out += [f"### {md(name)}", "", f"![{md(name)}]({src})", ""]
  return "\n".join(out).rstrip("\n") + "\n"
