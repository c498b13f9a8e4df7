"""Workers and judges forked from a template process (verification/engine/template.py) behave as fresh
ones, and a template that a candidate ends, or that cannot start, costs errors or time, never the run.

Each way a process can end is run both ways, forked and as ``python -m`` (``SURROGATE_HARNESS_TEMPLATE=off``),
on a probe module; the hostile candidates are in tests/hostile (``KILLS_ITS_PARENT``, ...).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests._subprocess import environment
from verification.engine import processes, proctree
from verification.engine.runner import Options, run
from verification.results import Run, Status

FAST = ["--checks", "forward,autodiff", "--dtypes", "float32", "--quiet"]
PROBE = "tests.fixtures.forked_probe"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "verification", *args], capture_output=True, text=True, timeout=300,
                        env=env)


def probe(end: str, value: str) -> tuple[dict, int, str, type]:
  """What the probe module saw, its exit status and output, and the kind of handle it was started with."""
  parent, child = socket.socketpair()
  try:
    proc = processes.start(PROBE, child, {**os.environ, "SURROGATE_HARNESS_PROBE": value})
  finally:
    child.close()
  with parent:
    reader = parent.makefile()
    seen = json.loads(reader.readline())
    parent.sendall(end.encode() + b"\n")
    code = proc.wait(timeout=60)
  out = proc.stdout.read().decode()
  proc.stdout.close()
  return seen, code, out, type(proc)


ENDINGS = {"return": (3, "probe output"), "raise": (1, "ValueError: the probe raises"),
           "exit text": (1, "the probe's exit text"), "segfault": (-signal.SIGSEGV, "probe output")}


@pytest.mark.parametrize("end", sorted(ENDINGS))
def test_a_forked_process_ends_and_sees_what_a_fresh_one_does(end, monkeypatch):
  forked = probe(end, "first"), probe(end, "second")
  monkeypatch.setenv(processes.TEMPLATE_SWITCH, "off")
  fresh = probe(end, "first")
  assert {kind for _, _, _, kind in forked} == {processes.Forked} and fresh[3] is subprocess.Popen
  code, words = ENDINGS[end]
  for seen, got, out, _ in (*forked, fresh):
    assert got == code and words in out, (end, got, out)
    assert seen["cwd"] == os.getcwd() and seen["leader"] and seen["stdin"] == os.devnull
    assert seen["argv"] and seen["argv"][0].isdigit()
    assert seen["cmdline"] == [sys.executable, "-m", PROBE, *seen["argv"]]  # as ps and psutil name it
    assert (seen["sigint"], seen["sigchld"]) == (fresh[0]["sigint"], fresh[0]["sigchld"])
  # its own environment (one the template was not started with), and its own random draws
  assert [f[0]["probe"] for f in forked] == ["first", "second"]
  assert forked[0][0]["numpy"] != forked[1][0]["numpy"] and forked[0][0]["random"] != forked[1][0]["random"]


def test_jax_options_named_by_the_environment_are_set_in_the_child_as_at_import():
  import jax

  from verification.engine.template import jax_environment

  names = ("jax_debug_nans", "jax_numpy_rank_promotion", "jax_default_matmul_precision",
           "jax_tracer_error_num_traceback_frames")
  before = {k: jax.config.values[k] for k in names}
  defaults = dict(jax.config.values)
  try:
    jax_environment({"JAX_DEBUG_NANS": "true", "JAX_NUMPY_RANK_PROMOTION": "raise",
                     "JAX_DEFAULT_MATMUL_PRECISION": "highest", "JAX_TRACER_ERROR_NUM_TRACEBACK_FRAMES": "7"},
                    defaults)
    assert [jax.config.values[k] for k in names] == [True, "raise", "highest", 7]
    with pytest.raises(ValueError, match="maybe"):  # JAX's import would refuse it too
      jax_environment({"JAX_DEBUG_NANS": "maybe"}, defaults)
  finally:
    for k, v in before.items():
      jax.config.update(k, v)


def _results(path) -> dict:
  return {(r.label, r.check): r for r in Run.from_json(json.loads(path.read_text())).results}


def test_a_candidate_that_kills_its_parent_is_an_error_and_a_new_template_serves_the_rest(tmp_path):
  out = tmp_path / "run.json"
  proc = cli("--target", "tests.hostile:KILLS_ITS_PARENT", *FAST, "--jobs", "1", "--json", str(out))
  assert proc.returncode == 1, proc.stdout + proc.stderr
  results = _results(out)
  for check in ("forward", "autodiff"):
    killer = results[("kills its parent", check)]
    assert killer.status is Status.ERROR and "template process" in killer.diagnosis.text(), killer.diagnosis.text()
    assert results[("correct after the parent's death", check)].status is Status.PASS


def test_a_candidate_that_kills_its_parents_group_costs_errors_naming_it_and_the_run_finishes(tmp_path):
  out = tmp_path / "run.json"
  proc = cli("--target", "tests.hostile:KILLS_ITS_PARENTS_GROUP", *FAST, "--jobs", "2", "--json", str(out))
  assert proc.returncode == 1, proc.stdout + proc.stderr
  results = _results(out)
  assert len(results) == 8
  assert all(results[("kills its parent's group", c)].status is Status.ERROR for c in ("forward", "autodiff"))
  for (label, _), r in results.items():  # a candidate whose worker or judge went with the template says why
    assert r.status is Status.PASS or "template process" in r.diagnosis.text(), (label, r.diagnosis.text())
  assert sum(r.status is Status.PASS for r in results.values()) >= 2


def test_no_worker_judge_or_template_outlives_a_harness_killed_with_sigkill():
  harness = subprocess.Popen([sys.executable, "-m", "verification", "--target", "tests.hostile:HANGS", *FAST,
                              "--timeout", "120", "--jobs", "1"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=environment())
  try:
    deadline = time.monotonic() + 120
    tree: list[int] = []
    while time.monotonic() < deadline and len(tree) < 3:  # the template, a worker and a judge (forked from it)
      time.sleep(0.5)
      tree = proctree.descendants(harness.pid)
    names = {pid: _cmdline(pid) for pid in tree}
    assert any("verification.engine.template" in c for c in names.values()), names
  finally:
    harness.kill()
    harness.wait()
  deadline = time.monotonic() + 20
  while time.monotonic() < deadline and any(_alive(p) for p in tree):
    time.sleep(0.2)
  assert not [names[p] for p in tree if _alive(p)], "outlived the harness process"


def _cmdline(pid: int) -> str:
  try:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
      return f.read().replace(b"\0", b" ").decode(errors="replace")
  except OSError:
    return ""


def _alive(pid: int) -> bool:
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rpartition(")")[2].split()[0] != "Z"
  except OSError:
    return False


@pytest.mark.parametrize("how", ["fails at start", "does not start in time"])
def test_a_template_that_cannot_start_leaves_the_processes_to_start_the_plain_way(how, monkeypatch):
  monkeypatch.setattr(processes, "_templates", {})
  monkeypatch.setattr(processes, "_no_template", set())
  if how == "fails at start":
    monkeypatch.setattr(processes.Template, "module", "verification.engine.no_such_template")
  else:
    monkeypatch.setattr(processes, "TEMPLATE_START", 0.05)
  started = []
  plain = processes.start
  monkeypatch.setattr(processes, "start", lambda *a: started.append(plain(*a)) or started[-1])
  only = ("correct after deaths",)
  doc = run("tests.hostile:DIES", Options(checks=("forward",), dtypes=("float32",), jobs=1, labels=only))
  assert [r.status for r in doc.results] == [Status.PASS]
  assert started and all(isinstance(p, subprocess.Popen) for p in started)
  assert processes._no_template and not processes._templates


def _verdicts(env: dict[str, str], tmp_path, name: str) -> dict:
  out = tmp_path / name
  proc = cli("--target", "tests.hostile:DIES", *FAST, "--jobs", "2", "--json", str(out), env=env)
  assert proc.returncode == 1, proc.stdout + proc.stderr
  return {k: (r.status, r.message.split("; its last output")[0]) for k, r in _results(out).items()}


def test_forked_and_fresh_workers_give_the_same_results(tmp_path):
  forked = _verdicts(environment(), tmp_path, "forked.json")
  fresh = _verdicts({**environment(), processes.TEMPLATE_SWITCH: "off"}, tmp_path, "fresh.json")
  assert forked == fresh and len(forked) == 6
  assert forked[("segfaults", "forward")][0] is Status.ERROR and "SIGSEGV" in forked[("segfaults", "forward")][1]


def test_a_template_is_kept_per_environment_and_the_least_recently_used_idle_one_is_ended(monkeypatch):
  monkeypatch.setattr(processes, "_templates", {})
  monkeypatch.setattr(processes, "TEMPLATES_KEPT", 1)
  first = processes.template_for({**os.environ, "PROBE_ENVIRONMENT": "a"})
  assert processes.template_for({**os.environ, "PROBE_ENVIRONMENT": "a", "JAX_DEBUG_NANS": "1"}) is first
  second = processes.template_for({**os.environ, "PROBE_ENVIRONMENT": "b"})
  assert first is not None and second is not None and second is not first
  assert first.gone is not None and first.proc.poll() is not None and list(processes._templates.values()) == [second]
  second.end()
