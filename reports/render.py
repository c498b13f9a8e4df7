"""The page and its Markdown twin: verification matrix, diagnoses, peer conformance, benchmarks, plots.

Every function here is pure: it takes the loaded data and the image paths and returns text.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence

from reports.data import (
  KIND_TEXT,
  KINDS,
  Bench,
  Table,
  Verification,
  as_text,
  column_title,
  counts,
  diagnosis,
  kind,
)

TITLE = "Surrogate gradients: verification and benchmarks"
KIND_HELP = {
  "pass": "pass",
  "fail": "defect: the implementation disagrees with the specification",
  "convention": "convention difference (H(0), the value at a jump), not a defect",
  "error": "the check could not run (exception, time limit)",
  "skip": "not applicable",
}
PLOT_CAPTION = (
  "One row per representative parameter set: g(x) and its primitive P(x) (dotted: declared kinks); right, "
  "the gradient error against finite differences in float64 at the derivative check's points: dots "
  "|g − Richardson(P)|, line the estimated error of the differences, dashed the declared mismatch between P′ "
  "and g where there is one (exact agreement is drawn at 1e-18)."
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
.skip { background: #eee; color: #777; }
.diag { border-left: 4px solid #ccc; margin: 0.6em 0; padding: 0.2em 0.8em; }
.diag.fail { border-color: #c62828; background: none; font-weight: normal; }
.diag.convention { border-color: #e0a800; background: none; font-style: normal; }
.diag.error { border-color: #7b1fa2; background: none; font-weight: normal; }
.diag.pass, .diag.skip { background: none; color: inherit; }
.diag:target { background: #fff8d0; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; margin: 0.3em 0; }
dt { color: #555; } dd { margin: 0; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
.note { color: #555; }
""".strip()


def esc(value: object) -> str:
  return html.escape(str(value), quote=True)


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
  items = "".join(f'<td class="cell {k}">{esc(KIND_TEXT[k])}</td><td>{esc(KIND_HELP[k])}</td>' for k in KINDS)
  return f'<table class="legend"><tr>{items}</tr></table>'


def html_counts(v: Verification) -> str:
  c = counts(v.results)
  parts = ", ".join(f"{c[k]} {KIND_TEXT[k]}" for k in KINDS)
  return f"<p>{len(v.labels)} candidates × {len(v.checks)} checks: {esc(parts)}.</p>"


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
      k = kind(r)
      tip = esc(as_text((r.get("detail") or {}).get("message", "")))
      link = f'<a href="#{anchors[(label, check)]}" title="{tip}">{esc(KIND_TEXT[k])}</a>'
      tds.append(f'<td class="cell {k}">{link}</td>')
    rows.append("<tr>" + "".join(tds) + "</tr>")
  return f'<table class="matrix">\n<thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(rows) + "\n</tbody>\n</table>"


def html_diagnosis(r: dict, ident: str) -> str:
  k = kind(r)
  main, rest = diagnosis(r.get("detail") or {})
  fields = "".join(f"<dt>{esc(name.replace('_', ' '))}</dt><dd>{esc(as_text(value))}</dd>" for name, value in main)
  extra = ""
  if rest:
    text = json.dumps(rest, indent=1, ensure_ascii=False)
    extra = f"<details><summary>all details</summary><pre>{esc(text)}</pre></details>"
  return (f'<div class="diag {k}" id="{ident}"><strong>{esc(r["label"])} / {esc(r["check"])}</strong>: '
          f'{esc(KIND_TEXT[k])}<dl>{fields}</dl>{extra}</div>')


def html_diagnoses(v: Verification) -> str:
  anchors = v.anchors
  return "\n".join(html_diagnosis(r, anchors[(r["label"], r["check"])]) for r in v.results)


def html_environment(v: Verification) -> str:
  lib = f"{v.library.get('name', '')} {v.library.get('version', '')}" if v.library else "—"
  extra = [(f"library {k}", as_text(val)) for k, val in (v.library or {}).items() if k not in ("name", "version")]
  rows = [("target", v.target), ("library", lib), *extra, *((k, as_text(val)) for k, val in v.environment.items())]
  body = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(val)}</td></tr>" for k, val in rows)
  return f'<table class="environment">\n{body}\n</table>'


def html_verification(v: Verification | None, source: str) -> str:
  if v is None:
    return (f'<h2 id="verification">Verification</h2>\n<p class="note">No verification results: {esc(source)} '
            "does not exist (write it with <code>nox -s verify -- --json reports/verify.json</code>).</p>")
  return "\n".join([
    '<h2 id="verification">Verification</h2>',
    html_environment(v), html_counts(v), html_legend(),
    "<p>Each cell links to its diagnosis below.</p>", html_matrix(v),
    '<h3 id="diagnoses">Diagnoses</h3>', html_diagnoses(v),
  ])


def conformance_row(v: Verification) -> list[str]:
  """Library, version, candidates, counts per kind, surrogates with no defect or error."""
  c = counts(v.results)
  bad = {r["surrogate"] for r in v.results if kind(r) in ("fail", "error")}
  names = list(dict.fromkeys(r["surrogate"] for r in v.results))
  clean = sum(n not in bad for n in names)
  lib = v.library or {}
  return [str(lib.get("name", v.target)), str(lib.get("version", "")), str(len(v.labels)),
          *(str(c[k]) for k in KINDS), f"{clean} of {len(names)}"]


CONFORMANCE_HEADER = ["library", "version", "candidates", *(KIND_TEXT[k] for k in KINDS),
                      "surrogates without defects"]


def html_peers(peers: Sequence[Verification], source: str) -> str:
  if not peers:
    return (f'<h2 id="peers">Peer conformance</h2>\n<p class="note">No peer results ({esc(source)} matched no file).'
            "</p>")
  rows = [[f'<a href="#{p.prefix}">{esc(cell)}</a>' if i == 0 else esc(cell)
           for i, cell in enumerate(conformance_row(p))] for p in peers]
  parts = ['<h2 id="peers">Peer conformance</h2>', html_legend(),
           html_table([esc(h) for h in CONFORMANCE_HEADER], rows, [False, False, *([True] * 7)])]
  for p in peers:
    parts += [f'<h3 id="{p.prefix}">{esc(p.title)}</h3>', html_environment(p), html_counts(p), html_matrix(p),
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
  kind_ = b.meta.get("device_kind", "")
  return f"device {device} ({kind_}); {b.meta.get('datetime', '')}; {versions}"


def html_bench(benches: Sequence[Bench], images: dict[tuple[str, str], str], source: str) -> str:
  if not benches:
    return (f'<h2 id="benchmarks">Benchmarks</h2>\n<p class="note">No benchmark results ({esc(source)} matched no '
            "file).</p>")
  parts = ['<h2 id="benchmarks">Benchmarks</h2>',
           "<p>Cells: time ratio to the baseline kernel moving the same bytes (below 1 is faster), and GB/s in "
           "parentheses.</p>"]
  for b in benches:
    parts += [f'<h3 id="bench-{esc(b.name)}">{esc(b.name)}</h3>', f"<p>{esc(bench_meta(b))}</p>"]
    for t in b.tables:
      parts.append(f"<h4>{esc(t.op)}: baseline <code>{esc(t.baseline)}</code></h4>")
      if (b.name, t.op) in images:
        src = images[(b.name, t.op)]
        parts.append(f'<p><img src="{esc(src)}" alt="{esc(b.name)} {esc(t.op)} throughput"></p>')
      header = ["surrogate", *(column_title(c) for c in t.columns)]
      parts.append(html_table([esc(h) for h in header], [[esc(c) for c in row] for row in bench_rows(t)],
                              [False, *([True] * len(t.columns))]))
  return "\n".join(parts)


def html_surrogates(images: Sequence[tuple[str, str]]) -> str:
  if not images:
    return ""
  parts = ['<h2 id="surrogates">Surrogates</h2>',
           f"<p>{esc(PLOT_CAPTION)}</p>"]
  for name, src in images:
    parts += [f'<h3 id="surrogate-{esc(name)}">{esc(name)}</h3>',
              f'<p><img src="{esc(src)}" alt="{esc(name)}: g, P and gradient error"></p>']
  return "\n".join(parts)


def page(verify: Verification | None, peers: Sequence[Verification], benches: Sequence[Bench],
         surrogate_images: Sequence[tuple[str, str]], bench_images: dict[tuple[str, str], str],
         sources: dict[str, str]) -> str:
  """The whole static page (no scripts; images by relative path)."""
  nav = " · ".join(f'<a href="#{i}">{t}</a>' for i, t in
                   (("verification", "Verification"), ("peers", "Peer conformance"), ("benchmarks", "Benchmarks"),
                    ("surrogates", "Surrogates")) if i != "surrogates" or surrogate_images)
  body = "\n".join([
    f"<h1>{esc(TITLE)}</h1>", f"<p>{nav}</p>",
    html_verification(verify, sources["verify"]),
    html_peers(peers, sources["peers"]),
    html_bench(benches, bench_images, sources["bench"]),
    html_surrogates(surrogate_images),
  ])
  return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(TITLE)}</title>\n'
          f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<style>\n{CSS}\n</style>\n'
          f"</head>\n<body>\n{body}\n</body>\n</html>\n")


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


MD_STYLE = {"fail": "**{}**", "error": "**{}**", "convention": "_{}_"}


def md(value: object) -> str:
  """Text safe inside Markdown (and its table cells): HTML escaped, Markdown punctuation backslashed."""
  text = html.escape(str(value), quote=False).replace("\n", " ")
  return re.sub(r"([\\`*_\[\]|#{}!~])", r"\\\1", text)


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
      row.append(f"[{MD_STYLE.get(kind(r), '{}').format(KIND_TEXT[kind(r)])}](#{anchors[(label, check)]})" if r else "")
    rows.append(row)
  return md_table(["candidate", *(md(c) for c in v.checks)], rows)


def md_diagnoses(v: Verification) -> str:
  anchors = v.anchors
  out = []
  for r in v.results:
    main, _ = diagnosis(r.get("detail") or {})
    out.append(f'<a id="{anchors[(r["label"], r["check"])]}"></a>\n**{md(r["label"])} / {md(r["check"])}**: '
               f"{KIND_TEXT[kind(r)]}\n")
    out += [f"- {md(name.replace('_', ' '))}: {md(as_text(value))}" for name, value in main]
    out.append("")
  return "\n".join(out)


def md_legend() -> str:
  return "Legend: " + "; ".join(f"{KIND_TEXT[k]} = {md(KIND_HELP[k])}" for k in KINDS) + "."


def md_counts(v: Verification) -> str:
  c = counts(v.results)
  return f"{len(v.labels)} candidates × {len(v.checks)} checks: " + ", ".join(f"{c[k]} {KIND_TEXT[k]}" for k in KINDS)


def markdown(verify: Verification | None, peers: Sequence[Verification], benches: Sequence[Bench],
             surrogate_images: Sequence[tuple[str, str]], bench_images: dict[tuple[str, str], str],
             sources: dict[str, str]) -> str:
  out = [f"# {TITLE}", "", "## Verification", ""]
  if verify is None:
    out += [f"No verification results: {md(sources['verify'])} does not exist.", ""]
  else:
    lib = verify.library or {}
    out += [f"Target: {md(verify.target)}" + (f" ({md(lib.get('name'))} {md(lib.get('version'))})" if lib else ""),
            "", md_counts(verify), "", md_legend(), "", md_matrix(verify), "", "### Diagnoses", "",
            md_diagnoses(verify)]
  out += ["## Peer conformance", ""]
  if not peers:
    out += [f"No peer results ({md(sources['peers'])} matched no file).", ""]
  else:
    out += [md_table([md(h) for h in CONFORMANCE_HEADER], [[md(c) for c in conformance_row(p)] for p in peers]), ""]
    for p in peers:
      out += [f'<a id="{p.prefix}"></a>', f"### {md(p.title)}", "", md_counts(p), "", md_matrix(p), "",
              md_diagnoses(p)]
  out += ["## Benchmarks", ""]
  if not benches:
    out += [f"No benchmark results ({md(sources['bench'])} matched no file).", ""]
  for b in benches:
    out += [f"### {md(b.name)}", "", md(bench_meta(b)), "",
            "Cells: time ratio to the baseline kernel (below 1 is faster), GB/s in parentheses.", ""]
    for t in b.tables:
      out += [f"#### {md(t.op)}: baseline `{t.baseline}`", ""]
      if (b.name, t.op) in bench_images:
        out += [f"![{md(b.name)} {md(t.op)} throughput]({bench_images[(b.name, t.op)]})", ""]
      out += [md_table(["surrogate", *(md(column_title(c)) for c in t.columns)],
                       [[md(c) for c in row] for row in bench_rows(t)]), ""]
  if surrogate_images:
    out += ["## Surrogates", "", md(PLOT_CAPTION), ""]
    for name, src in surrogate_images:
      out += [f"### {md(name)}", "", f"![{md(name)}]({src})", ""]
  return "\n".join(out).rstrip("\n") + "\n"

