"""Builds the report: loads what exists, draws the plots, writes the page and its Markdown twin."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reports import data, render


def surrogate_groups(only: set[str]) -> dict[str, list]:
  """Registry name -> its instances at each representative parameter set (registry order)."""
  import surrogates

  groups: dict[str, list] = {}
  for s in surrogates.instances():
    if not only or s.name in only:
      groups.setdefault(s.name, []).append(s)
  return groups


def generate(verify: Path, peers: Sequence[Path], benches: Sequence[Path], out: Path, only: set[str] | None = None,
             plots: bool = True, sources: dict[str, str] | None = None) -> dict[str, Path]:
  """Writes index.html, index.md and img/*.png under ``out``; returns the two documents' paths.

  ``only`` limits the per-surrogate plots to these registry names; ``sources`` names the inputs in
  the notes shown for a missing part.
  """
  img = out / "img"
  run = data.load_verification(verify, "v") if verify.is_file() else None
  peer_runs = data.load_peers(sorted(peers))
  bench_runs = [data.load_bench(p) for p in sorted(benches)]
  surrogate_images: list[tuple[str, str]] = []
  bench_images: dict[tuple[str, str], str] = {}
  if plots:
    from reports import plots as draw  # matplotlib and JAX only when drawing

    for name, instances in surrogate_groups(only or set()).items():
      file = f"surrogate-{data.slug(name)}.png"
      draw.plot_surrogate(instances, img / file)
      surrogate_images.append((name, f"img/{file}"))
    for b in bench_runs:
      for t in b.tables:
        file = f"throughput-{data.slug(b.name)}-{data.slug(t.op)}.png"
        draw.plot_throughput(t, str(b.meta.get("device", "")), img / file)
        bench_images[(b.name, t.op)] = f"img/{file}"
  names = {"verify": str(verify), "peers": "the peer files given", "bench": "the benchmark files given"}
  args = (run, peer_runs, bench_runs, surrogate_images, bench_images, {**names, **(sources or {})})
  paths = {"html": out / "index.html", "md": out / "index.md"}
  out.mkdir(parents=True, exist_ok=True)
  paths["html"].write_text(render.page(*args), encoding="utf-8")
  paths["md"].write_text(render.markdown(*args), encoding="utf-8")
  return paths
