"""What a built-in library's install brings in: run by ``nox -s install_check`` inside the library's environment.

``python -m verification.targets.install_probe NAME OUT`` builds the adapter's candidates as ``verify`` does
(and imports the modules its tests cover), then writes to ``OUT`` the top-level modules loaded, each with the
distribution that provides it and the requirement roots it is installed through ("via"). Exits non-zero on a
target that fails to load (a traceback) or a candidate that cannot be built.
"""

from __future__ import annotations

import sys

#: What was loaded before the probe's work: the interpreter's own modules, what ``.pth`` files load
#: (setuptools' ``_distutils_hack``) and the harness's package; they are not the library's.
STARTUP = frozenset(sys.modules)

import importlib.metadata as md  # noqa: E402  (after STARTUP: the standard library is not counted anyway)
import json  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402
import site  # noqa: E402
from collections.abc import Iterable, Sequence  # noqa: E402
from typing import Any  # noqa: E402

from verification import targets  # noqa: E402
from verification.core.candidate import Unbuilt  # noqa: E402


def build(name: str) -> tuple[Any, list[Any]]:
  """The target ``name`` with its candidates built, and those that could not be (each printed).
  Raises targets.TargetError (an import error among them)."""
  target = targets.resolve_target(name)
  adapter = targets.load(name)
  if hasattr(adapter, "modules"):
    adapter.modules()
  unbuilt = [c for c in target.candidates if isinstance(c, Unbuilt)]
  for c in target.candidates:
    print(f"UNBUILT {c.label}: {c.message}" if isinstance(c, Unbuilt) else f"  {c.label}")
  print(f"{name} {target.library['version']}: {len(target.candidates) - len(unbuilt)} candidates, "
        f"{len(unbuilt)} unbuilt")
  return target, unbuilt


def _canon(name: str) -> str:
  return re.sub(r"[-_.]+", "-", name).lower()


def _requirement():
  try:
    from packaging.requirements import Requirement
  except ImportError:
    from pip._vendor.packaging.requirements import Requirement
  return Requirement


def _requires(dist: str) -> list[str]:
  Requirement = _requirement()
  try:
    lines = md.requires(dist) or []
  except md.PackageNotFoundError:
    return []
  reqs = [Requirement(line) for line in lines]
  return [_canon(r.name) for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def _top_level(module: Any, sites: Sequence[pathlib.Path]) -> str | None:
  """The name a module is installed under in site-packages (scipy for scipy's _csparsetools), or None."""
  file = getattr(module, "__file__", None)
  if not file:
    return None
  path = pathlib.Path(file).resolve()
  for sp in sites:
    if path.is_relative_to(sp):
      top = path.relative_to(sp).parts[0]
      return None if top.startswith("__editable__") else top.removesuffix(".py").partition(".")[0]
  return None


def provenance(name: str, loaded: dict[str, Any], startup: Iterable[str]) -> dict[str, dict[str, Any]]:
  """The top-level modules of ``loaded`` (less ``startup``) installed in site-packages, each with its
  distribution and the requirement roots of library ``name`` it is installed through."""
  Requirement = _requirement()
  spec = targets.builtin()[name]
  roots = {_canon(Requirement(r).name): None for r in spec["extra_requirements"]}  # with their dependencies
  roots.update(dict.fromkeys(_requires("surrogate-harness")))  # the project's own dependencies
  roots = {root: _requires(root) for root in roots}
  roots[_canon(spec["package"])] = [] if "--no-deps" in spec.get("pip_args", []) else _requires(spec["package"])
  reach: dict[str, set[str]] = {}
  for root, first in roots.items():
    seen, todo = {root}, list(first)
    while todo:
      d = todo.pop()
      if d not in seen:
        seen.add(d)
        todo.extend(_requires(d))
    for d in seen:
      reach.setdefault(d, set()).add(root)
  providers = md.packages_distributions()
  sites = [pathlib.Path(p).resolve() for p in site.getsitepackages()]
  startup = set(startup)
  modules = {}
  for top in sorted({_top_level(m, sites) for n, m in loaded.items() if n not in startup} - {None}):
    dists = sorted({_canon(d) for d in providers.get(top, [])})
    modules[top] = {"distribution": dists[0] if dists else None,
                    "via": sorted(set().union(*(reach.get(d, set()) for d in dists))) if dists else []}
  return modules


def main(argv: Sequence[str] | None = None, startup: Iterable[str] = STARTUP) -> int:
  """Probes library ``argv[0]`` and writes its modules to ``argv[1]``; 1 where a candidate is unbuilt."""
  name, out = argv if argv is not None else sys.argv[1:]
  target, unbuilt = build(name)
  loaded = dict(sys.modules)  # before the tools of provenance() are imported
  found = {"version": target.library["version"], "modules": provenance(name, loaded, startup)}
  pathlib.Path(out).write_text(json.dumps(found, indent=1))
  return 1 if unbuilt else 0


if __name__ == "__main__":
  sys.exit(main())
