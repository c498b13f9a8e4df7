"""A persistent XLA compilation cache for the harness, and a counter of compilations.

Where: ``$SURROGATE_HARNESS_CACHE`` if set, else ``$XDG_CACHE_HOME/surrogate-harness`` (default
``~/.cache/surrogate-harness``), in a subdirectory named by the JAX and jaxlib versions and a hash of
the project's own source files (``surrogates/``, ``verification/``)::

  ~/.cache/surrogate-harness/jax-0.10.2-jaxlib-0.10.2-3f2a9c1e7b04/

A change of JAX or of the code therefore never reuses an entry of another directory (JAX's own key,
a hash of the compiled program and the compile options, already guards every entry; the keyed
directory also makes stale entries easy to see and delete). Everything there is safe to delete at
any time: a missing entry is compiled again. ``SURROGATE_HARNESS_CACHE=off`` (or ``0``, or empty)
disables it. Directories of other keys that have not been used for 14 days are removed.

The reference's values are kept there too (``reference-values/``): an evaluation of a registry surrogate as the
judge's reference (its class and exact parameters, the input's dtype, shape and bytes, the backend, device and
CPU flags, under the same keyed directory: code, JAX and jaxlib) is read back instead of traced, compiled and
run again (:func:`load_values`, :func:`save_values`). A candidate's outputs are never kept: only the
reference's, whose code is the project's own and part of the key, and only as a judge process computed them
(a worker, where candidate code runs, reads them and saves none). They take disk: 314 MB in 746 files for
the reference target (the 16-bit sweeps' reference in float64, every quantity), against 5 MB of compiled
programs; the whole keyed directory goes when the code or JAX changes (and after 14 days unused).

The reference target's compiled programs are kept there too (``reference-programs/``): tracing, lowering and
looking a program up in the compilation cache is most of what checking a candidate costs once its compilation
is cached, so a worker checking the reference target, and a judge for the reference's own programs, save each
shared program's executable once compiled (``jax.experimental.serialize_executable``), keyed by what builds it,
the surrogate's class and static parameters, the abstract values of its arguments and the machine, under the
keyed directory, and a later run reads it back and calls it (:func:`load_program`, :func:`save_program`,
:func:`verification.core.evaluate.kept`); 24 MB in 499 files for the reference target. No other worker reads or
writes them: a registry surrogate a library hands on may come from a module that changed its class, and is
traced as it is (``tests/test_kept_programs.py``).

A directory set by the user (``jax_compilation_cache_dir`` or ``JAX_COMPILATION_CACHE_DIR``) is left
as it is. Every compilation is cached (``jax_persistent_cache_min_compile_time_secs = 0``): most of
the harness's programs compile in 10-100 ms, far above the ~1 ms it takes to read one back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import pathlib
import pickle
import shutil
import threading
import time
from typing import Any

import jax
import numpy as np

ENV = "SURROGATE_HARNESS_CACHE"
_ROOT = pathlib.Path(__file__).resolve().parents[2]  # the project: surrogates/ and verification/ beside each other
_SOURCES = ("surrogates", "verification")
_STALE_DAYS = 14
_LOCK = threading.Lock()
_enabled: pathlib.Path | None = None


def source_hash() -> str:
  """A hash of the project's Python sources (paths and contents), 12 hex digits."""
  h = hashlib.sha256()
  for package in _SOURCES:
    for path in sorted((_ROOT / package).rglob("*.py")):
      h.update(str(path.relative_to(_ROOT)).encode())
      h.update(path.read_bytes())
  return h.hexdigest()[:12]


def base_directory() -> pathlib.Path | None:
  """The parent of the keyed directories, or None when the cache is disabled."""
  value = os.environ.get(ENV)
  if value is not None:
    return None if value.strip().lower() in ("", "0", "off", "false", "no") else pathlib.Path(value).expanduser()
  xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return pathlib.Path(xdg) / "surrogate-harness"


def directory() -> pathlib.Path | None:
  """The keyed cache directory for this JAX, jaxlib and source tree (None when disabled)."""
  base = base_directory()
  if base is None:
    return None
  import jaxlib

  return base / f"jax-{jax.__version__}-jaxlib-{jaxlib.__version__}-{source_hash()}"


def enable() -> pathlib.Path | None:
  """Points JAX's persistent compilation cache at :func:`directory` (once per process; idempotent).

  Returns the directory in use, or None when disabled or when the user chose another one.
  """
  global _enabled
  with _LOCK:
    if _enabled is not None:
      return _enabled
    if jax.config.jax_compilation_cache_dir:  # the user's own choice wins
      return None
    path = directory()
    if path is None:
      return None
    try:
      path.mkdir(parents=True, exist_ok=True)
    except OSError:
      return None  # read-only home, say: run without the cache
    _prune(path)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _enabled = path
    return path


def _prune(keep: pathlib.Path) -> None:
  """Removes sibling directories of other keys unused for :data:`_STALE_DAYS` days."""
  cutoff = time.time() - _STALE_DAYS * 86400
  try:
    siblings = [p for p in keep.parent.iterdir() if p.is_dir() and p != keep and p.name.startswith("jax-")]
  except OSError:
    return
  for p in siblings:
    try:
      if p.stat().st_mtime < cutoff:
        shutil.rmtree(p, ignore_errors=True)
    except OSError:
      pass


# ---------------------------------------------------------------------------------------------
# Counting compilations
# ---------------------------------------------------------------------------------------------

_REQUEST = "/jax/core/compile/backend_compile_duration"  # every XLA compile request (hit or miss)
_HIT = "/jax/compilation_cache/cache_hits"  # served by the persistent cache


@dataclasses.dataclass
class CompileCounter:
  """Counts XLA compile requests in this process while active (``with CompileCounter() as c:``).

  ``requests`` = programs handed to XLA; ``hits`` = of those, read back from the persistent cache;
  ``compiled`` = requests - hits, the compilations XLA actually did. Uses ``jax.monitoring``.
  """

  requests: int = 0
  hits: int = 0

  @property
  def compiled(self) -> int:
    return self.requests - self.hits

  def _on_duration(self, event: str, duration: float, **_: object) -> None:
    if event == _REQUEST:
      self.requests += 1

  def _on_event(self, event: str, **_: object) -> None:
    if event == _HIT:
      self.hits += 1

  def __enter__(self) -> CompileCounter:
    jax.monitoring.register_event_duration_secs_listener(self._on_duration)
    jax.monitoring.register_event_listener(self._on_event)
    return self

  def __exit__(self, *exc: object) -> None:
    jax.monitoring.unregister_event_duration_listener(self._on_duration)
    jax.monitoring.unregister_event_listener(self._on_event)


# ---------------------------------------------------------------------------------------------
# The reference's values
# ---------------------------------------------------------------------------------------------

#: The subdirectory of the keyed directory that holds the reference's values.
VALUES = "reference-values"
#: Whether this process saves the reference's values: a judge process does (:func:`save_values_here`); a worker,
#: where candidate code runs and could have changed how the reference computes, only reads them.
_SAVING = False
_WRITE_FAILED = False


def save_values_here() -> None:
  """This process computes the reference where no candidate code runs (a judge): its values may be saved."""
  global _SAVING
  _SAVING = True


def saving_values() -> bool:
  """Whether this process saves the reference's values (:func:`save_values_here`)."""
  return _SAVING


@functools.cache
def _machine() -> str:
  """What the reference's values may depend on beyond the code and JAX: the backend, the device, and on the
  CPU its instruction-set flags (XLA compiles for the host's features)."""
  import platform

  device = jax.devices()[0]
  flags = ""
  if device.platform == "cpu":
    with contextlib.suppress(OSError):
      flags = next((line for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("flags")), "")
  return f"{device.platform}|{device.device_kind}|{platform.machine()}|{flags}"


def _digest(*parts: str, data: bytes = b"") -> str:
  """A SHA-256 in hex of ``parts`` (each ended by a NUL) and then ``data``."""
  h = hashlib.sha256()
  for part in parts:
    h.update(part.encode() + b"\0")
  h.update(data)
  return h.hexdigest()


def _entry(kind: str, key: str, suffix: str) -> pathlib.Path | None:
  """Where the entry ``key`` of ``kind`` (:data:`VALUES`, :data:`PROGRAMS`) lives, or None with the cache off."""
  return _enabled / kind / key[:2] / f"{key}{suffix}" if _enabled is not None else None


def _read_digested(path: pathlib.Path | None) -> memoryview | None:
  """The bytes :func:`_write_digested` wrote at ``path``, or None (no file, the cache off, or a digest that does not
  match the bytes: a torn or changed entry)."""
  try:
    data = path.read_bytes() if path is not None else b""
  except OSError:
    return None
  if len(data) <= 32 or hashlib.sha256(memoryview(data)[32:]).digest() != data[:32]:
    return None
  return memoryview(data)[32:]


def _write_digested(path: pathlib.Path, data: bytes) -> None:
  """``data`` after its SHA-256 at ``path`` (:func:`_write`)."""
  _write(path, lambda f: f.write(hashlib.sha256(data).digest() + data))


def _write(path: pathlib.Path, write: Any) -> None:
  """``write(file)`` into a temporary file beside ``path``, then renamed to it: a reader sees the whole entry or
  none. A full or read-only disk stops this process's saving (it runs on without)."""
  global _WRITE_FAILED
  if _WRITE_FAILED:
    return
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "wb") as f:
      write(f)
    os.replace(tmp, path)
  except OSError:
    _WRITE_FAILED = True


def values_key(owner: str, x: Any) -> str:
  """The key of an evaluation of ``owner`` (the reference surrogate's repr: class and parameters) at the array
  ``x`` (dtype, shape and bytes exact): a SHA-256 in hex, with the machine (:func:`_machine`) in it."""
  return _digest(owner, _machine(), str(x.dtype), repr(x.shape), data=x.tobytes())


def load_values(key: str) -> dict[str, Any] | None:
  """The reference's values saved under ``key`` (NumPy arrays by quantity), or None (none saved, the cache
  off, an entry that does not read back: torn or changed, its digest does not match its bytes)."""
  from verification.core import tape

  data = _read_digested(_entry(VALUES, key, ".values"))
  if data is None:
    return None
  try:
    out = tape.decode(tape.loads(data)[0])
    return out if isinstance(out, dict) and all(isinstance(v, np.ndarray) for v in out.values()) else None
  except Exception:  # a foreign file: computed again (and rewritten)
    return None


def save_values(key: str, values: dict[str, Any]) -> None:
  """Saves the reference's values under ``key``: as a record's bytes (:func:`verification.core.tape.dumps`: the
  arrays' bytes and dtypes exact, bfloat16 too) after their SHA-256 (:func:`_write`). Nothing is saved where the
  cache is off or this process does not save them (:func:`save_values_here`)."""
  from verification.core import tape

  path = _entry(VALUES, key, ".values")
  if path is None or not _SAVING:
    return
  _write_digested(path, tape.dumps([tape.encode(dict(values))]))


# ---------------------------------------------------------------------------------------------
# The reference target's programs
# ---------------------------------------------------------------------------------------------

#: The subdirectory of the keyed directory that holds the reference target's compiled programs (written and read
#: only where no code but the project's runs: a worker checking the reference target and a judge,
#: :class:`verification.core.evaluate.Evaluator`'s ``keep_programs``).
PROGRAMS = "reference-programs"


def program_key(*parts: str) -> str:
  """The key of a program: its parts (what builds it and the abstract values of its arguments), the machine
  (:func:`_machine`) and whether 64-bit is on, a SHA-256 in hex."""
  return _digest(*parts, _machine(), str(jax.config.jax_enable_x64))


def load_program(key: str) -> Any | None:
  """The compiled program saved under ``key``, loaded and callable; None where there is none or it does not read
  back (a digest that does not match its bytes: torn or changed, never handed to XLA)."""
  data = _read_digested(_entry(PROGRAMS, key, ".xla"))
  if data is None:
    return None
  try:
    from jax.experimental import serialize_executable

    return serialize_executable.deserialize_and_load(*pickle.loads(data))
  except Exception:
    return None


def save_program(key: str, compiled: Any) -> None:
  """Saves a compiled program (``jax.stages.Compiled``) under ``key``, its bytes after their SHA-256
  (:func:`_write`); nothing where the cache is off."""
  path = _entry(PROGRAMS, key, ".xla")
  if path is not None:
    from jax.experimental import serialize_executable

    _write_digested(path, pickle.dumps(serialize_executable.serialize(compiled)))
