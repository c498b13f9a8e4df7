"""The pytest plugin, run as a user runs it: pytest in a subprocess, in a project of its own.

The candidates module is written into a temporary directory: a correct candidate (a hand-written
``jax.custom_jvp`` rule) and its planted twin with half the gradient; the items are checked for
their names, outcomes, diagnosis text, skip reasons, JUnit output, shards and xdist grouping.
"""

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests._subprocess import environment
from verification.checks import CHECKS
from verification.engine.runner import in_shard
from verification.results import Run

ROOT = Path(__file__).resolve().parents[1]

CANDIDATES = '''
import jax
import jax.numpy as jnp


def spike_function(factor):
  @jax.custom_jvp
  def spike(x):
    return jnp.heaviside(x, 1.0).astype(x.dtype)

  @spike.defjvp
  def _(primals, tangents):
    (x,), (t,) = primals, tangents
    r = 1 / (1 + 25 * jnp.abs(x))
    return spike(x), factor * r * r * t

  return spike


CANDIDATES = [
    {"name": "fast_sigmoid", "params": {"slope": 25.0}, "fn": spike_function(1.0), "label": "correct"},
    {"name": "fast_sigmoid", "params": {"slope": 25.0}, "fn": spike_function(0.5), "label": "halved"},
    {"name": "superspike", "params": {"k": 25.0}, "fn": spike_function(1.0), "label": "alias"},
]
'''
LABELS = ("correct", "halved", "alias")


#: Where the package is installed (``pip install -e .``) pytest loads the plugin by its entry point.
INSTALLED = any(ep.value == "verification.pytest_plugin" for ep in importlib.metadata.entry_points(group="pytest11"))


def pytest_run(project: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
  env = {**environment(), "PYTHONPATH": os.pathsep.join([str(ROOT), str(project)])}
  plugin = [] if INSTALLED else ["-p", "verification.pytest_plugin"]
  cmd = [sys.executable, "-m", "pytest", *plugin, "-p", "no:cacheprovider", "--rootdir", str(project), *args]
  return subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
  path = tmp_path_factory.mktemp("plugin")
  (path / "mycands.py").write_text(CANDIDATES)
  return path


def collected(proc: subprocess.CompletedProcess) -> list[str]:
  return [line.split("::")[-1] for line in proc.stdout.splitlines() if "::" in line]


def test_one_item_per_candidate_and_check(project):
  proc = pytest_run(project, "--collect-only", "-q", "--surrogate-target", "mycands:CANDIDATES")
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert sorted(collected(proc)) == sorted(f"{label}[{check}]" for label in LABELS for check in CHECKS)


def test_shards_split_whole_candidates(project):
  shards = []
  for k in (1, 2):
    proc = pytest_run(project, "--collect-only", "-q", "--surrogate-target", "mycands:CANDIDATES",
                      "--surrogate-checks", "forward,edge", "--surrogate-shard", f"{k}/2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shards.append({item.split("[")[0] for item in collected(proc)})
    assert len(collected(proc)) == 2 * len(shards[-1])
  assert shards[0] | shards[1] == set(LABELS) and not shards[0] & shards[1]
  assert shards == [{label for label in LABELS if in_shard(label, (k, 2))} for k in (1, 2)]  # as the CLI shards


def test_unloadable_target_is_a_collection_error(project):
  proc = pytest_run(project, "--collect-only", "-q", "--surrogate-target", "no_such_module:CANDIDATES")
  assert proc.returncode != 0
  assert "surrogate target 'no_such_module:CANDIDATES' could not be loaded" in proc.stdout
  assert "ModuleNotFoundError: No module named 'no_such_module'" in proc.stdout


def test_a_target_that_ends_its_process_at_import_is_a_collection_error(project):
  # Imported by pytest's own process, os._exit(0) would end the session with status 0, nothing checked.
  (project / "exits_at_import.py").write_text("import os\nos._exit(0)\n")
  proc = pytest_run(project, "--collect-only", "-q", "--surrogate-target", "exits_at_import:CANDIDATES")
  assert proc.returncode != 0, proc.stdout + proc.stderr
  assert "surrogate target 'exits_at_import:CANDIDATES' could not be loaded" in proc.stdout
  assert "loading it ended the worker process: exited with status 0" in proc.stdout


def test_unknown_check_is_a_collection_error(project):
  proc = pytest_run(project, "--collect-only", "-q", "--surrogate-target", "mycands:CANDIDATES",
                    "--surrogate-checks", "forwrd")
  assert proc.returncode != 0 and "unknown surrogate checks ['forwrd']; known: forward" in proc.stdout


def test_marker_items_under_xdist(project):
  """A module marker, two xdist workers: outcomes, diagnosis text, skip reason, JUnit, one worker per candidate."""
  (project / "test_lib.py").write_text(textwrap.dedent('''
      import pytest

      pytestmark = pytest.mark.surrogate_target("mycands:CANDIDATES", checks="forward,derivative,differential",
                                                dtypes="float32")
  '''))
  proc = pytest_run(project, "test_lib.py", "-n", "2", "-v", "-rA", "--junitxml", str(project / "junit.xml"),
                    "--surrogate-json", str(project / "verify.json"))
  out = proc.stdout
  assert proc.returncode == 1, out + proc.stderr
  outcome = {item: status for status, item in re.findall(
      r"\[gw\d\] \[\s*\d+%\] (PASSED|FAILED|SKIPPED|ERROR) test_lib\.py::mycands:CANDIDATES::(\S+\])", out)}
  expected = {f"{label}[{check}]": "PASSED" for label in LABELS for check in ("forward", "differential")}
  expected.update({f"{label}[derivative]": "SKIPPED" for label in LABELS})
  expected["halved[differential]"] = "FAILED"
  assert outcome == expected, out
  # one xdist worker ran all the items of a candidate
  workers = {}
  for gw, item in re.findall(r"\[(gw\d)\] \[\s*\d+%\] \w+ test_lib\.py::mycands:CANDIDATES::(\w+)\[", out):
    workers.setdefault(item, set()).add(gw)
  assert all(len(w) == 1 for w in workers.values()), workers
  # the failure text is the diagnosis; skips carry the reason
  assert re.search(r"halved \[differential\] fail: g differs from the reference .* in float32", out)
  assert "tolerance: 16·eps(float32)" in out
  assert re.search(r"SKIPPED .*skip: no surrogate_fun", out)
  # xdist's loadgroup appends "@group" to the names
  cases = {c.get("name").split("@")[0]: c for c in ET.parse(project / "junit.xml").getroot().iter("testcase")}
  failure = cases["halved[differential]"].find("failure")
  assert failure is not None and "expected" in failure.get("message", "") + (failure.text or "")
  assert cases["correct[derivative]"].find("skipped") is not None
  # each xdist worker wrote the verification JSON of what it ran: together, every result once
  runs = [Run.from_json(json.loads(p.read_text())) for p in sorted(project.glob("verify.gw*.json"))]
  assert len(runs) == 2 and all(run.target == "mycands:CANDIDATES" for run in runs)
  assert sorted(f"{r.label}[{r.check}]" for run in runs for r in run.results) == sorted(expected)


def test_command_line_target_without_xdist(project):
  """The option form, no xdist (one run for the target), -k deselecting a candidate and a check."""
  proc = pytest_run(project, "--surrogate-target", "mycands:CANDIDATES", "--surrogate-checks",
                    "forward,edge,differential", "--surrogate-dtypes", "float32", "-k", "not alias and not edge",
                    "-m", "surrogate", "-v", "-p", "no:xdist", "--ignore", "test_lib.py")  # the marker test's file
  assert proc.returncode == 1, proc.stdout + proc.stderr
  outcome = {item: status for item, status in re.findall(
      r"^mycands:CANDIDATES::(\S+\]) (PASSED|FAILED|SKIPPED|ERROR)", proc.stdout, re.MULTILINE)}
  assert outcome == {"correct[forward]": "PASSED", "correct[differential]": "PASSED", "halved[forward]": "PASSED",
                     "halved[differential]": "FAILED"}, proc.stdout
  assert "5 deselected" in proc.stdout



def test_a_device_jax_cannot_start_fails_the_items_naming_it(project):
  # no GPU here: the workers refuse --device gpu before any check, and the items say why
  proc = pytest_run(project, "-q", "--surrogate-target", "mycands:CANDIDATES", "-k", "correct and forward",
                    "--surrogate-device", "gpu")
  assert proc.returncode == 1, proc.stdout + proc.stderr
  assert "--device gpu" in proc.stdout and "passed" not in proc.stdout.splitlines()[-1], proc.stdout
