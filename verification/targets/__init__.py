"""Built-in targets: published libraries adapted to the candidate protocol.

Each module here (``braintools``, ``spyx``, ``snntorch``, ``spikingjelly``, ``norse``, ``sinabs``,
``rockpool``, ``snnax``, ``jaxsnn``, ``brainpy``) exposes ``PACKAGE``,
``version()``, ``candidates()`` and ``UNMAPPED`` (exported surrogates that are not checked, with
the reason). ``builtin.json`` says what to install for each; it is plain JSON so that a tool
without the project's dependencies can read it; an entry with ``not_checkable`` (lava-dl) names a
library that cannot be installed here, with the reason. Nothing here imports a library until asked.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

BUILTIN_JSON = Path(__file__).with_name("builtin.json")


def builtin() -> dict[str, dict[str, Any]]:
  """The built-in targets: name -> module, package, default_version, extra_requirements, pip_args."""
  return json.loads(BUILTIN_JSON.read_text())


def load(name: str) -> ModuleType:
  """The adapter module of a built-in target (imports the library only when its candidates are built)."""
  targets = builtin()
  if name not in targets:
    raise KeyError(f"unknown built-in target {name!r}; known: {', '.join(sorted(targets))}")
  if targets[name].get("not_checkable"):
    raise SystemExit(f"{name} is not checkable here: {targets[name]['not_checkable']}")
  return importlib.import_module(targets[name]["module"])


def checkable() -> dict[str, dict[str, Any]]:
  """The built-in targets that can be installed and checked here (not marked ``not_checkable``)."""
  return {name: spec for name, spec in builtin().items() if not spec.get("not_checkable")}


def requirements(name: str, version: str | None = None) -> list[str]:
  """The pip arguments that install a built-in target: extra requirements first, then the package."""
  spec = builtin()[name]
  pinned = f"{spec['package']}=={version or spec['default_version']}"
  return [*spec.get("pip_args", []), *spec["extra_requirements"], pinned]
