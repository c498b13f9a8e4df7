"""The commands the harness tells its users to run exist where the harness is installed.

A user's CI installs the harness with pip, which installs the packages ``pyproject.toml`` lists (the
repository's ``reports/`` folder as ``surrogate_reports``) and its console scripts. So every
``python -m X`` in the workflows of ``examples/``, in the pytest plugin's help and in the docstrings of
the modules users read must name a module of that layout (or of another installed distribution, such as
pip or pytest), never a folder that only a checkout has; and every ``surrogate-NAME`` command must be a
console script the project declares. A stale copy of a workflow (``python -m reports``) fails the scan.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: The top-level packages pip installs, each with its folder in the checkout.
INSTALLED = {p.split(".")[0]: PYPROJECT["tool"]["setuptools"].get("package-dir", {}).get(p.split(".")[0],
                                                                                        p.split(".")[0])
             for p in PYPROJECT["tool"]["setuptools"]["packages"]}
SCRIPTS = set(PYPROJECT["project"]["scripts"])
#: Modules whose docstrings and help a user reads.
USER_MODULES = ("verification", "verification.api", "verification.pytest_plugin", "verification.__main__",
                "verification.engine.runner", "surrogates")

MODULE_RUN = re.compile(r"\bpython3?\s+-m\s+([A-Za-z_][\w.]*)")
#: A command ``surrogate-NAME`` followed by an option or a shell expansion (the distribution's name, as in
#: ``pip install surrogate-harness[report]``, is not one).
SCRIPT_RUN = re.compile(r"(?<!install )(?<![\w./@\[-])(surrogate-[a-z]+)(?=\s+[-$])")


def _runnable(module: str) -> str | None:
  """Why ``python -m module`` fails where the harness is installed, or None where it runs."""
  top, *rest = module.split(".")
  if top in INSTALLED:
    base = ROOT / INSTALLED[top] / Path(*rest) if rest else ROOT / INSTALLED[top]
    if (base / "__main__.py").is_file() or base.with_suffix(".py").is_file():
      return None
    return f"python -m {module}: the installed package {top} has no such module"
  if (ROOT / top).is_dir() or (ROOT / f"{top}.py").is_file():
    return (f"python -m {module}: {top!r} is a folder of the checkout that is not installed "
            f"(installed: {', '.join(sorted(INSTALLED))})")
  if importlib.util.find_spec(top) is None:
    return f"python -m {module}: no installed module {top!r}"
  return None


def stale_commands(text: str, where: str) -> list[str]:
  """The commands in ``text`` that would fail where the harness is installed, each naming ``where``."""
  found = [why for m in MODULE_RUN.findall(text) if (why := _runnable(m))]
  found += [f"{s}: not a console script of the project (scripts: {', '.join(sorted(SCRIPTS))})"
            for s in SCRIPT_RUN.findall(text) if s not in SCRIPTS]
  return [f"{where}: {why}" for why in found]


class _Options:
  """Stands in for pytest's parser: collects the help texts the plugin registers."""

  def __init__(self) -> None:
    self.texts: list[str] = []

  def getgroup(self, *args, **kwargs):
    self.texts += [str(a) for a in args]
    return self

  def addoption(self, *args, help: str = "", **kwargs):
    self.texts.append(help)

  def addini(self, name: str, help: str = "", **kwargs):
    self.texts.append(help)


def _plugin_help() -> str:
  from verification import pytest_plugin

  parser = _Options()
  pytest_plugin.pytest_addoption(parser)
  return "\n".join(parser.texts)


def _docstrings(name: str) -> str:
  module = importlib.import_module(name)
  docs = [inspect.getdoc(module) or ""]
  for _, member in inspect.getmembers(module, lambda m: inspect.isfunction(m) or inspect.isclass(m)):
    if getattr(member, "__module__", None) == name:
      docs.append(inspect.getdoc(member) or "")
  return "\n".join(docs)


def _sources() -> list[tuple[str, str]]:
  return ([(str(p.relative_to(ROOT)), p.read_text()) for p in sorted((ROOT / "examples").glob("*.yml"))]
          + [("the pytest plugin's help", _plugin_help())]
          + [(f"the docstrings of {m}", _docstrings(m)) for m in USER_MODULES])


@pytest.mark.parametrize(("where", "text"), _sources(), ids=lambda v: v if len(v) < 60 else "")
def test_documented_commands_run_where_the_harness_is_installed(where, text):
  assert not stale_commands(text, where)


def test_the_scan_reads_the_workflows_and_finds_their_commands():
  text = "\n".join(t for w, t in _sources() if w.startswith("examples"))
  assert "surrogate-report" in SCRIPT_RUN.findall(text)
  assert {"pip", "pytest", "verification"} <= {m.split(".")[0] for m in MODULE_RUN.findall(text)}


def test_a_stale_workflow_fails_the_scan(tmp_path):
  # a copy of a workflow as it was before the report module was installed as surrogate_reports
  original = (ROOT / "examples" / "github-actions-pytest.yml").read_text()
  stale = tmp_path / "github-actions-pytest.yml"
  stale.write_text(original.replace("surrogate-report ", "python -m reports "))
  assert stale.read_text() != original
  found = stale_commands(stale.read_text(), stale.name)
  assert found and all("'reports' is a folder of the checkout that is not installed" in f for f in found), found
  assert stale_commands(original, "the original") == []
  for planted, why in (("python -m surrogate_reports.nope", "has no such module"),
                       ("python -m verification.candidate", "has no such module"),
                       ("python -m no_such_tool_anywhere", "no installed module"),
                       ("run: surrogate-reports --out r", "not a console script")):
    assert any(why in f for f in stale_commands(planted, "planted")), planted
  assert stale_commands("python -m surrogate_reports --out r; python -m verification --help", "fine") == []


def test_surrogate_report_names_itself_in_its_usage(monkeypatch, capsys):
  from reports import __main__ as cli

  for argv0, prog in (("/venv/bin/surrogate-report", "surrogate-report"), ("surrogate-report.exe", "surrogate-report"),
                      (str(ROOT / "reports" / "__main__.py"), "python -m reports")):
    monkeypatch.setattr(sys, "argv", [argv0, "--help"])
    with pytest.raises(SystemExit) as exit_:
      cli.main()
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {prog} "), argv0


def _header(path: Path) -> str:
  """The comment block that opens a workflow."""
  lines = path.read_text().splitlines()
  return "\n".join(ln for ln in lines[:next(i for i, ln in enumerate(lines) if not ln.startswith("#"))])


def test_the_torch_workflow_describes_the_torch_candidate_as_it_is():
  # a torch candidate is its spike function with the backend "torch" inferred, as the example it points to
  # builds; the protocol it replaced (backend="numpy" with forward and vjp written in torch) is not described
  from verification import targets
  from verification.core import candidate

  header = _header(ROOT / "examples" / "github-actions-pytest-torch.yml")
  assert 'backend="numpy"' not in header and "vjp" not in header, header
  assert "spike function" in header and '"torch"' in header and "examples/torch_candidates.py" in header
  built = targets.resolve_target("examples.torch_candidates:CANDIDATES").candidates
  assert built and all(c.backend == "torch" for c in built)  # inferred: the example does not say it
  torch_part = candidate.__doc__.split("A torch candidate is its spike function")[1].split("Any other")[0]
  assert "inferred from ``fn``" in torch_part and 'backend="numpy"' not in torch_part and "vjp" not in torch_part
