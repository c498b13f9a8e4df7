"""What the built-in targets install: ``verification/targets/builtin.json`` and ``imports.json``.

The schema test reads builtin.json alone: every entry has its fields, every requirement parses as a PEP 508
requirement, every pin and pip argument says why, and a library installed with ``--no-deps`` accounts for each of
its own requirements (installed here, or omitted with a reason).

The import test needs no library and no network: ``imports.json`` records, from a real install
(``nox -s "install_check(library='NAME')" -- --record``), the top-level modules each library loads when its adapter
builds the candidates, the distribution providing each and the requirement roots it is installed through. A module
must still come in through a requirement that builtin.json (or the project) declares, so dropping one that a module
needs fails here; the weekly ``install_check`` session catches what a record cannot (a new release importing
something new).
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from verification import targets

IMPORTS_JSON = targets.BUILTIN_JSON.with_name("imports.json")
PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"
FIELDS = {"module", "package", "default_version", "extra_requirements", "pip_args"}
PIP_ARGS = {"--no-deps"}  # the only pip argument an entry uses; a new one needs its reason here and in "why"


def _project_dependencies() -> set[str]:
  """What ``pip install -e .`` installs into every session: the project's own requirements, by name."""
  deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
  return {canonicalize_name(Requirement(d).name) for d in deps}


def _names(lines: list[str]) -> set[str]:
  """The distribution names of the requirement lines that parse (schema_problems reports the others)."""
  out = set()
  for line in lines:
    try:
      out.add(canonicalize_name(Requirement(line).name))
    except Exception:
      continue
  return out


def schema_problems(name: str, entry: dict[str, Any]) -> list[str]:
  """What is wrong with one builtin.json entry (empty when nothing is)."""
  out = [f"{name}: no {f}" for f in sorted(FIELDS - set(entry))]
  if out:
    return out
  if entry.get("not_checkable"):
    return [] if isinstance(entry["not_checkable"], str) and entry["not_checkable"].strip() \
        else [f"{name}: not_checkable must give the reason"]
  if entry["module"] != f"verification.targets.{name}":
    out.append(f"{name}: module {entry['module']!r} is not verification.targets.{name}")
  why = entry.get("why", {})
  for line in [*entry["extra_requirements"], f"{entry['package']}=={entry['default_version']}",
               *entry.get("requires_dist", [])]:
    try:
      req = Requirement(line)
    except Exception as exc:
      out.append(f"{name}: {line!r} is not a PEP 508 requirement ({exc})")
      continue
    if req.marker is not None and "extra" in str(req.marker):
      out.append(f"{name}: {line!r} belongs to an extra; requires_dist lists the unconditional ones")
  for item in [*entry["extra_requirements"], *entry["pip_args"]]:
    if not str(why.get(item, "")).strip():
      out.append(f"{name}: {item!r} has no reason in 'why'")
  out += [f"{name}: unknown pip argument {a!r}" for a in entry["pip_args"] if a not in PIP_ARGS]
  if "--no-deps" in entry["pip_args"]:
    if "requires_dist" not in entry:
      return [*out, f"{name}: installed with --no-deps but its own requirements (requires_dist) are not listed"]
    omitted = {canonicalize_name(k): v for k, v in entry.get("omitted", {}).items()}
    installed = _names(entry["extra_requirements"]) | _project_dependencies()
    for line in entry["requires_dist"]:
      dist = canonicalize_name(Requirement(line).name)
      if dist not in installed and not str(omitted.get(dist, "")).strip():
        out.append(f"{name}: {entry['package']} requires {line!r}, neither installed nor omitted with a reason")
      if dist in omitted and dist in _names(entry["extra_requirements"]):
        out.append(f"{name}: {dist} is both installed and omitted")
  return out


def import_problems(name: str, entry: dict[str, Any], record: dict[str, Any] | None) -> list[str]:
  """The modules a library loads (recorded from a real install) that no declared requirement provides."""
  if record is None:
    return [f"{name}: no record in imports.json (nox -s \"install_check(library='{name}')\" -- --record)"]
  if record["version"] != entry["default_version"]:
    return [f"{name}: imports.json records {record['version']}, builtin.json installs {entry['default_version']}"]
  declared = _names(entry["extra_requirements"]) | _project_dependencies() | {canonicalize_name(entry["package"])}
  out = []
  for module, found in record["modules"].items():
    if found["distribution"] is None:
      out.append(f"{name}: {module} is loaded from site-packages but no installed distribution provides it")
    elif not {canonicalize_name(v) for v in found["via"]} & declared:
      out.append(f"{name}: imports {module} (from {found['distribution']}, installed through "
                 f"{', '.join(found['via']) or 'nothing declared'}), which no declared requirement provides")
  return out


BUILTIN = targets.builtin()
IMPORTS = json.loads(IMPORTS_JSON.read_text())
CHECKABLE = sorted(targets.checkable())


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_entry_is_complete(name):
  assert schema_problems(name, BUILTIN[name]) == []


@pytest.mark.parametrize("name", CHECKABLE)
def test_every_loaded_module_comes_from_a_declared_requirement(name):
  assert import_problems(name, BUILTIN[name], IMPORTS.get(name)) == []


def test_imports_json_records_the_checkable_libraries_only():
  assert sorted(IMPORTS) == CHECKABLE


def _without(name: str, *dists: str) -> dict[str, Any]:
  entry = copy.deepcopy(BUILTIN[name])
  entry["extra_requirements"] = [r for r in entry["extra_requirements"] if Requirement(r).name not in dists]
  return entry


def test_a_dropped_requirement_is_caught():
  """The two defects that shipped (sinabs without matplotlib, norse without nir), planted back."""
  assert any("matplotlib" in p for p in import_problems("sinabs", _without("sinabs", "matplotlib"),
                                                         IMPORTS["sinabs"]))
  assert any("matplotlib" in p for p in schema_problems("sinabs", _without("sinabs", "matplotlib")))
  norse = _without("norse", "nir", "nirtorch")
  assert any(p.startswith("norse: imports nir ") for p in import_problems("norse", norse, IMPORTS["norse"]))
  assert any("'nir'" in p for p in schema_problems("norse", norse))


def test_schema_problems_are_caught():
  entry = copy.deepcopy(BUILTIN["norse"])
  entry["extra_requirements"].append("torch==")  # not a requirement
  entry["why"].pop("nir")
  del entry["pip_args"]
  assert schema_problems("norse", entry) == ["norse: no pip_args"]
  entry["pip_args"] = ["--no-deps", "--pre"]
  problems = schema_problems("norse", entry)
  assert any("'torch==' is not a PEP 508 requirement" in p for p in problems)
  assert any("'nir' has no reason" in p for p in problems)
  assert any("unknown pip argument '--pre'" in p for p in problems)
  assert schema_problems("lava-dl", {**BUILTIN["lava-dl"], "not_checkable": " "})


def test_a_stale_or_missing_record_is_caught():
  old = {**IMPORTS["norse"], "version": "1.0.0"}
  assert import_problems("norse", BUILTIN["norse"], old) == ["norse: imports.json records 1.0.0, builtin.json "
                                                             "installs 1.1.0"]
  assert import_problems("norse", BUILTIN["norse"], None)
  orphan = copy.deepcopy(IMPORTS["norse"])
  orphan["modules"]["mystery"] = {"distribution": None, "via": []}
  assert import_problems("norse", BUILTIN["norse"], orphan) == [
      "norse: mystery is loaded from site-packages but no installed distribution provides it"]
