"""Built-in targets: published libraries adapted to the candidate protocol.

Each module here (``braintools``, ``spyx``, ``snntorch``, ``spikingjelly``) exposes ``PACKAGE``,
``version()``, ``candidates()`` and ``UNMAPPED`` (exported surrogates that are not checked, with
the reason). ``builtin.json`` says what to install for each; it is plain JSON so that a tool
without the project's dependencies can read it. Nothing here imports a library until asked.
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
  return importlib.import_module(targets[name]["module"])


def requirements(name: str, version: str | None = None) -> list[str]:
  """The pip arguments that install a built-in target: extra requirements first, then the package."""
  spec = builtin()[name]
  pinned = f"{spec['package']}=={version or spec['default_version']}"
  return [*spec.get("pip_args", []), *spec["extra_requirements"], pinned]
