"""Builds the report: draws the plots of what was loaded, writes the page and its Markdown twin."""

from __future__ import annotations

from pathlib import Path

from . import data, render


def surrogate_rows(v: data.Verification, only: set[str]) -> dict[str, list]:
  """Surrogate name -> (label, curve, failing inputs) of each of its candidates that has a curve (run order)."""
  groups: dict[str, list] = {}
  surrogate = {r.label: r.surrogate for r in v.results}
  for label in v.labels:
    name = surrogate[label]
    if label in v.curves and len(v.curves[label].x) > 1 and (not only or name in only):
      groups.setdefault(name, []).append((label, v.curves[label], data.failing_inputs(v, label)))
  return groups


def generate(inputs: data.Inputs, out: Path, only: set[str] | None = None, plots: bool = True) -> dict[str, Path]:
  """Writes index.html, index.md and img/*.png under ``out``; returns the two documents' paths.

  ``only`` limits the per-surrogate plots to these surrogate names.
  """
  img = out / "img"
  surrogate_images: list[tuple[str, str]] = []
  bench_images: dict[tuple[str, str], str] = {}
  if plots:
    from . import plots as draw  # matplotlib only when drawing

    if inputs.verify is not None:
      for name, rows in surrogate_rows(inputs.verify, only or set()).items():
        file = f"surrogate-{data.slug(name)}.png"
        draw.plot_surrogate(rows, img / file)
        surrogate_images.append((name, f"img/{file}"))
    for b in inputs.benches:
      for t in b.tables:
        file = f"throughput-{data.slug(b.name)}-{data.slug(t.op)}.png"
        draw.plot_throughput(t, str(b.meta.get("device", "")), img / file)
        bench_images[(b.name, t.op)] = f"img/{file}"
  paths = {"html": out / "index.html", "md": out / "index.md"}
  out.mkdir(parents=True, exist_ok=True)
  paths["html"].write_text(render.page(inputs, surrogate_images, bench_images), encoding="utf-8")
  paths["md"].write_text(render.markdown(inputs, surrogate_images, bench_images), encoding="utf-8")
  return paths
