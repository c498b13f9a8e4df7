"""brainpy.math.surrogate as candidates: in brainpy 2.8.2 it is braintools' module itself.

``brainpy/math/__init__.py`` sets ``surrogate = braintools.surrogate``: the same classes and
functional forms, so the formulas, mappings and unmapped names are braintools' (see
:mod:`verification.targets.braintools`), reached through brainpy's name. What is checked is that
brainpy exports them unchanged, with the braintools version brainpy installs.
"""

from __future__ import annotations

import importlib
import types

import jax

from verification.core.candidate import Candidate
from verification.targets import braintools as _braintools
from verification.targets._common import Mapping, call_string, installed_version, mapped_candidates

PACKAGE = "brainpy"
MODULE = "brainpy.math.surrogate"
MAPPINGS = _braintools.MAPPINGS
UNMAPPED = dict(_braintools.UNMAPPED)


def version() -> str:
  """The installed brainpy version."""
  return installed_version(PACKAGE)


def module() -> types.ModuleType:
  """``brainpy.math.surrogate`` (an attribute of brainpy.math, not a submodule), keeping JAX's 64-bit
  setting as it was (brainpy imports brainstate, which turns it off)."""
  x64 = bool(jax.config.jax_enable_x64)
  try:
    return importlib.import_module("brainpy.math").surrogate
  finally:
    jax.config.update("jax_enable_x64", x64)


def modules() -> list[types.ModuleType]:
  """The library modules whose exports are adapted."""
  return [module()]


def candidates() -> list[Candidate]:
  """One candidate per exported surrogate and parameter set, as for braintools."""
  mod = module()

  def build(m: Mapping, params: dict, ref: dict):
    call = call_string(f"{MODULE}.{m.export}", params)
    if m.export not in _braintools._SURROGATES:  # a functional form: the input comes first
      call = call.replace("(", "(x, ", 1)
    return call, _braintools._build(mod, m, params)

  return mapped_candidates(PACKAGE, version(), mod, MAPPINGS, build)
