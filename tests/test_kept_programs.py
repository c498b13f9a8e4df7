"""The reference target's compiled programs kept across runs (``verification.core.evaluate.kept``): read back, a
program gives what tracing it gives, without tracing; an entry that cannot be read is traced again; an
executable JAX's cache read back is not kept, and a kept one that fails runs the program as it is; only the
reference target's worker (and a judge, for the reference's own programs) reads or writes them, so a module
that changed a reference class is judged on what it changed."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests._subprocess import environment
from verification.core import cache, evaluate


@pytest.fixture
def programs_dir(tmp_path, monkeypatch):
  """An empty cache directory of this process's own, and no program kept in memory (as in a fresh process)."""
  monkeypatch.setattr(cache, "_enabled", tmp_path)
  monkeypatch.setattr(cache, "_WRITE_FAILED", False)  # (a write an earlier test made fail stops this process's)
  monkeypatch.setattr(evaluate, "_KEPT", {})
  return tmp_path / cache.PROGRAMS


_FRESH = itertools.count(time.time_ns() % 100_003)


def _traced_program():
  traces = []
  new = next(_FRESH) + 0.5  # a constant of its own: a program no cache of this process's JAX has seen

  @jax.jit
  def program(a, x):
    traces.append(x.dtype)  # Python runs while tracing only
    return {"y": a * jnp.sin(x) + jnp.cos(x) ** 2 + new}

  return program, traces


def test_a_kept_program_is_traced_once_then_read_back_and_gives_the_same_values(programs_dir, monkeypatch):
  program, traces = _traced_program()
  x = np.linspace(-2.0, 2.0, 16)
  first = evaluate.kept(program, "tests.program", 2.0, x)
  assert len(traces) == 1 and len(list(programs_dir.rglob("*.xla"))) == 1
  np.testing.assert_array_equal(first["y"], program(2.0, x)["y"])
  monkeypatch.setattr(evaluate, "_KEPT", {})  # a later run
  again = evaluate.kept(program, "tests.program", 3.0, x)  # another parameter value: the same program
  assert len(traces) == 1, "read back, the program is not traced"
  np.testing.assert_array_equal(again["y"], program(3.0, x)["y"])
  evaluate.kept(program, "tests.program", 2.0, x.astype(np.float32))  # other abstract values: another program
  other, _ = _traced_program()  # another name, the same abstract values: another program, not the kept one
  np.testing.assert_array_equal(evaluate.kept(other, "tests.other", 2.0, x)["y"], other(2.0, x)["y"])
  assert len(list(programs_dir.rglob("*.xla"))) == 3


def test_an_entry_that_cannot_be_read_is_traced_again(programs_dir, monkeypatch):
  program, _ = _traced_program()
  x = np.linspace(-2.0, 2.0, 16)
  evaluate.kept(program, "tests.program", 2.0, x)
  (entry,) = programs_dir.rglob("*.xla")
  entry.write_bytes(b"torn" * 10)
  monkeypatch.setattr(evaluate, "_KEPT", {})
  got = evaluate.kept(program, "tests.program", 2.0, x)
  np.testing.assert_array_equal(got["y"], program(2.0, x)["y"])


_IN_A_PROCESS = """
import json, sys
import jax, jax.numpy as jnp, numpy as np
from verification.core import cache, evaluate

cache.enable()

@jax.jit
def program(a, x):
  return {"y": a * jnp.sin(x) + jnp.cos(x) ** 2}

class NoHits(list):  # plants a keeper that cannot tell what JAX's cache read back
  def __getitem__(self, i):
    return 0

if sys.argv[1] == "blind":
  evaluate._CACHE_HITS = NoHits([0])
x = np.linspace(-2.0, 2.0, 16)
got = evaluate.kept(program, "tests.program", 2.0, x)
hits = evaluate._CACHE_HITS[0]  # (before the program as it is runs, which JAX's cache reads back too)
print(json.dumps({"equal": bool(np.array_equal(got["y"], program(2.0, x)["y"])), "hits": hits}))
"""


def test_a_program_jaxs_cache_read_back_is_not_kept_and_a_kept_one_that_fails_is_run_as_it_is(tmp_path):
  # On the CPU an executable that JAX's persistent cache read back serialises without its kernels: kept, it
  # would read back and fail ("Function ... not found"). So only a program compiled in the process is kept,
  # and a kept program is waited for, so one that fails falls back to the program as it is.
  env = {**environment(), cache.ENV: str(tmp_path)}

  def run(mode: str = "keep") -> dict:
    done = subprocess.run([sys.executable, "-c", _IN_A_PROCESS, mode], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.splitlines()[-1])

  def entries() -> list:
    return list(tmp_path.rglob(f"{cache.PROGRAMS}/*/*.xla"))

  assert run() == {"equal": True, "hits": 0} and len(entries()) == 1  # compiled here: kept
  entries()[0].unlink()
  assert run() == {"equal": True, "hits": 1} and entries() == [], "read back from JAX's cache: not kept"
  assert run("blind")["equal"] and len(entries()) == 1  # a keeper blind to it keeps the broken executable
  assert run() == {"equal": True, "hits": 1}, "the kept program failed and the program ran as it is"


def _cli(args: list[str], cache_dir, out) -> subprocess.CompletedProcess:
  env = {**environment(), cache.ENV: str(cache_dir)}
  command = [sys.executable, "-m", "verification", "--checks", "forward,differential,parameters", "--dtypes",
             "float32", "--quiet", "--jobs", "1", "--json", str(out), *args]
  return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def _statuses(path) -> dict:
  results = json.loads(path.read_text())["results"]
  return {(r["label"], r["check"]): (r["status"], r["detail"].get("message")) for r in results}


def test_only_the_reference_target_keeps_programs_and_a_changed_class_is_traced_as_it_is(tmp_path):
  cache_dir = tmp_path / "cache"
  first = _cli(["--only", "Sigmoid"], cache_dir, tmp_path / "first.json")
  assert first.returncode == 0, first.stdout + first.stderr
  kept = {p: p.stat().st_mtime_ns for p in cache_dir.rglob(f"{cache.PROGRAMS}/*/*.xla")}
  assert kept, "the reference target's worker keeps its programs"
  second = _cli(["--only", "Sigmoid"], cache_dir, tmp_path / "second.json")
  assert second.returncode == 0, second.stdout + second.stderr
  assert _statuses(tmp_path / "second.json") == _statuses(tmp_path / "first.json")
  # a module that doubled Sigmoid's gradient hands on Sigmoid instances: traced as it left them, never read
  # from the programs kept for the reference (which would pass them), and none of those is rewritten
  patched = _cli(["--target", "tests.hostile.patches_the_reference:CANDIDATES"], cache_dir, tmp_path / "patched.json")
  assert patched.returncode == 1, patched.stdout + patched.stderr
  results = _statuses(tmp_path / "patched.json")
  assert results[("Sigmoid(alpha=4.0)", "differential")][0] == "fail"
  assert {s for (label, _), (s, _) in results.items() if label.startswith("Arctan")} == {"pass"}
  assert {label for label, _ in results} == {"Sigmoid(alpha=4.0)", "Arctan(alpha=1.0)"}
  # (the judge keeps the reference's own programs, Arctan's among them: new entries, none rewritten)
  assert {p: p.stat().st_mtime_ns for p in kept} == kept
