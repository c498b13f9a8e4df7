"""The reference passes every check of the harness, at every representative parameter set."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import surrogates
from verification import CHECKS, reference_candidates

FLOAT_DTYPES = ["float16", "bfloat16", "float32", "float64"]

CANDIDATES = reference_candidates()


@pytest.fixture(scope="module")
def results(reference_results):
  return reference_results  # one run per session (tests/conftest.py)


@pytest.mark.parametrize("candidate", CANDIDATES, ids=lambda c: c.label)
def test_reference_passes_every_check(candidate, results):
  got = results[candidate.label]
  assert set(got) == set(CHECKS)
  bad = {c: r.detail for c, r in got.items() if r.status not in ("pass", "skip")}
  assert not bad
  assert got["differential"].status == "skip"  # the reference against itself says nothing


def test_every_registry_surrogate_is_verified():
  assert {c.name for c in CANDIDATES} == set(surrogates.REGISTRY)


def test_cli_writes_json_and_junit_and_fails_on_a_defect(tmp_path):
  """End to end: the command line on a planted defect exits 1 and writes both reports."""
  out_json, out_xml = tmp_path / "r.json", tmp_path / "r.xml"
  cmd = [sys.executable, "-m", "verification", "--target", "tests.planted:DEFECTIVE", "--only", "Arctan",
         "--dtypes", "float32,float64", "--json", str(out_json), "--junit", str(out_xml), "--jobs", "1"]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 1, proc.stdout + proc.stderr
  doc = json.loads(out_json.read_text())
  records = doc["results"]
  assert {tuple(sorted(r)) for r in records} == {("check", "detail", "label", "params", "seconds", "status",
                                                  "surrogate")}
  derivative = next(r for r in records if r["check"] == "derivative")
  assert derivative["status"] == "fail" and {"worst_input", "expected", "got", "tolerance"} <= set(derivative["detail"])
  assert "sign error in g" in proc.stdout and "FAIL" in proc.stdout
  assert "<testsuite" in out_xml.read_text() and "<failure" in out_xml.read_text()
