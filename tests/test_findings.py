"""Published libraries through the engine (braintools is a test dependency), the findings tables
(``reports.findings``: the README section, from verification JSON of any schema version), defects
grouped by cause (``reports.defects``), their reproducers (``reports.reproducers``: run here against
the stand-ins in ``tests/stubs`` or the installed library, and on planted fake libraries), and the
per-shape pages (``reports.shapes``)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import pathlib
import runpy
import sys

import jax
import pytest

from reports import defects, findings, reproducers, shapes
from verification import verify_candidate
from verification.results import Run


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
  assert f"Not read: {bad}: is not valid JSON" in text and "| [lib](results/findings/lib.md) | 1.2 | 2 |" in text


ROOT = pathlib.Path(__file__).resolve().parents[1]
STUBS = ROOT / "tests" / "stubs"
REPRO = ROOT / "results" / "findings" / "repro"
SCRIPTS = sorted(REPRO.glob("*.py"))


def _record(check, message, dtype, x=None, label="c", surrogate="Sigmoid", call="fakelib.sigmoid(alpha=4.0)(x)",
            **detail):
  return {"label": label, "surrogate": surrogate, "params": {"alpha": 4.0}, "check": check, "status": "fail",
          "detail": {"message": message, "dtype": dtype, "worst_input": x, **detail,
                     "notes": {"call": call, "reference": "Sigmoid(alpha=4.0)", "scale": 1.0}}}


def _run(records, name="fakelib"):
  return Run.from_json({"schema_version": 2, "target": name, "library": {"name": name, "version": "9.9"},
                        "results": records})


def test_the_same_defect_at_three_dtypes_is_one_group_and_another_check_a_second():
  records = [_record("forward", f"forward is not H(x): H returned dtype float32 for input dtype {dt}", dt,
                     label=f"c{i}", call=f"fakelib.sigmoid(alpha={i}.0)(x)")
             for i, dt in enumerate(["float16", "bfloat16", "float64"])]
  found, harness = defects.group(_run(records))
  assert len(found) == 1 and not harness
  assert len(found[0].calls) == 3 and found[0].title.endswith("for a float16/bfloat16/float64 input")
  value = [_record("differential", f"g differs from the reference × 1 in float16: at x = {x} expected 1, got 3 "
                   f"(ratio 3, tolerance 0.01)", "float16", x=x, expected=1.0, got=3.0, tolerance=0.01)
           for x in (0.5, 0.25)]
  found, _ = defects.group(_run(records + value))
  assert [d.kind for d in found] == ["dtype", "value"]
  assert found[1].example.diagnosis.worst_input == 0.25  # the smallest input shows it
  # a harness error (a traceback in verification/) is not the library's
  own = _record("quadrature", "NameError: name 'integrate' is not defined (at /x/verification/numerics.py:1)", None)
  assert len(defects.group(_run([*records, own]))[1]) == 1


_FAKE = {  # the planted library: the defect, and its fixed twin
    "dtype": ("return lambda x: (x >= 0).astype(jnp.float32)", "return lambda x: (x >= 0).astype(x.dtype)"),
    "value": ("return _sg(alpha / 2)",  # the slope halved
              "return _sg(alpha)"),
}
_SG = """
import jax
import jax.numpy as jnp

def _sg(alpha):
  @jax.custom_jvp
  def f(x):
    return (x >= 0).astype(x.dtype)

  @f.defjvp
  def f_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    s = jax.nn.sigmoid(alpha * x)
    return f(x), alpha * s * (1 - s) * t

  return f
"""


def _fake_library(tmp_path, body, monkeypatch):
  pkg = tmp_path / "fakelib"
  pkg.mkdir()
  (pkg / "__init__.py").write_text(_SG + f"\n\ndef sigmoid(alpha=4.0):\n  {body}\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  monkeypatch.setattr(reproducers, "JAX_LIBRARIES", {*reproducers.JAX_LIBRARIES, "fakelib"})
  for name in [m for m in sys.modules if m == "fakelib" or m.startswith("fakelib.")]:
    monkeypatch.delitem(sys.modules, name)


def _exit_code(path) -> tuple[int, str]:
  out = io.StringIO()
  with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
    runpy.run_path(str(path), run_name="__main__")
  return exc.value.code, out.getvalue()


@pytest.mark.parametrize("twin", ["defect", "fixed"])
@pytest.mark.parametrize("kind", ["dtype", "value"])
def test_a_reproducer_exits_1_on_the_defect_and_0_on_its_fixed_twin(tmp_path, monkeypatch, kind, twin):
  import math

  if kind == "dtype":
    record = _record("forward", "forward is not H(x): H returned dtype float32 for input dtype float16", "float16")
  else:  # g at x = 0.5 in float64: alpha·s(1 - s) with alpha = 4
    s = 1 / (1 + math.exp(-2.0))
    record = _record("differential", "g differs from the reference × 1 in float64: at x = 0.5 expected 0.42, got 0",
                     "float64", x=0.5, expected=4 * s * (1 - s), got=0.0, tolerance=1e-12)
  _fake_library(tmp_path, _FAKE[kind][twin == "fixed"], monkeypatch)
  (defect,), _ = defects.group(_run([record]))
  text = reproducers.script(defect)
  assert text.startswith("# pip install fakelib==9.9 ")
  path = tmp_path / "repro.py"
  path.write_text(text)
  code, out = _exit_code(path)
  assert "expected" in out
  assert code == (1 if twin == "defect" else 0), out


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_every_reproducer_compiles_and_says_what_it_installs(path):
  text = path.read_text()
  compile(text, str(path), "exec")
  generated, first = text.splitlines()[:2]
  assert generated == f"# {findings.GENERATED}", generated
  library, version = path.stem.rsplit("_", 1)[0], None
  assert first.startswith(f"# pip install {library}=="), first
  version = first.split("==")[1].split()[0]
  assert version and "sys.exit(" in text and ("sys.exit(1)" in text or "else 1)" in text)


def _importable(library: str) -> bool:
  with _stubs_on_path():
    return importlib.util.find_spec(library) is not None


@contextlib.contextmanager
def _stubs_on_path():
  added = str(STUBS) not in sys.path
  if added:
    sys.path.append(str(STUBS))  # after the installed packages: an installed library wins
  try:
    yield
  finally:
    if added:
      sys.path.remove(str(STUBS))


#: The reproducers run here: those of a library that is installed or has a stand-in in tests/stubs.
RUNNABLE = [p for p in SCRIPTS if _importable(p.stem.rsplit("_", 1)[0])]


@pytest.mark.parametrize("path", RUNNABLE, ids=[p.stem for p in RUNNABLE])
def test_every_reproducer_runs_against_the_stub_or_the_installed_library(path):
  """Import and call succeed (exit 0 or 1 depends on the stand-in; nox -s findings requires 1 on the real one)."""
  with _stubs_on_path():
    code, out = _exit_code(path)
  assert code in (0, 1)
  assert "expected" in out and "Traceback" not in out
  if code == 1 and "no exception" not in out:
    assert "got" in out


def test_shape_pages_from_a_small_json(tmp_path):
  records = [_record("forward", "forward is not H(x): H returned dtype float32 for input dtype float16", "float16"),
             {**_record("differential", "ok", "float64"), "status": "pass"}]
  doc = {"schema_version": 2, "target": "fakelib", "library": {"name": "fakelib", "version": "9.9"},
         "results": records, "curves": {"c": {"x": [-1.0, 0.0, 1.0], "g": [0.1, 1.0, 0.1],
                                              "reference_g": [0.1, 1.0, 0.1]}}}
  bench = tmp_path / "bench.json"
  bench.write_text(json.dumps({"benchmarks": [{"extra_info": {
      "op": "vjp", "library": "fakelib", "surrogate": "Sigmoid", "dtype": "float32", "log2_size": 16,
      "median_s": 2.5e-4, "gbps": 3.1, "ratio": 1.2, "comparator": "ct * x", "device": "cpu"}}]}))
  written = shapes.write_pages([Run.from_json(doc)], tmp_path / "shapes", benches=[bench])
  assert [p.name for p in written] == ["sigmoid.md"]
  page = written[0].read_text()
  assert "| fakelib | `fakelib.sigmoid(alpha=4.0)(x)` | alpha=4 | 1 |" in page
  assert "(../findings/fakelib.md#fakelib-001)" in page and "returns float32" in page
  assert "![g of Sigmoid across libraries](img/sigmoid.png)" in page and (tmp_path / "shapes/img/sigmoid.png").is_file()
  assert "| fakelib | cpu | float32 | 2^16 | 250 µs | 3.1 | 1.2 (ct * x) |" in page
  assert "[Sigmoid](sigmoid.md)" in (tmp_path / "shapes" / "index.md").read_text()
