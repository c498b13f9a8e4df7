"""The documentation: the site builds in strict mode (a broken link or reference fails), every Python block of
README.md and docs/ runs (sybil, in order, one namespace per page), the README stays a short guide, and the checks
page shows every check's docstring."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from verification.checks import CHECKS

sybil = pytest.importorskip("sybil")
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
WITH_PYTHON = [p for p in PAGES if "```python" in p.read_text()]
#: What the site's build reads besides docs/ and mkdocs.yml: the generated pages, the sources of the API reference,
#: the READMEs and workflows it includes.
BUILD_INPUTS = ("results", "surrogates", "verification", "reports", "benchmarks", "examples")


def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                         "--site-dir", str(site)], capture_output=True, text=True, timeout=600,
                        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def _needs_mkdocs() -> None:
  for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
    pytest.importorskip(module, reason=f"{module} is not installed (the docs dependency group)")


def test_the_site_builds_in_strict_mode(tmp_path):
  _needs_mkdocs()
  done = _mkdocs(ROOT / "mkdocs.yml", tmp_path / "site")
  assert done.returncode == 0, done.stdout + done.stderr
  site = tmp_path / "site"
  checks = (site / "checks" / "index.html").read_text()
  assert all(f'id="verification.checks.{name}"' in checks for name in CHECKS)  # each check's docstring
  assert (site / "results" / "shapes" / "sigmoid" / "index.html").is_file()
  assert (site / "results" / "findings" / "repro").is_dir()


def test_a_broken_link_fails_the_build(tmp_path):
  """Planted: a link to a page that does not exist, in a copy of the site's sources."""
  _needs_mkdocs()
  copy = tmp_path / "copy"
  shutil.copytree(ROOT / "docs", copy / "docs")
  shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
  for name in BUILD_INPUTS:
    (copy / name).symlink_to(ROOT / name)
  with (copy / "docs" / "quickstart.md").open("a") as fh:
    fh.write("\nSee [the old page](no-such-page.md).\n")
  done = _mkdocs(copy / "mkdocs.yml", tmp_path / "site")
  assert done.returncode != 0
  assert "no-such-page.md" in done.stdout + done.stderr


def test_the_readme_is_a_short_guide():
  lines = (ROOT / "README.md").read_text().splitlines()
  assert len(lines) <= 250, f"README.md has {len(lines)} lines: move the detail into docs/"
  assert "<!-- findings:start -->" in lines and "<!-- findings:end -->" in lines


def test_the_checks_page_shows_every_check():
  page = (ROOT / "docs" / "checks.md").read_text()
  missing = [name for name in CHECKS if f"::: verification.checks.{name}\n" not in page]
  assert not missing, f"docs/checks.md does not show the docstring of {missing}"


def test_every_page_is_in_the_navigation():
  nav = (ROOT / "mkdocs.yml").read_text()
  missing = [p.name for p in PAGES[1:] if f": {p.name}" not in nav]
  assert not missing, f"pages of docs/ missing from the nav of mkdocs.yml: {missing}"


SYBIL = sybil.Sybil(parsers=[PythonCodeBlockParser(), SkipParser()])


def run_python_blocks(path: Path, tmp_path: Path, monkeypatch) -> int:
  """Evaluates the page's Python blocks in order, in a scratch folder, with the repository importable by the
  harness's worker processes too; returns how many ran."""
  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
  document = SYBIL.parse(path)
  examples = list(document)
  for example in examples:
    example.evaluate()
  return len(examples)


def test_the_pages_have_python_blocks():
  assert {p.name for p in WITH_PYTHON} >= {"README.md", "surrogates.md", "gating.md", "api-and-plugin.md"}


@pytest.mark.parametrize("path", WITH_PYTHON, ids=[p.name for p in WITH_PYTHON])
def test_every_python_block_runs(path, tmp_path, monkeypatch):
  assert run_python_blocks(path, tmp_path, monkeypatch) >= 1


def test_a_stale_python_block_fails(tmp_path, monkeypatch):
  """Planted: a block that imports a module by a name it no longer has."""
  page = tmp_path / "page.md"
  page.write_text("# A page\n\n```python\nfrom verification.candidate import Unbuilt\n```\n")
  with pytest.raises(ModuleNotFoundError, match=r"verification\.candidate"):
    run_python_blocks(page, tmp_path, monkeypatch)
