"""mkdocs hook: the committed generated output in ``results/`` becomes part of the site under ``results/``.

Pages (shape pages, findings, benchmark reports), their figures and the reproducer scripts are added as they are
committed, so the site shows what ``nox -s findings`` and ``nox -s bench`` wrote, and a link from a page of
``docs/`` to ``results/...`` is checked by ``mkdocs build --strict`` like any other. In the navigation, the index
page of a generated folder (``results/shapes/index.md``, ``results/findings/index.md``) becomes a section listing
every page of the folder (one per shape, one per library).
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
#: What the site shows of results/: pages, figures and the reproducers the pages link.
KINDS = ("*.md", "*.png", "*.py")
#: Not pages of the site: the folder's own guide (written for the repository) and what is not committed.
LEFT_OUT = ("results/README.md", "results/out/", "results/report/", "results/cpu/")


def _generated(kind: str) -> list[str]:
  paths = (p.relative_to(ROOT).as_posix() for p in sorted(RESULTS.rglob(kind)))
  return [p for p in paths if not p.startswith(LEFT_OUT)]


def on_config(config):
  """Expands each nav entry that points at a generated folder's ``index.md`` into a section of its pages."""

  def expand(items):
    out = []
    for item in items:
      (title, value), = item.items() if isinstance(item, dict) else ((None, item),)
      if isinstance(value, list):
        out.append({title: expand(value)})
      elif isinstance(value, str) and value.startswith("results/") and value.endswith("/index.md"):
        folder = value.removesuffix("index.md")
        listed = _nav_sources(config["nav"])
        pages = [p for p in _generated("*.md")
                 if p.startswith(folder) and "/" not in p[len(folder):] and p not in listed]
        out.append({title: [value, *pages]})
      else:
        out.append(item)
    return out

  config["nav"] = expand(config["nav"])
  return config


def _nav_sources(items) -> set[str]:
  found = set()
  for item in items:
    value = next(iter(item.values())) if isinstance(item, dict) else item
    found |= _nav_sources(value) if isinstance(value, list) else {value}
  return found


def on_files(files: Files, config) -> Files:
  for kind in KINDS:
    for rel in _generated(kind):
      files.append(File(rel, src_dir=str(ROOT), dest_dir=config["site_dir"],
                        use_directory_urls=config["use_directory_urls"]))
  return files
