"""The probe ``nox -s install_check`` runs in a library's environment (``verification/targets/install_probe.py``).

Run here in-process against a stub built-in target, with no network and no install: its imports are the
checkout's (a moved module fails at import, as ``verification.candidate`` did), it builds the candidates,
names an unbuilt one and exits 1 for it, and records the site-packages modules the adapter loaded with
the distribution providing each. The nox session must invoke it by a module name that exists.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from verification import targets
from verification.targets import install_probe

ROOT = Path(__file__).resolve().parents[1]

STUB = '''
import importlib.metadata

import surrogates
from verification.core.candidate import Candidate, candidate_factory

PACKAGE = "mpmath"
UNMAPPED = {{}}


def version():
  return importlib.metadata.version("mpmath")


@candidate_factory
def broken():
  raise RuntimeError("planted: this candidate cannot be built")


def candidates():
  import mpmath  # the library the adapter wraps: loaded only when its candidates are built

  assert mpmath.mpf(1) == 1
  ref = surrogates.Sigmoid()
  return [Candidate(name="Sigmoid", params={{}}, fn=lambda x: ref(x), label="stub sigmoid"){extra}]
'''


@pytest.fixture
def stub(tmp_path, monkeypatch):
  """A built-in target ``stub`` whose adapter is written to ``tmp_path``: ``stub(unbuilt)`` -> its name."""
  made = []

  def make(unbuilt: bool) -> str:
    module = f"stub_adapter_{len(made)}_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{module}.py").write_text(STUB.format(extra=", broken" if unbuilt else ""))
    made.append(module)
    entry = {"module": module, "package": "mpmath", "default_version": "0", "extra_requirements": [], "pip_args": []}
    monkeypatch.setattr(targets, "builtin", lambda: {"stub": entry})
    return "stub"

  monkeypatch.syspath_prepend(str(tmp_path))
  yield make
  for module in made:
    sys.modules.pop(module, None)


def _startup_without_mpmath() -> frozenset[str]:
  # as in a fresh environment, the library is not loaded before the probe builds the candidates
  return frozenset(m for m in sys.modules if m.split(".")[0] != "mpmath")


def test_the_probe_builds_the_candidates_and_records_the_modules_loaded(stub, tmp_path, capsys):
  out = tmp_path / "imports.json"
  assert install_probe.main([stub(False), str(out)], startup=_startup_without_mpmath()) == 0
  found = json.loads(out.read_text())
  assert found["version"] == importlib.metadata.version("mpmath")
  assert found["modules"]["mpmath"]["distribution"] == "mpmath"
  assert all(top.split(".")[0] != "stub_adapter" for top in found["modules"])  # not installed: not counted
  assert "stub sigmoid" in capsys.readouterr().out


def test_the_probe_exits_1_naming_an_unbuilt_candidate(stub, tmp_path, capsys):
  assert install_probe.main([stub(True), str(tmp_path / "imports.json")], startup=_startup_without_mpmath()) == 1
  printed = capsys.readouterr().out
  assert "UNBUILT" in printed and "planted: this candidate cannot be built" in printed and "1 unbuilt" in printed


def test_a_target_that_fails_to_load_ends_the_probe_with_its_error(stub, tmp_path, monkeypatch):
  name = stub(False)
  entry = {**targets.builtin()[name], "module": "no_such_adapter_module"}
  monkeypatch.setattr(targets, "builtin", lambda: {name: entry})
  with pytest.raises(targets.TargetError, match="no_such_adapter_module"):
    install_probe.main([name, str(tmp_path / "imports.json")])


def test_the_install_check_session_runs_the_probe_by_a_module_that_exists():
  source = (ROOT / "noxfile.py").read_text()
  modules = re.findall(r'"-m",\s*"(verification[\w.]*)"', source)
  assert "verification.targets.install_probe" in modules
  missing = [m for m in modules if importlib.util.find_spec(m) is None]
  assert not missing, f"noxfile.py runs modules that do not exist: {missing}"
  assert "verification.candidate" not in source  # the module the probe once imported, moved to verification.core
