"""The reference target's traced programs kept across runs (``verification.core.evaluate.kept``): read back, a
program gives what tracing it gives, without tracing; an entry that cannot be read is traced again; only the
reference target's worker (and a judge, for the reference's own programs) reads or writes them, so a module
that changed a reference class is judged on what it changed."""

from __future__ import annotations

import json
import subprocess
import sys

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


def _traced_program():
  traces = []

  @jax.jit
  def program(a, x):
    traces.append(x.dtype)  # Python runs while tracing only
    return {"y": a * jnp.sin(x) + jnp.cos(x) ** 2}

  return program, traces


def test_a_kept_program_is_traced_once_then_read_back_and_gives_the_same_values(programs_dir, monkeypatch):
  program, traces = _traced_program()
  x = np.linspace(-2.0, 2.0, 16)
  first = evaluate.kept(program, "tests.program", 2.0, x)
  assert len(traces) == 1 and len(list(programs_dir.rglob("*.jaxexport"))) == 1
  np.testing.assert_array_equal(first["y"], program(2.0, x)["y"])
  monkeypatch.setattr(evaluate, "_KEPT", {})  # a later run
  again = evaluate.kept(program, "tests.program", 3.0, x)  # another parameter value: the same program
  assert len(traces) == 1, "read back, the program is not traced"
  np.testing.assert_array_equal(again["y"], program(3.0, x)["y"])
  evaluate.kept(program, "tests.program", 2.0, x.astype(np.float32))  # other abstract values: another program
  evaluate.kept(program, "tests.other", 2.0, x)  # another name: another program
  assert len(list(programs_dir.rglob("*.jaxexport"))) == 3


def test_an_entry_that_cannot_be_read_is_traced_again(programs_dir, monkeypatch):
  program, _ = _traced_program()
  x = np.linspace(-2.0, 2.0, 16)
  evaluate.kept(program, "tests.program", 2.0, x)
  (entry,) = programs_dir.rglob("*.jaxexport")
  entry.write_bytes(b"torn" * 10)
  monkeypatch.setattr(evaluate, "_KEPT", {})
  got = evaluate.kept(program, "tests.program", 2.0, x)
  np.testing.assert_array_equal(got["y"], program(2.0, x)["y"])


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
  kept = {p: p.stat().st_mtime_ns for p in cache_dir.rglob(f"{cache.PROGRAMS}/*/*.jaxexport")}
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
