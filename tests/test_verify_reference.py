"""The reference passes every check of the harness, at every representative parameter set."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import surrogates
from verification import CHECKS, reference_candidates
from verification.results import Status

CANDIDATES = reference_candidates()


@pytest.fixture(scope="module")
def reference_run(reference_results):
  return reference_results  # one run per session (tests/conftest.py)


@pytest.mark.parametrize("candidate", CANDIDATES, ids=lambda c: c.label)
def test_reference_passes_every_check(candidate, reference_run):
  got = {r.check: r for r in reference_run.results if r.label == candidate.label}
  assert set(got) == set(CHECKS)
  bad = {c: r.diagnosis.text() for c, r in got.items() if r.status not in (Status.PASS, Status.SKIP)}
  assert not bad
  assert got["differential"].status is Status.SKIP  # the reference against itself says nothing
  curve = reference_run.curves[candidate.label]
  assert len(curve.x) >= 256 and curve.g == curve.reference_g  # itself, sampled at the same points


def test_workers_are_reused_between_well_behaved_candidates(reference_run):
  assert reference_run.provenance["workers_started"] == reference_run.provenance["workers"] <= 2


def test_every_registry_surrogate_is_verified():
  assert {c.name for c in CANDIDATES} == set(surrogates.REGISTRY)


def test_cli_writes_json_and_junit_and_fails_on_a_defect(tmp_path):
  """End to end: the command line on a planted defect exits 1 and writes both reports."""
  out_json, out_xml = tmp_path / "r.json", tmp_path / "r.xml"
  cmd = [sys.executable, "-m", "verification", "--target", "tests.planted:DEFECTIVE", "--only", "Arctan",
         "--dtypes", "float32,float64", "--json", str(out_json), "--junit", str(out_xml), "--jobs", "1", "--profile"]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 1, proc.stdout + proc.stderr
  doc = json.loads(out_json.read_text())
  assert doc["schema_version"] == 2 and doc["checks"] == list(CHECKS)
  assert doc["provenance"]["argv"] and doc["environment"]["jax"]
  records = doc["results"]
  assert {tuple(sorted(r)) for r in records} == {("check", "detail", "label", "params", "seconds", "status",
                                                  "surrogate")}
  derivative = next(r for r in records if r["check"] == "derivative")
  assert derivative["status"] == "fail" and {"worst_input", "expected", "got", "tolerance"} <= set(derivative["detail"])
  assert "sign error in g" in proc.stdout and "FAIL" in proc.stdout
  xml = out_xml.read_text()
  assert "<testsuite" in xml and "<failure" in xml and "sign error in g" in xml
  # --profile: the table at the end, and the same figures in the JSON's provenance
  assert "where the time went" in proc.stdout and "judge 1" in proc.stdout.split("where the time went")[1]
  assert_profile_adds_up(doc["provenance"]["profile"], workers=1)
  assert "template 1" in doc["provenance"]["profile"]["processes"]  # the CLI's harness process started one


def assert_profile_adds_up(prof, workers):
  """Each worker's and judge's parts, timed separately, sum to its lifetime; the harness process's to the run's.

  Slack: 2% of a process's lifetime plus 0.1 s. What no timer covers is the time between two timers (a few
  microseconds a message) and the kernel's clock tick (10 ms) in a process's creation time; a part that was
  not measured (the time a judge spends reading a record, say) shows as a gap of seconds over a run.
  """
  from verification.engine import profile

  names = set(prof["processes"])
  assert {f"{kind} {k}" for kind in ("worker", "judge") for k in range(1, workers + 1)} <= names
  for name, p in prof["processes"].items():
    assert set(profile.PARTS) <= set(p), name
    # a template process's work is its imports (the run that started it has its line: verification.engine.template)
    busy = {"worker": p["candidate code"] + p["checks"], "judge": p["judging"]}.get(name.split()[0], p["jax import"])
    assert busy > 0 and p["jax import"] > 0 and p["start"] > 0, (name, p)
    assert abs(profile.unaccounted(p)) <= 0.02 * p["lifetime"] + 0.1, (name, p)
    assert 0 < p["cpu"] and p["lifetime"] <= prof["wall"] + prof["parent"]["before the run"] + 1.0, (name, p)
  parent = prof["parent"]
  assert abs(parent["loading"] + parent["checking"] + parent["stopping"] - prof["wall"]) <= 0.01, parent
  assert prof["totals"]["waiting"] == pytest.approx(sum(p["waiting"] for p in prof["processes"].values()), abs=1e-2)


def test_the_profile_of_the_reference_run_adds_up(reference_run):
  assert_profile_adds_up(reference_run.provenance["profile"], workers=reference_run.provenance["workers"])
  from verification.engine import profile

  lines = profile.table(reference_run.provenance["profile"]).splitlines()
  assert lines[-1].startswith("total") and len(lines) == 3 + len(reference_run.provenance["profile"]["processes"])


def test_junit_and_console_from_typed_records(tmp_path):
  """fail -> failure, error -> error, skip and unsupported -> skipped, each with Diagnosis.text()."""
  import io
  import xml.etree.ElementTree as ET

  from verification import output
  from verification.results import Diagnosis, Result, Run

  statuses = list(Status)
  results = tuple(Result("cand", "Sigmoid", {"alpha": 4.0}, f"c{i}", s,
                         Diagnosis(f"why {s.value}", worst_input=0.5, expected=1.0, got=2.0, tolerance=0.1,
                                   fix="use custom_jvp" if s is Status.UNSUPPORTED else None))
                  for i, s in enumerate(statuses))
  run_ = Run(target="t", results=results, checks=tuple(r.check for r in results))
  path = tmp_path / "r.xml"
  output.write_junit(str(path), run_)
  suite = ET.parse(path).getroot()
  assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("1", "1", "2")
  cases = {c.get("name"): c for c in suite}
  for i, s in enumerate(statuses):
    tag = {Status.FAIL: "failure", Status.ERROR: "error", Status.SKIP: "skipped", Status.UNSUPPORTED: "skipped"}
    if s in tag:
      element = cases[f"c{i}"].find(tag[s])
      assert element is not None and element.text == results[i].diagnosis.text()
  assert "fix: use custom_jvp" in cases[f"c{statuses.index(Status.UNSUPPORTED)}"].find("skipped").text
  out = io.StringIO()
  output.summary(results, run_.checks, out)
  table = out.getvalue()
  assert all(s.symbol in table.splitlines()[1] for s in statuses)
  assert "x = 0.5, expected 1.0, got 2.0, tolerance 0.1" in table
