"""The layout of ``verification/``: layers that import only downwards, and no circle.

Every import counts, also those inside functions (a lazy import is still an arrow). Layers, lowest
first; a module may import its own layer and the ones below, never one above:

0. ``verification.results``: the typed record every layer shares;
1. ``verification.core``: what a check needs (candidates, evaluation, numerics, tolerances, cache);
2. ``verification.checks`` (what is judged) and ``verification.targets`` (published libraries);
3. ``verification.engine``: how a run is executed (the parent, the worker, what crosses between them);
   inside it, the harness process's files import one way (``ENGINE``): the device, the options, the
   processes, the loading, the scheduling, and ``runner`` (the public entry) last; the worker's and the
   judge's files import none of them, and none of them imports the worker or the judge; the template
   process's file imports the worker's and the judge's (to fork them ready) and none of the harness's;
4. the entry points: ``verification`` itself, ``api``, ``output``, ``__main__``, ``pytest_plugin``.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "verification"


def _layer(module: str) -> int:
  parts = module.split(".")
  if parts[:2] == ["verification", "results"]:
    return 0
  sub = parts[1] if len(parts) > 1 else ""
  return {"core": 1, "checks": 2, "targets": 2, "engine": 3}.get(sub, 4)


def _module_name(path: pathlib.Path) -> str:
  rel = path.relative_to(ROOT).with_suffix("")
  parts = list(rel.parts)
  if parts[-1] == "__init__":
    parts = parts[:-1]
  return ".".join(parts)


def _imports(path: pathlib.Path, name: str) -> set[str]:
  """The ``verification`` modules ``path`` imports (``from a import b`` counts as ``a.b`` where that is a module)."""
  tree = ast.parse(path.read_text())
  found: set[str] = set()
  package = name if path.name == "__init__.py" else name.rpartition(".")[0]
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
      for a in node.names:  # a submodule where it is one, else a name from the module itself
        found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
  return {m for m in found if m.split(".")[0] == "verification" and m in MODULES}


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: _imports(path, name) - {name} for name, path in MODULES.items()}


#: The engine's modules and the engine modules each may import (the harness process's files in order,
#: each may use those before it; the worker and judge processes share only the platform and the protocol).
ENGINE = {
  "protocol": set(),
  "platform": set(),
  "profile": set(),
  "proctree": set(),
  "devices": set(),
  "options": {"devices"},
  "processes": {"devices", "options", "profile", "proctree", "protocol"},
  "loading": {"devices", "options", "processes", "proctree", "protocol"},
  "scheduling": {"devices", "options", "processes", "loading", "profile", "proctree", "protocol"},
  "runner": {"devices", "options", "processes", "loading", "scheduling", "profile", "proctree", "protocol"},
  "worker": {"platform", "profile", "proctree", "protocol"},
  "judge": {"platform", "profile", "protocol"},
  "template": {"judge", "platform", "profile", "protocol", "worker"},
}


def _engine_violations(name: str, imports: set[str]) -> list[str]:
  """The engine modules ``name`` imports that ``ENGINE`` does not allow it."""
  short = name.removeprefix("verification.engine.")
  engine = {m.removeprefix("verification.engine.") for m in imports if m.startswith("verification.engine.")}
  return sorted(engine - ENGINE[short])


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
  """An import circle of ``graph`` (a package importing its own submodules is not one), or None."""
  edges = {n: {m for m in ms if not n.startswith(m + ".")} for n, ms in graph.items()}
  state: dict[str, int] = {}
  path: list[str] = []

  def visit(n: str) -> list[str] | None:
    state[n] = 1
    path.append(n)
    for m in sorted(edges.get(n, ())):
      if state.get(m) == 1:
        return [*path[path.index(m):], m]
      if m not in state and (found := visit(m)):
        return found
    path.pop()
    state[n] = 2
    return None

  for n in sorted(edges):
    if n not in state and (found := visit(n)):
      return found
  return None


def test_the_layout_is_the_documented_one():
  # the folders the README's map of the code names; a new one needs a layer above
  assert {m.split(".")[1] for m in MODULES if m.count(".") >= 2} == {"checks", "core", "engine", "targets"}
  assert "verification.checks" in MODULES and "verification.engine.protocol" in MODULES


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_goes_up_a_layer(name):
  up = sorted(m for m in GRAPH[name] if _layer(m) > _layer(name) and not m.startswith(name + "."))
  assert not up, f"{name} (layer {_layer(name)}) imports {up} from a higher layer"


def test_the_import_graph_has_no_circle():
  # a package importing its own submodules (a registry) is a downward arrow: it is not counted as a
  # circle with the submodule's import of a sibling through the package
  circle = _circle(GRAPH)
  assert circle is None, "import circle: " + " -> ".join(circle or [])


def test_every_engine_module_is_placed():
  engine = {m.removeprefix("verification.engine.") for m in MODULES if m.startswith("verification.engine.")}
  assert engine == set(ENGINE), f"engine modules without a place in ENGINE: {sorted(engine ^ set(ENGINE))}"


@pytest.mark.parametrize("name", sorted(f"verification.engine.{m}" for m in ENGINE))
def test_the_engine_imports_one_way(name):
  bad = _engine_violations(name, GRAPH[name])
  assert not bad, f"{name} imports {bad}; it may import only {sorted(ENGINE[name.rpartition('.')[2]])} of the engine"


def test_the_engine_rule_sees_a_planted_upward_import_and_the_circle_it_makes(tmp_path):
  # the checker itself: the device module importing the scheduling (which imports it) breaks both rules,
  # while the unaltered module passes them
  name = "verification.engine.devices"
  source = (PACKAGE / "engine" / "devices.py").read_text()
  planted = tmp_path / "verification" / "engine" / "devices.py"
  planted.parent.mkdir(parents=True)
  planted.write_text(source + "\n\ndef _late():\n  from verification.engine.scheduling import run\n  return run\n")
  found = _imports(planted, name)
  assert _engine_violations(name, found) == ["scheduling"]
  assert _engine_violations(name, _imports(PACKAGE / "engine" / "devices.py", name)) == []
  circle = _circle({**GRAPH, name: found - {name}})
  assert circle is not None and name in circle and "verification.engine.scheduling" in circle
  assert _circle(GRAPH) is None


def test_the_parent_and_the_worker_do_not_import_each_other():
  parent = [f"verification.engine.{m}" for m in ("devices", "options", "processes", "loading", "scheduling", "runner")]
  for side in ("verification.engine.worker", "verification.engine.judge", "verification.engine.template"):
    assert not any(side in GRAPH[p] for p in parent)
    assert not any(p in GRAPH[side] for p in parent)
  assert "verification.engine.protocol" in GRAPH["verification.engine.processes"]


def test_the_layer_test_sees_a_planted_upward_import(tmp_path):
  # the checker itself: an upward arrow written into a copy of a core module is found
  source = (PACKAGE / "core" / "tolerances.py").read_text() + "\nfrom verification.engine import runner\n"
  planted = tmp_path / "verification" / "core" / "tolerances.py"
  planted.parent.mkdir(parents=True)
  planted.write_text(source)
  found = _imports(planted, "verification.core.tolerances")
  assert "verification.engine.runner" in found
  assert any(_layer(m) > _layer("verification.core.tolerances") for m in found)
