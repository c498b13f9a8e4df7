"""The report generator on small fixtures: outputs, images, determinism, links, malformed inputs, shards,
provenance, no jax, and the page in Chromium."""

from __future__ import annotations

import datetime as dt
import html.parser
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from reports import data, plots, render
from reports.__main__ import main
from reports.build import generate, surrogate_rows

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
VERIFY = FIXTURES / "verify-run.json"  # schema 2: curves, provenance, an unsupported result
OLD_VERIFY = FIXTURES / "verify-small.json"  # schema 1: no curves
PEERS = sorted((FIXTURES / "peers").glob("*.json"))
BENCH = [FIXTURES / "bench-tiny.json"]
ONLY = {"Sigmoid"}
PLANTED = "planted.halved_sigmoid(alpha=4.0)"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000"]
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || (e.target && e.target.src))), true);
window.addEventListener("load", () => {
  const images = Array.from(document.images, i => ({src: i.getAttribute("src"), width: i.naturalWidth}));
  const out = document.createElement("pre");
  out.id = "probe-result";
  out.textContent = JSON.stringify({images, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""


class Collect(html.parser.HTMLParser):
  """Ids, link targets and image sources of a page."""

  def __init__(self) -> None:
    super().__init__()
    self.ids: list[str] = []
    self.hrefs: list[str] = []
    self.images: list[str] = []
    self.cells: dict[str, str] = {}  # link target -> class of the cell holding it
    self._cell_class = ""

  def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
    a = dict(attrs)
    if a.get("id"):
      self.ids.append(a["id"] or "")
    if tag == "td":
      self._cell_class = a.get("class") or ""
    if tag == "a" and a.get("href"):
      self.hrefs.append(a["href"] or "")
      if self._cell_class.startswith("cell"):
        self.cells[(a["href"] or "")[1:]] = self._cell_class
    if tag == "img":
      self.images.append(a.get("src") or "")


def parse(page: str) -> Collect:
  c = Collect()
  c.feed(page)
  return c


def load(verify=(VERIFY,), peers=PEERS, benches=BENCH, **kwargs) -> data.Inputs:
  return data.load(list(verify), list(peers), list(benches), **kwargs)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> tuple[Path, Path]:
  """The report generated twice from the same fixtures, into two folders."""
  first, second = tmp_path_factory.mktemp("report-a"), tmp_path_factory.mktemp("report-b")
  for out in (first, second):
    generate(load(), out, only=ONLY)
  return first, second


def files(root: Path) -> dict[str, bytes]:
  return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_main(tmp_path: Path, *args: str) -> tuple[int, str, str]:
  """``python -m reports`` in this process, into ``tmp_path/out``: (exit status, index.html, index.md)."""
  out = tmp_path / "out"
  status = main([*args, "--out", str(out), "--no-plots"])
  return status, (out / "index.html").read_text(encoding="utf-8"), (out / "index.md").read_text(encoding="utf-8")


def test_writes_page_markdown_and_images(outputs):
  out, _ = outputs
  names = set(files(out))
  assert {"index.html", "index.md", "img/surrogate-sigmoid.png"} <= names
  assert "img/surrogate-boxcar.png" not in names  # --only Sigmoid
  assert {"img/throughput-bench-tiny-fwd.png", "img/throughput-bench-tiny-vjp.png"} <= names
  page = parse((out / "index.html").read_text(encoding="utf-8"))
  assert sorted(page.images) == sorted(n for n in names if n.endswith(".png"))
  md = (out / "index.md").read_text(encoding="utf-8")
  for src in page.images:
    assert f"]({src})" in md


def test_images_are_not_blank(outputs):
  from matplotlib.image import imread

  out, _ = outputs
  for png in sorted((out / "img").glob("*.png")):
    pixels = imread(png)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100, png.name
    assert pixels.var() > 0, png.name
    assert len({tuple(p) for p in pixels.reshape(-1, pixels.shape[2])[::97]}) > 2, png.name


def test_same_inputs_give_identical_bytes(outputs):
  first, second = outputs
  a, b = files(first), files(second)
  assert sorted(a) == sorted(b)
  assert [n for n in a if a[n] != b[n]] == []


def test_every_result_has_a_linked_diagnosis(outputs):
  out, _ = outputs
  page = parse((out / "index.html").read_text(encoding="utf-8"))
  assert len(page.ids) == len(set(page.ids))
  assert all(h[1:] in page.ids for h in page.hrefs if h.startswith("#"))
  results = [json.loads(p.read_text())["results"] for p in [VERIFY, *PEERS]]
  assert len(page.cells) == sum(len(r) for r in results)
  md = (out / "index.md").read_text(encoding="utf-8")
  targets = re.findall(r"\]\(#([^)]+)\)", md)
  assert set(targets) == set(page.cells) and set(targets) <= set(re.findall(r'<a id="([^"]+)"></a>', md))


def test_cells_are_coloured_by_status(outputs):
  out, _ = outputs
  cells = parse((out / "index.html").read_text(encoding="utf-8")).cells
  kinds = {c.split()[1] for c in cells.values()}
  assert kinds == {"pass", "fail", "convention", "unsupported", "error", "skip"}
  convention = [ident for ident, c in cells.items() if c == "cell convention"]
  assert len(convention) == 1 and "mylib" in convention[0] and convention[0].endswith("-forward")
  unsupported = [ident for ident, c in cells.items() if c == "cell unsupported"]
  assert unsupported == ["v-planted-halved-sigmoid-alpha-4-0-autodiff"]
  page = (out / "index.html").read_text(encoding="utf-8")
  assert re.search(r"\.unsupported \{ background: #[0-9a-f]{6}", page)  # a colour of its own
  md = (out / "index.md").read_text(encoding="utf-8")
  assert f"[unsup](#{unsupported[0]})" in md and "[**FAIL**](#v-planted-halved-sigmoid-alpha-4-0-derivative)" in md


def test_check_order_comes_from_the_run(tmp_path):
  doc = json.loads(VERIFY.read_text())
  doc["checks"] = ["edge", "forward", "autodiff", "derivative", "quadrature", "low_precision", "differential"]
  path = tmp_path / "reordered.json"
  path.write_text(json.dumps(doc))
  _, page, md = run_main(tmp_path, "--verify", str(path))
  header = re.search(r'<table class="matrix">\n<thead><tr>(.*?)</tr>', page).group(1)
  assert re.findall(r"<th>([^<]+)</th>", header) == ["candidate", *doc["checks"]]
  assert "| candidate | edge | forward |" in md


def test_diagnosis_shows_the_worst_input(outputs):
  out, _ = outputs
  page = (out / "index.html").read_text(encoding="utf-8")
  ident = "v-boxcar-width-2-0-height-0-5-derivative"
  section = page[page.index(f'id="{ident}"'):]
  section = section[:section.index("</div>")]
  for field, value in (("worst input", "0.25"), ("expected", "0.5"), ("got", "0.4921875"), ("tolerance", "1e-09")):
    assert f"<dt>{field}</dt><dd>{value}</dd>" in section
  ident = "v-planted-halved-sigmoid-alpha-4-0-autodiff"
  section = page[page.index(f'id="{ident}"'):]
  section = section[:section.index("</div>")]
  assert "<dt>capability</dt><dd>forward</dd>" in section and "jax.custom_jvp" in section


def test_text_is_escaped(outputs):
  out, _ = outputs
  page = (out / "index.html").read_text(encoding="utf-8")
  assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
  assert "&lt;b&gt;&amp;amp;&lt;/b&gt;" in page
  md = (out / "index.md").read_text(encoding="utf-8")
  assert "<script>" not in md and "<b>" not in md


def test_peer_conformance_table():
  peers, problems = data.load_peers(PEERS)
  assert [p.title for p in peers] == ["mylib 1.2.0"] and problems == []
  assert render.CONFORMANCE_HEADER[3:9] == ["ok", "FAIL", "conv", "unsup", "ERR", "skip"]
  row = render.conformance_row(peers[0])
  assert row == ["mylib", "1.2.0", "2", "2", "1", "1", "0", "0", "1", "1 of 2"]


def test_bench_table_has_ratio_and_gbps():
  t = data.table(data.load_bench(BENCH[0]), "vjp")
  assert t.rows == ["Boxcar", "Boxcar [spyx]", "Sigmoid"]
  assert t.columns == [("float32", 10), ("float32", 22)]
  rows = render.bench_rows(t)
  assert rows[-1][0] == "baseline GB/s"
  assert all(re.fullmatch(r"\d+\.\d\d \([\d.e+-]+\)", cell) for row in rows[:-1] for cell in row[1:] if cell)


def test_bench_op_descriptions_come_from_the_file(tmp_path):
  doc = json.loads(BENCH[0].read_text())
  assert data.load_bench(BENCH[0]).baseline("vjp") == "?"  # an older file that does not say
  doc["benchmarks"][0]["extra_info"]["baseline"] = "x * 0.5 (own field)"
  doc["surrogate_bench"] = {"ops": [{"name": "vjp", "baseline": "ct * x", "bytes_per_element": 12}],
                            "aa_control": None}
  path = tmp_path / "bench-new.json"
  path.write_text(json.dumps(doc))
  bench = data.load_bench(path)
  assert bench.baseline("vjp") == "ct * x"
  assert bench.baseline("fwd") == ("x * 0.5 (own field)" if doc["benchmarks"][0]["extra_info"]["op"] == "fwd"
                                   else "?")
  assert [t.baseline for t in bench.tables if t.op == "vjp"] == ["ct * x"]


def test_bench_files_with_comparators(tmp_path):
  """The suite's current fields: ``comparator_gbps`` (the baseline's, or the reference's for a peer)."""
  doc = json.loads(BENCH[0].read_text())
  for b in doc["benchmarks"]:
    info = b["extra_info"]
    peer = info["library"] != "surrogates"
    info["comparator_gbps"] = 123.0 if peer else info.pop("baseline_gbps")
    info["comparator"] = "reference" if peer else "ct * x"
    info.pop("baseline_gbps", None)
  control = {**doc["benchmarks"][0]["extra_info"], "surrogate": "A/A", "library": "control"}
  doc["benchmarks"].append({"name": "control", "extra_info": control})
  path = tmp_path / "bench-new.json"
  path.write_text(json.dumps(doc))
  t = data.table(data.load_bench(path), "vjp")
  assert t.rows == ["Boxcar", "Boxcar [spyx], ratio to the reference", "Sigmoid"]
  old = data.table(data.load_bench(BENCH[0]), "vjp")
  assert t.baseline_gbps == old.baseline_gbps  # the peer's comparator (the reference) is not the baseline
  assert "A/A [control]" in [r[0] for r in render.bench_rows(data.table(data.load_bench(path), control["op"]))]


def test_the_a_a_control_is_shown_and_a_failed_one_is_a_warning(tmp_path):
  doc = json.loads(BENCH[0].read_text())
  groups = [{"group": "vjp-float32-2^10", "ratio": 1.01, "q1": 0.99, "q3": 1.02, "passed": True},
            {"group": "vjp-float32-2^22", "ratio": 1.4, "q1": 1.3, "q3": 1.5, "passed": False}]
  doc["surrogate_bench"] = {"ops": [], "aa_control": {"band": [0.9, 1.1], "groups": groups, "trustworthy": False}}
  path = tmp_path / "bench-aa.json"
  path.write_text(json.dumps(doc))
  assert data.load_bench(BENCH[0]).control is None  # an older file: nothing to say
  _, page, md = run_main(tmp_path, "--verify", str(VERIFY), "--bench", str(path))
  expected = ("A/A control (the baseline timed against a copy of itself): median ratio within [0.9, 1.1] in 1 of 2 "
              "groups; outside in vjp-float32-2^22: this run's ratios are not trustworthy")
  warnings = html.unescape(page[page.index('class="warnings"'):page.index("</div>")])
  assert f"{path}: {expected}" in warnings and render.md(expected) in md


def test_missing_inputs_leave_notes(tmp_path):
  status, page, _ = run_main(tmp_path, "--verify", str(tmp_path / "none.json"), "--peers",
                             str(tmp_path / "no-peers"), "--bench", str(tmp_path / "bench-*.json"))
  assert status == 0
  assert "No verification results" in page and "No peer results" in page and "No benchmark results" in page
  assert "<img" not in page


# ---------------------------------------------------------------------------------------------
# No jax: the report reads JSON, it does not run the engine
# ---------------------------------------------------------------------------------------------


def test_python_m_reports_imports_neither_jax_nor_the_engine(tmp_path):
  probe = (
    "import json, runpy, sys\n"
    f"sys.argv = ['reports', '--verify', {str(VERIFY)!r}, '--peers', "
    f"{str(FIXTURES / 'peers')!r}, '--bench', {str(BENCH[0])!r}, '--out', {str(tmp_path / 'out')!r}]\n"
    "try:\n  runpy.run_module('reports', run_name='__main__')\nexcept SystemExit:\n  pass\n"
    f"sys.argv = ['findings', {str(OLD_VERIFY)!r}, *{[str(p) for p in PEERS]!r}]\n"
    "try:\n  runpy.run_module('reports.findings', run_name='__main__')\nexcept SystemExit:\n  pass\n"
    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
    "('jax', 'jaxlib', 'scipy', 'hypothesis', 'surrogates', 'benchmarks') or m in "
    "('verification.checks', 'verification.engine.runner', 'verification.core.candidate'))))\n")
  run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, run.stderr[-2000:]
  assert json.loads(run.stdout.strip().splitlines()[-1]) == []
  assert (tmp_path / "out" / "img" / "surrogate-sigmoid.png").is_file()  # the plots were drawn, without jax


# ---------------------------------------------------------------------------------------------
# Plots from the run's curves
# ---------------------------------------------------------------------------------------------


def test_plots_overlay_the_candidate_and_mark_where_it_fails():
  v = load().verify
  rows = surrogate_rows(v, set())
  assert [label for label, _, _ in rows["Sigmoid"]] == ["Sigmoid(alpha=4.0)", PLANTED]
  assert list(rows) == ["Sigmoid", "Boxcar"]
  (_, reference, none), (_, planted, failing) = rows["Sigmoid"]
  assert none == [] and failing == [0.25, 0.5]  # the worst inputs of its failing checks
  assert not plots.difference(reference)[1].any()
  large = plots.difference(planted)[1]
  # g is halved for x > 0: shaded where the difference g/2 exceeds 1e-3 of the peak (0 < x < ~1.9 at alpha = 4)
  peak = max(planted.reference_g)
  expected = [x for x, g in zip(planted.x, planted.reference_g, strict=True) if x > 0 and g / 2 > plots.VISIBLE * peak]
  assert [x for x, flag in zip(planted.x, large, strict=True) if flag] == expected
  assert 1.8 < expected[-1] < 2.0 and len(expected) > 30


def test_old_files_without_curves_say_so(tmp_path):
  status, page, md = run_main(tmp_path, "--verify", str(OLD_VERIFY))
  assert status == 0
  assert "No plots:" in page and "carries no curves" in page and "No plots:" in md
  generate(load([OLD_VERIFY]), tmp_path / "plotted", only=set())
  assert not list((tmp_path / "plotted" / "img").glob("surrogate-*.png"))


# ---------------------------------------------------------------------------------------------
# Malformed inputs and output paths
# ---------------------------------------------------------------------------------------------


def test_a_corrupt_peer_file_is_skipped_with_a_warning(tmp_path, capsys):
  peers = tmp_path / "peers"
  peers.mkdir()
  shutil.copy(PEERS[0], peers)
  text = PEERS[0].read_text()
  (peers / "truncated-9.9.json").write_text(text[: len(text) // 2])
  (peers / "not-a-run.json").write_text(json.dumps({"results": 3}))
  status, page, md = run_main(tmp_path, "--verify", str(VERIFY), "--peers", str(peers), "--bench", str(BENCH[0]))
  assert status == 1
  err = capsys.readouterr().err.splitlines()
  truncated = [line for line in err if "truncated-9.9.json" in line]
  assert len(truncated) == 1 and "not valid JSON" in truncated[0] and "truncated?" in truncated[0]
  assert any("not-a-run.json" in line and "no 'results' list" in line for line in err)
  assert "Traceback" not in "\n".join(err)
  for doc, planted in ((page, PLANTED), (md, render.md(PLANTED))):
    assert "truncated-9.9.json" in doc and "not-a-run.json" in doc and "Warnings" in doc
    assert "mylib 1.2.0" in doc and "bench-tiny" in doc and planted in doc  # the rest renders


@pytest.mark.parametrize("content, problem", [
  ("", "is empty"),
  ('{"results": [{"label": "a"}]}', "result #0 is malformed"),
  ("[1, 2]", "expected a JSON object"),
  (b"\xff\xfe", "cannot be read"),
])
def test_a_malformed_verify_file_is_named_and_the_rest_renders(tmp_path, capsys, content, problem):
  path = tmp_path / "verify.json"
  if isinstance(content, bytes):
    path.write_bytes(content)
  else:
    path.write_text(content)
  status, page, _ = run_main(tmp_path, "--verify", str(path), "--peers", str(FIXTURES / "peers"),
                             "--bench", str(BENCH[0]))
  assert status == 1
  lines = [line for line in capsys.readouterr().err.splitlines() if str(path) in line]
  assert len(lines) == 1 and problem in lines[0]
  assert problem in page and "mylib 1.2.0" in page and "bench-tiny" in page


@pytest.mark.parametrize("field, value", [
  ("curves", [1, 2]), ("library", "mylib"), ("environment", "cpu"), ("results", [3]), ("checks", 7),
  ("provenance", ["commit"]),
])
def test_fields_of_the_wrong_type_are_named_not_raised(tmp_path, field, value):
  path = tmp_path / "verify.json"
  path.write_text(json.dumps({**json.loads(VERIFY.read_text()), field: value}))
  inputs = load([path], peers=[], benches=[])
  assert inputs.verify is None and len(inputs.problems) == 1
  assert inputs.problems[0].path == str(path) and "is not a verification result" in inputs.problems[0].problem


def test_curves_that_cannot_be_drawn_are_left_out(tmp_path):
  doc = json.loads(VERIFY.read_text())
  doc["curves"][PLANTED] = {"x": [], "g": []}
  doc["curves"]["Sigmoid(alpha=4.0)"] = {"x": [0.0, "nan", None, 1.0], "g": [1.0], "reference_g": [1, 2, 3, 4]}
  path = tmp_path / "verify.json"
  path.write_text(json.dumps(doc))
  v = load([path], peers=[], benches=[]).verify
  assert [label for label, _, _ in surrogate_rows(v, set())["Sigmoid"]] == ["Sigmoid(alpha=4.0)"]
  status, _, _ = run_main(tmp_path, "--verify", str(path), "--peers", str(tmp_path / "none"))
  paths = generate(load([path], peers=[], benches=[]), tmp_path / "drawn")
  assert status == 0 and (tmp_path / "drawn" / "img" / "surrogate-sigmoid.png").is_file() and paths


def test_a_malformed_bench_file_is_named(tmp_path, capsys):
  doc = json.loads(BENCH[0].read_text())
  del doc["benchmarks"][1]["extra_info"]["ratio"]
  path = tmp_path / "bench-bad.json"
  path.write_text(json.dumps(doc))
  status, page, _ = run_main(tmp_path, "--verify", str(VERIFY), "--bench", str(path))
  assert status == 1
  assert "bench-bad.json: is not a benchmark result: benchmark #1" in capsys.readouterr().err
  assert "has no ratio" in page and PLANTED in page


def test_output_paths_are_checked_before_any_work(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(data, "load", lambda *a, **k: pytest.fail("inputs were read before the output was checked"))
  blocker = tmp_path / "a-file"
  blocker.write_text("x")
  for out in (blocker, blocker / "below"):
    with pytest.raises(SystemExit) as exc:
      main(["--verify", str(VERIFY), "--out", str(out)])
    assert exc.value.code == 2
    assert str(blocker) in capsys.readouterr().err
  assert data.check_output(tmp_path / "new" / "deeper") is None


def test_unknown_only_names_are_a_usage_error(tmp_path, capsys):
  with pytest.raises(SystemExit) as exc:
    main(["--verify", str(VERIFY), "--only", "Sigmoid,NoSuch", "--out", str(tmp_path / "out")])
  assert exc.value.code == 2
  err = capsys.readouterr().err
  assert "NoSuch" in err and "Boxcar" in err


# ---------------------------------------------------------------------------------------------
# Shards of one run
# ---------------------------------------------------------------------------------------------


def shards(tmp_path: Path, doc: dict, n: int = 2) -> list[Path]:
  """The run split into ``n`` files by candidate (each label in one shard, as ``--shard K/N`` does)."""
  labels = list(dict.fromkeys(r["label"] for r in doc["results"]))
  paths = []
  for k in range(n):
    mine = set(labels[k::n])
    part = {**doc, "results": [r for r in doc["results"] if r["label"] in mine],
            "curves": {k_: v for k_, v in doc["curves"].items() if k_ in mine},
            "provenance": {**doc["provenance"], "shard": [k + 1, n]}}
    paths.append(tmp_path / f"shard-{k + 1}.json")
    paths[-1].write_text(json.dumps(part))
  return paths


def test_shards_merge_into_the_report_of_the_whole_run(tmp_path):
  doc = json.loads(VERIFY.read_text())
  parts = shards(tmp_path, doc)
  whole = load([VERIFY]).verify
  merged = load(parts)
  assert merged.problems == []
  assert {(r.label, r.check): r.status for r in merged.verify.results} == \
         {(r.label, r.check): r.status for r in whole.results}
  assert set(merged.verify.curves) == set(whole.curves) and merged.verify.checks == whole.checks
  assert [s.path for s in merged.verify.sources] == [str(p) for p in parts]
  assert not [w for w in merged.warnings if "part of a run" in w]
  status, page, _ = run_main(tmp_path, *(a for p in parts for a in ("--verify", str(p))))
  assert status == 0 and page.count('class="cell ') >= len(doc["results"])
  assert "shard 1/2" in page and "shard 2/2" in page  # each input's line names its shard


def test_a_missing_shard_is_a_warning(tmp_path):
  parts = shards(tmp_path, json.loads(VERIFY.read_text()), n=3)
  warnings = load(parts[:1]).warnings
  assert "the verification results are part of a run: shards 2/3, 3/3 not given" in warnings


@pytest.mark.parametrize("change, message", [
  ({"target": "other.module:CANDIDATES"}, "different targets or versions"),
  ({"library": {"name": "mylib", "version": "9.9"}}, "different targets or versions"),
  ({"provenance": {"commit": "fedcba"}}, "different commits"),
  ({"provenance": {"version": "0.2.0"}}, "different versions"),
])
def test_shards_of_different_runs_are_refused(tmp_path, capsys, change, message):
  doc = json.loads(VERIFY.read_text())
  first, second = shards(tmp_path, doc)
  second.write_text(json.dumps({**json.loads(second.read_text()), **change}))
  status, page, _ = run_main(tmp_path, "--verify", str(first), "--verify", str(second))
  assert status == 1
  err = capsys.readouterr().err
  assert message in err and str(first) in err and str(second) in err
  assert message in page and "No verification results" in page  # not merged silently


def test_a_result_in_two_shards_is_refused(tmp_path):
  inputs = load([VERIFY, VERIFY])
  assert inputs.verify is None
  assert len(inputs.problems) == 1 and "is in both" in inputs.problems[0].problem


# ---------------------------------------------------------------------------------------------
# Where each input came from, and whether it is older than the code
# ---------------------------------------------------------------------------------------------


def test_the_page_says_where_each_input_came_from(outputs):
  out, _ = outputs
  page = (out / "index.html").read_text(encoding="utf-8")
  line = next(line for line in page.split("<li>") if line.startswith(f"{VERIFY}: "))
  for part in ("run 2026-11-29T12:00:00Z", "commit 0123456789abcdef", "target reference", "version 0.1.0",
               "command: python -m verification --json results/out/verify.json"):
    assert part in line
  peer = next(line for line in page.split("<li>") if line.startswith(f"{PEERS[0]}: "))
  assert re.search(r"file (committed|modified) \d{4}-\d\d-\d\dT", peer) and "no provenance recorded" in peer


def test_the_command_may_be_recorded_as_argv():
  s = data.Source("run.json", {"argv": ["python", "-m", "verification", "--json", "x.json"]}, "2026-11-29T13:00:00Z",
                  "modified")
  assert s.describe() == "run.json: file modified 2026-11-29T13:00:00Z; command: python -m verification --json x.json"


def test_inputs_older_than_the_code_are_flagged():
  source = data.Source("run.json", {"date": "2026-11-29T12:00:00Z"}, "2026-11-29T13:00:00Z", "modified")
  newer = (dt.datetime(2026, 11, 30, tzinfo=dt.UTC), "the last commit to surrogates, verification")
  older = (dt.datetime(2026, 11, 1, tzinfo=dt.UTC), "the last commit to surrogates, verification")
  assert "run.json (2026-11-29T12:00:00Z) is older than the code (2026-11-30T00:00:00Z" in source.stale(newer)
  assert source.stale(older) is None
  undated = data.Source("old.json", {}, "2026-11-02T00:00:00Z", "modified")  # the file's date as fallback
  assert undated.stale(newer) and undated.stale(older) is None


def test_the_age_of_the_code_without_git_is_its_newest_source_file(monkeypatch):
  monkeypatch.setattr(data, "_git", lambda *args: None)
  newest = max((p for folder in ("surrogates", "verification") for p in (ROOT / folder).rglob("*.py")),
               key=lambda p: p.stat().st_mtime)
  date, why = data.code_date("verify")
  assert date == dt.datetime.fromtimestamp(newest.stat().st_mtime, dt.UTC)
  assert why == f"{newest.relative_to(ROOT)} (newest source file)"
  assert data.file_date(VERIFY) == (dt.datetime.fromtimestamp(VERIFY.stat().st_mtime, dt.UTC), "modified")


def test_a_fresh_run_is_not_flagged_and_an_old_one_is(tmp_path):
  doc = json.loads(VERIFY.read_text())
  now = dt.datetime.now(dt.UTC).isoformat()
  fresh, old = tmp_path / "fresh.json", tmp_path / "old.json"
  fresh.write_text(json.dumps({**doc, "provenance": {**doc["provenance"], "date": now}}))
  old.write_text(json.dumps({**doc, "provenance": {**doc["provenance"], "date": "2001-01-01T00:00:00Z"}}))
  assert not [w for w in load([fresh], peers=[], benches=[]).warnings if "older than the code" in w]
  warnings = load([old], peers=[], benches=[]).warnings
  assert len(warnings) == 1 and "old.json (2001-01-01T00:00:00Z) is older than the code" in warnings[0]
  _, page, md = run_main(tmp_path, "--verify", str(old), "--peers", str(tmp_path / "none"))
  assert 'class="warnings"' in page and "older than the code" in page and "older than the code" in md


def test_without_a_fresh_run_the_committed_results_are_shown_with_a_note(tmp_path, monkeypatch):
  fresh, committed = tmp_path / "out" / "verify.json", tmp_path / "committed.json"
  committed.write_text(OLD_VERIFY.read_text())
  monkeypatch.setattr(data, "DEFAULT_VERIFY", fresh)
  monkeypatch.setattr(data, "COMMITTED_VERIFY", committed)
  _, page, md = run_main(tmp_path / "a", "--peers", str(tmp_path / "none"))
  assert "No fresh verification run" in page and "showing results of" in md and str(committed) in page
  monkeypatch.setattr(data, "file_date", lambda path: (dt.datetime(2026, 1, 2, tzinfo=dt.UTC), "committed"))
  _, page, _ = run_main(tmp_path / "c", "--peers", str(tmp_path / "none"))  # as git has it, unchanged
  assert "showing the committed results of 2026-01-02T00:00:00Z" in page
  fresh.parent.mkdir()
  fresh.write_text(VERIFY.read_text())
  _, page, _ = run_main(tmp_path / "b", "--peers", str(tmp_path / "none"))
  assert "No fresh verification run" not in page and PLANTED in page


def chromium() -> str | None:
  return shutil.which("chromium") or next((p for p in ("/usr/bin/chromium",) if Path(p).exists()), None)


def test_page_opens_in_headless_chromium(outputs, tmp_path):
  browser = chromium()
  if browser is None:
    pytest.skip("Chromium is not installed (nox -s tests installs Debian's chromium when run as root)")
  out, _ = outputs
  probe = out / "probe.html"  # a test-only copy of the page with a script that reports what loaded
  probe.write_text((out / "index.html").read_text(encoding="utf-8").replace("<head>", "<head>\n" + PROBE, 1),
                   encoding="utf-8")
  try:
    run = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=60)
  finally:
    probe.unlink()
  assert run.returncode == 0, run.stderr[-2000:]
  found = re.search(r'<pre id="probe-result">(.*?)</pre>', run.stdout, re.S)
  assert found, "the page did not finish loading"
  result = json.loads(html.unescape(found.group(1)))
  console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
  assert console == [] and result["errors"] == []
  expected = sorted(parse((out / "index.html").read_text(encoding="utf-8")).images)
  assert sorted(i["src"] for i in result["images"]) == expected and expected
  assert all(i["width"] > 0 for i in result["images"]), result["images"]
