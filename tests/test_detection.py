"""The harness's detection power: every planted defect is caught by the check meant for it, and
correct implementations (also at extreme parameters, also computed in their own dtype) pass."""

from __future__ import annotations

import pytest

from tests.planted import CORRECT, DEFECTIVE, HANGING
from verification import CHECKS, verify, verify_candidate


@pytest.fixture(scope="module")
def defective_results():
  return _by_label(verify(DEFECTIVE, jobs=2, time_limit=120))


@pytest.fixture(scope="module")
def correct_results():
  return _by_label(verify(CORRECT, jobs=2, time_limit=120))


def _by_label(results):
  out = {}
  for r in results:
    out.setdefault(r.label, {})[r.check] = r
  return out


@pytest.mark.parametrize("planted", DEFECTIVE, ids=lambda c: c.label)
def test_defect_is_caught_by_its_check(planted, defective_results):
  check = planted.notes["caught_by"]
  result = defective_results[planted.label][check]
  assert result.status in ("fail", "error"), f"{planted.label}: {check} gave {result.status}: {result.detail}"
  assert result.detail.get("message"), "a failing result carries a diagnosis"


@pytest.mark.parametrize("good", CORRECT, ids=lambda c: c.label)
def test_correct_candidates_pass_every_check(good, correct_results):
  results = correct_results[good.label]
  assert set(results) == set(CHECKS)
  bad = {c: r.detail for c, r in results.items() if r.status not in ("pass", "skip")}
  assert not bad, f"false alarm on {good.label}: {bad}"


def test_a_hanging_candidate_is_an_error_result_not_a_hang():
  results = verify_candidate(HANGING, ["forward"], ["float32"], time_limit=2.0)
  assert [r.status for r in results] == ["error"]
  assert "time limit" in results[0].detail["message"]


def test_a_candidate_of_an_unknown_surrogate_is_an_error_result():
  from verification.candidate import Candidate

  results = verify_candidate(Candidate(name="NoSuch", params={}, fn=lambda x: x), list(CHECKS), ["float32"])
  assert {r.status for r in results} == {"error"}
  assert "NoSuch" in results[0].detail["message"]
