"""Published libraries through the engine (braintools is a test dependency), and the findings tables
(``reports.findings``: the README section, from verification JSON of any schema version)."""

from __future__ import annotations

import importlib.util
import json

import jax
import pytest

from reports import findings
from verification import verify_candidate


@pytest.fixture(scope="module")
def braintools_candidates():
  from verification import targets

  if importlib.util.find_spec("braintools") is None:
    pytest.skip("braintools is not installed (it is in the test dependency group)")
  cands = targets.load("braintools").candidates()  # the adapter imports braintools
  assert jax.config.jax_enable_x64, "loading the braintools adapter must leave 64-bit JAX on"
  return {c.notes.get("call"): c for c in cands}


def test_braintools_sigmoid_first_order_conforms_and_second_order_is_cut(braintools_candidates):
  cand = braintools_candidates["braintools.surrogate.Sigmoid(alpha=4.0)"]
  results = {r.check: r for r in verify_candidate(cand, ["derivative", "differential", "autodiff", "second_order"],
                                                   ["float32", "float64"])}
  assert results["derivative"].status == "pass"
  assert results["differential"].status == "pass"
  assert results["autodiff"].status == "pass"
  # braintools 0.3.0 evaluates g at stop_gradient(x): the second derivative of its spike function is 0, not g'
  assert results["second_order"].status == "fail"
  assert "second derivative" in results["second_order"].message


def _doc():
  detail = {"message": "P is nan", "worst_input": -1.0, "expected": 0.0, "got": float("nan"), "tolerance": 0.0,
            "dtype": "float16", "notes": {"call": "lib.S2NN()", "scale": 1.0}}
  conv = {"message": "convention: H(0) = 0", "category": "convention", "worst_input": 0.0,
          "notes": {"call": "lib.boxcar()", "scale": 2.0}}
  ok = {"message": "fine", "notes": {"call": "lib.S2NN()"}}
  return {"target": "lib", "library": {"name": "lib", "version": "1.2", "unmapped": {"bern": "stochastic"}},
          "results": [
              {"label": "a", "surrogate": "S2NN", "params": {"alpha": 4.0}, "check": "edge", "status": "fail",
               "detail": detail},
              {"label": "a", "surrogate": "S2NN", "params": {"alpha": 4.0}, "check": "forward", "status": "pass",
               "detail": ok},
              {"label": "b", "surrogate": "Boxcar", "params": {}, "check": "forward", "status": "fail", "detail": conv},
          ]}


def test_findings_tables_carry_reproducers_and_separate_conventions(tmp_path):
  path = tmp_path / "lib-1.2.json"
  path.write_text(json.dumps(_doc()))
  md = findings.render([str(path)])
  assert "### lib 1.2" in md
  defects, _, rest = md.partition("Convention differences")
  assert "`lib==1.2` `lib.S2NN()` — edge: P is nan. Input x = -1 (float16): expected 0, got nan" in defects
  assert "lib.boxcar()" in rest and "lib.boxcar()" not in defects.split("Defects")[1]
  assert "| `lib.boxcar()` | Boxcar() × 2 |  | conv |" in md  # no edge result: an empty cell
  # the check order is the file's (schema 1: first seen), not the engine's
  assert "| call | reference | edge | forward |" in md
  assert "`bern`: stochastic" in md
  readme = tmp_path / "README.md"
  readme.write_text(f"intro\n{findings.START}\nold\n{findings.END}\ntail\n")
  findings.update_readme(readme, md)
  text = readme.read_text()
  assert "old" not in text and "### lib 1.2" in text and text.startswith("intro") and text.endswith("tail\n")


def test_findings_cells_use_the_status_table(tmp_path):
  """Schema 2: an unsupported capability has its own cell and list; skip is '–', error **ERR**."""
  doc = {"schema_version": 2, "target": "lib", "library": {"name": "lib", "version": "2.0"},
         "checks": ["forward", "autodiff", "derivative", "differential"],
         "results": [
             {"label": "c", "surrogate": "Sigmoid", "params": {"alpha": 4.0}, "check": "forward", "status": "pass",
              "detail": {"message": "H exact"}},
             {"label": "c", "surrogate": "Sigmoid", "params": {"alpha": 4.0}, "check": "autodiff",
              "status": "unsupported", "detail": {"message": "no forward mode", "capability": "forward",
                                                  "fix": "use jax.custom_jvp"}},
             {"label": "c", "surrogate": "Sigmoid", "params": {"alpha": 4.0}, "check": "derivative", "status": "skip",
              "detail": {"message": "no surrogate_fun"}},
             {"label": "c", "surrogate": "Sigmoid", "params": {"alpha": 4.0}, "check": "differential",
              "status": "error", "detail": {"message": "the worker died (SIGKILL)"}},
         ]}
  path = tmp_path / "lib-2.0.json"
  path.write_text(json.dumps(doc))
  md = findings.render([str(path)])
  assert "| `c` | Sigmoid(alpha=4) | ok | unsup | – | **ERR** |" in md
  assert "Unsupported capabilities (a failure only where required):\n\n- `c` — autodiff: forward: no forward mode" in md
  assert "`lib==2.0` `c` — differential: the worker died (SIGKILL)." in md


def test_a_corrupt_file_is_named_and_the_others_are_rendered(tmp_path, capsys):
  good, bad = tmp_path / "lib-1.2.json", tmp_path / "broken-0.1.json"
  good.write_text(json.dumps(_doc()))
  bad.write_text(json.dumps(_doc())[:200])
  readme = tmp_path / "README.md"
  readme.write_text(f"{findings.START}\n{findings.END}\n")
  assert findings.main([str(good), str(bad), "--readme", str(readme)]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and str(bad) in err[0] and "not valid JSON" in err[0]
  text = readme.read_text()
  assert f"Not read: {bad}: is not valid JSON" in text and "### lib 1.2" in text
