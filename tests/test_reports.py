"""The report generator on small fixtures: outputs, images, determinism, links, and the page in Chromium."""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from reports import data, render
from reports.__main__ import main
from reports.build import generate

FIXTURES = Path(__file__).parent / "fixtures"
VERIFY = FIXTURES / "verify-small.json"
PEERS = sorted((FIXTURES / "peers").glob("*.json"))
BENCH = [FIXTURES / "bench-tiny.json"]
ONLY = {"Sigmoid"}
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


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> tuple[Path, Path]:
  """The report generated twice from the same fixtures, into two folders."""
  first, second = tmp_path_factory.mktemp("report-a"), tmp_path_factory.mktemp("report-b")
  for out in (first, second):
    generate(VERIFY, PEERS, BENCH, out, only=ONLY)
  return first, second


def files(root: Path) -> dict[str, bytes]:
  return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_writes_page_markdown_and_images(outputs):
  out, _ = outputs
  names = set(files(out))
  assert {"index.html", "index.md", "img/surrogate-sigmoid.png"} <= names
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


def test_cells_are_coloured_by_kind(outputs):
  out, _ = outputs
  cells = parse((out / "index.html").read_text(encoding="utf-8")).cells
  kinds = {c.split()[1] for c in cells.values()}
  assert kinds == {"pass", "fail", "convention", "error", "skip"}
  convention = [ident for ident, c in cells.items() if c == "cell convention"]
  assert len(convention) == 1 and "mylib" in convention[0] and convention[0].endswith("-forward")


def test_diagnosis_shows_the_worst_input(outputs):
  out, _ = outputs
  page = (out / "index.html").read_text(encoding="utf-8")
  ident = "v-boxcar-width-2-0-height-0-5-derivative"
  section = page[page.index(f'id="{ident}"'):]
  section = section[:section.index("</div>")]
  for field, value in (("worst input", "0.25"), ("expected", "0.5"), ("got", "0.4921875"), ("tolerance", "1e-09")):
    assert f"<dt>{field}</dt><dd>{value}</dd>" in section


def test_text_is_escaped(outputs):
  out, _ = outputs
  page = (out / "index.html").read_text(encoding="utf-8")
  assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
  assert "&lt;b&gt;&amp;amp;&lt;/b&gt;" in page
  md = (out / "index.md").read_text(encoding="utf-8")
  assert "<script>" not in md and "<b>" not in md


def test_peer_conformance_table():
  peers = data.load_peers(PEERS)
  assert [p.title for p in peers] == ["mylib 1.2.0"]
  row = render.conformance_row(peers[0])
  assert row == ["mylib", "1.2.0", "2", "2", "1", "1", "0", "1", "1 of 2"]


def test_bench_table_has_ratio_and_gbps():
  t = data.table(data.load_bench(BENCH[0]), "vjp")
  assert t.rows == ["Boxcar", "Boxcar [spyx]", "Sigmoid"]
  assert t.columns == [("float32", 10), ("float32", 22)]
  rows = render.bench_rows(t)
  assert rows[-1][0] == "baseline GB/s"
  assert all(re.fullmatch(r"\d+\.\d\d \([\d.e+-]+\)", cell) for row in rows[:-1] for cell in row[1:] if cell)


def test_missing_inputs_leave_notes(tmp_path):
  assert main(["--verify", str(tmp_path / "none.json"), "--peers", str(tmp_path / "no-peers"),
               "--bench", str(tmp_path / "bench-*.json"), "--out", str(tmp_path / "out"), "--no-plots"]) == 0
  page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
  assert "No verification results" in page and "No peer results" in page and "No benchmark results" in page
  assert "<img" not in page


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
