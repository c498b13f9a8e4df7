"""The inputs of a report: verification runs (read only through :meth:`verification.results.Run.from_json`),
benchmark JSON, and where and when each input was made.

Nothing here imports jax, scipy, hypothesis, the engine or the benchmarks: a report is built from
the JSON alone. An input that cannot be read is an :class:`InputError` naming the file and the
problem; the loaders turn it into a :class:`Problem` and go on with the rest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from verification.results import Curve, Result, Run

#: The repository root (where ``git`` is asked how old the code is).
ROOT = Path(__file__).resolve().parent.parent
#: What ``nox -s verify`` writes, read first; then the committed results.
DEFAULT_VERIFY = Path("results/out/verify.json")
COMMITTED_VERIFY = Path("results/verify.json")
#: The code an input of each kind was made by: an input older than the newest of it is stale.
CODE = {"verify": ("surrogates", "verification"), "bench": ("surrogates", "benchmarks")}
#: Fields a benchmark's ``extra_info`` must have to be tabulated.
BENCH_FIELDS = ("op", "surrogate", "dtype", "log2_size", "ratio", "gbps")


class InputError(Exception):
  """An input file that cannot be used: ``str()`` is one line naming the file and the problem."""

  def __init__(self, path: Path | str, problem: str) -> None:
    super().__init__(f"{path}: {problem}")
    self.path, self.problem = str(path), problem


@dataclasses.dataclass(frozen=True)
class Problem:
  """An input left out of the report, and why (shown on the page and printed)."""

  path: str
  problem: str

  @property
  def line(self) -> str:
    return f"{self.path}: {self.problem}"


# ---------------------------------------------------------------------------------------------
# When: provenance, file dates, the age of the code
# ---------------------------------------------------------------------------------------------


def parse_date(text: Any) -> dt.datetime | None:
  """An ISO 8601 date (naive dates are UTC), or None."""
  if not isinstance(text, str) or not text:
    return None
  try:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
  except ValueError:
    return None
  return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def iso(value: dt.datetime) -> str:
  return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _git(*args: str) -> str | None:
  try:
    out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=20, check=True)
  except (OSError, subprocess.SubprocessError):
    return None
  return out.stdout.strip()


def _mtime(path: Path) -> dt.datetime:
  return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)


def file_date(path: Path) -> tuple[dt.datetime, str]:
  """When a file was made: the date of the commit that last changed it if git has it unchanged,
  else its modification time; and which of the two."""
  path = Path(path)
  if _git("status", "--porcelain", "--", str(path.resolve())) == "":
    date = parse_date(_git("log", "-1", "--format=%cI", "--", str(path.resolve())))
    if date:
      return date, "committed"
  return _mtime(path), "modified"


def code_date(kind: str) -> tuple[dt.datetime, str] | None:
  """The age of the code that makes inputs of ``kind`` (:data:`CODE`): the last commit that changed
  it, or a newer modification time of a file changed since; without git, the newest source file."""
  folders = [ROOT / f for f in CODE[kind] if (ROOT / f).is_dir()]
  if not folders:
    return None
  committed = parse_date(_git("log", "-1", "--format=%cI", "--", *map(str, folders)))
  if committed is not None:
    changed = _git("status", "--porcelain", "--", *map(str, folders)) or ""
    files = [ROOT / line[3:].strip() for line in changed.splitlines() if line[3:].strip().endswith(".py")]
    dates = [(committed, "the last commit to " + ", ".join(CODE[kind]))]
    dates += [(_mtime(f), f"{f.relative_to(ROOT)} (changed since)") for f in files if f.is_file()]
    return max(dates)
  sources = [p for f in folders for p in f.rglob("*.py")]
  newest = max(sources, key=lambda p: p.stat().st_mtime, default=None)
  return None if newest is None else (_mtime(newest), f"{newest.relative_to(ROOT)} (newest source file)")


@dataclasses.dataclass(frozen=True)
class Source:
  """Where one input came from and when: its recorded provenance, else its file's date."""

  path: str
  provenance: Mapping[str, Any]
  file_date: str
  file_date_kind: str  # "committed" (git's date of the file) or "modified" (its mtime)

  @property
  def date(self) -> str:
    recorded = parse_date(self.provenance.get("date"))
    return iso(recorded) if recorded else self.file_date

  def stale(self, code: tuple[dt.datetime, str] | None) -> str | None:
    """Why this input is older than ``code`` (:func:`code_date`), or None."""
    if code is None:
      return None
    if self.provenance.get("commit") and self.provenance.get("commit") == _git("rev-parse", "HEAD"):
      return None
    made = parse_date(self.date)
    if made is None or made >= code[0]:
      return None
    return f"{self.path} ({self.date}) is older than the code ({iso(code[0])}: {code[1]})"

  def describe(self) -> str:
    """One line: the path, then commit, date, target, version and command as recorded."""
    p = self.provenance
    parts = [f"{k} {p[k]}" for k in ("commit", "target", "version") if p.get(k)]
    if shard(p):
      parts.append("shard {}/{}".format(*shard(p)))
    when = f"run {self.date}" if p.get("date") else f"file {self.file_date_kind} {self.file_date}"
    text = ", ".join([when, *parts])
    command = p.get("command") or p.get("argv")
    if command:
      text += f"; command: {command if isinstance(command, str) else ' '.join(map(str, command))}"
    if not p:
      text += " (no provenance recorded)"
    return f"{self.path}: {text}"


def shard(provenance: Mapping[str, Any]) -> tuple[int, int] | None:
  """(K, N) of a run made with ``--shard K/N``, or None."""
  value = provenance.get("shard")
  if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
    return int(value[0]), int(value[1])
  return None


def missing_shards(sources: Sequence[Source]) -> str | None:
  """Why the shards read are not the whole run (some of 1..N absent), or None."""
  found = [shard(s.provenance) for s in sources]
  if not any(found):
    return None
  total = max(n for _, n in filter(None, found))
  absent = sorted(set(range(1, total + 1)) - {k for k, _ in filter(None, found)})
  if not absent:
    return None
  return (f"the verification results are part of a run: shard{'s' if len(absent) > 1 else ''} "
          f"{', '.join(f'{k}/{total}' for k in absent)} not given")


def source(path: Path, provenance: Mapping[str, Any]) -> Source:
  date, how = file_date(path)
  return Source(str(path), dict(provenance), iso(date), how)


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Verification:
  """One verification run (the reference, a target or a peer library; shards merged) and its inputs."""

  title: str
  run: Run
  prefix: str  # anchor prefix, unique per run in a page
  sources: tuple[Source, ...] = ()

  @property
  def target(self) -> str:
    return self.run.target

  @property
  def library(self) -> Mapping[str, Any] | None:
    return self.run.library

  @property
  def environment(self) -> Mapping[str, Any]:
    return self.run.environment

  @property
  def results(self) -> tuple[Result, ...]:
    return self.run.results

  @property
  def checks(self) -> list[str]:
    """The run's checks in the engine's order (``Run.checks``), then any others its results name."""
    return list(dict.fromkeys([*self.run.checks, *(r.check for r in self.results)]))

  @property
  def labels(self) -> list[str]:
    return list(dict.fromkeys(r.label for r in self.results))

  @property
  def cells(self) -> dict[tuple[str, str], Result]:
    return {(r.label, r.check): r for r in self.results}

  @property
  def anchors(self) -> dict[tuple[str, str], str]:
    return anchor_ids(self.prefix, [(r.label, r.check) for r in self.results])

  @property
  def curves(self) -> Mapping[str, Curve]:
    return self.run.curves


def slug(text: str) -> str:
  """Lower-case letters, digits and single dashes: safe in an HTML id and a file name."""
  return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def anchor_ids(prefix: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
  """A unique, readable id per (label, check), numbered where two labels slug alike."""
  out: dict[tuple[str, str], str] = {}
  used: set[str] = set()
  for label, check in keys:
    base = f"{prefix}-{slug(label)}-{slug(check)}"
    ident, n = base, 1
    while ident in used:
      n += 1
      ident = f"{base}-{n}"
    used.add(ident)
    out[(label, check)] = ident
  return out


#: Diagnosis fields shown first, in this order; the rest follows as JSON.
MAIN_FIELDS = ("message", "worst_input", "expected", "got", "tolerance", "dtype", "reason", "failing_points",
               "capability", "fix")


def diagnosis(r: Result) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
  """(the main fields present, in order; everything else, the candidate's notes included)."""
  detail = r.diagnosis.to_json()
  if r.notes:
    detail["notes"] = dict(r.notes)
  main = [(k, detail[k]) for k in MAIN_FIELDS if k in detail]
  rest = {k: v for k, v in detail.items() if k not in MAIN_FIELDS}
  return main, rest


def as_text(value: Any) -> str:
  """A detail value as one line of text (JSON for containers)."""
  if isinstance(value, str):
    return value
  return json.dumps(value, ensure_ascii=False)


def read_json(path: Path) -> Any:
  """The parsed document; :class:`InputError` for a file that is unreadable or not JSON."""
  try:
    text = Path(path).read_text(encoding="utf-8")
  except (OSError, UnicodeDecodeError) as exc:
    raise InputError(path, f"cannot be read ({exc.__class__.__name__}: {exc})") from None
  try:
    return json.loads(text)
  except json.JSONDecodeError as exc:
    if not text.strip():
      raise InputError(path, "is empty") from None
    cut = ", truncated?" if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated") else ""
    raise InputError(path, f"is not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno}{cut})") from None


def load_run(path: Path) -> Run:
  """A verification run of any schema version; :class:`InputError` naming the file and the problem."""
  doc = read_json(path)
  try:
    run = Run.from_json(doc)
    if run.library is not None and not isinstance(run.library, Mapping):
      raise ValueError(f"'library' is a {type(run.library).__name__}, not an object")
  except ValueError as exc:
    raise InputError(path, f"is not a verification result: {exc}") from None
  except (TypeError, AttributeError, KeyError) as exc:  # a field of the wrong type somewhere
    raise InputError(path, f"is not a verification result: {type(exc).__name__}: {exc}") from None
  return run


def title_of(run: Run) -> str:
  lib = run.library
  return f"{lib.get('name', '')} {lib.get('version', '')}".strip() if lib else run.target


def load_verification(paths: Sequence[Path], prefix: str) -> tuple[Verification | None, list[Problem]]:
  """The runs in ``paths`` merged into one (shards of one run); unreadable files and a refused merge
  are problems, and the readable rest is kept unless the merge is refused."""
  runs, sources, problems = [], [], []
  for path in paths:
    try:
      run = load_run(path)
    except InputError as exc:
      problems.append(Problem(exc.path, exc.problem))
      continue
    runs.append(run)
    sources.append(source(path, run.provenance))
  if not runs:
    return None, problems
  try:
    run = Run.merge(runs, [s.path for s in sources]) if len(runs) > 1 else runs[0]
  except ValueError as exc:
    return None, [*problems, Problem(", ".join(s.path for s in sources), f"cannot be merged: {exc}")]
  return Verification(title_of(run), run, prefix, tuple(sources)), problems


def load_peers(paths: Iterable[Path]) -> tuple[list[Verification], list[Problem]]:
  """Peer runs sorted by library name and version (as text); unreadable files are problems."""
  runs, problems = [], []
  for path in paths:
    v, bad = load_verification([path], "peer")
    problems += bad
    if v is not None:
      runs.append(v)
  runs.sort(key=lambda v: (v.title.lower(), v.target))
  return [dataclasses.replace(v, prefix=f"peer-{slug(v.title)}-{i}") for i, v in enumerate(runs)], problems


def failing_inputs(v: Verification, label: str) -> list[float]:
  """The worst inputs of the failing results of one candidate (where its plot is marked)."""
  return sorted({r.diagnosis.worst_input for r in v.results
                 if r.label == label and r.failing and isinstance(r.diagnosis.worst_input, float)})


# ---------------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Bench:
  """One pytest-benchmark file: its run metadata, op descriptions and the ``extra_info`` of each benchmark."""

  name: str
  meta: dict[str, Any]
  rows: tuple[dict[str, Any], ...]
  #: Op name -> its declaration as the suite wrote it (``surrogate_bench.ops``: baseline, bytes per element).
  ops_info: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
  source: Source | None = None
  #: The A/A control (``surrogate_bench.aa_control``: the baseline timed against a copy of itself).
  aa_control: dict[str, Any] | None = None

  @property
  def control(self) -> str | None:
    """The A/A control's verdict in words (None for files without one)."""
    aa = self.aa_control
    if not aa or not aa.get("groups"):
      return None
    groups = aa["groups"]
    band = aa.get("band") or ["?", "?"]
    bad = [g.get("group", "?") for g in groups if not g.get("passed")]
    text = (f"A/A control (the baseline timed against a copy of itself): median ratio within [{band[0]}, {band[1]}] "
            f"in {len(groups) - len(bad)} of {len(groups)} groups")
    return text + (f"; outside in {', '.join(map(str, bad))}: this run's ratios are not trustworthy" if bad else "")

  @property
  def ops(self) -> list[str]:
    seen = list(dict.fromkeys(r["op"] for r in self.rows))
    declared = [*self.meta.get("ops", []), *self.ops_info]
    known = [op for op in dict.fromkeys(declared) if op in seen]
    return known + [op for op in seen if op not in known]

  @property
  def tables(self) -> list[Table]:
    return [table(self, op) for op in self.ops]

  def baseline(self, op: str) -> str:
    """The op's same-bytes baseline as the suite describes it; '?' for files that do not say."""
    declared = self.ops_info.get(op, {}).get("baseline")
    if declared:
      return str(declared)
    return next((str(r["baseline"]) for r in self.rows if r["op"] == op and r.get("baseline")), "?")


@dataclasses.dataclass(frozen=True)
class Table:
  """Ratio and GB/s of one op: rows (surrogate, or 'surrogate [library]') × columns (dtype, log2 size)."""

  op: str
  baseline: str
  rows: list[str]
  columns: list[tuple[str, int]]
  ratio: dict[tuple[str, tuple[str, int]], float]
  gbps: dict[tuple[str, tuple[str, int]], float]
  baseline_gbps: dict[tuple[str, int], float]


def bench_entries(doc: Any) -> list[dict[str, Any]]:
  """The ``extra_info`` of every benchmark that names an op; ValueError naming a malformed one."""
  if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
    raise ValueError("no 'benchmarks' list (not a pytest-benchmark JSON file)")
  rows = []
  for i, b in enumerate(doc["benchmarks"]):
    info = b.get("extra_info") if isinstance(b, dict) else None
    if not isinstance(info, dict) or not info.get("op"):
      continue
    missing = [k for k in BENCH_FIELDS if k not in info]
    if missing:
      raise ValueError(f"benchmark #{i} ({b.get('name', '?')}) has no {', '.join(missing)}")
    try:
      row = {**info, "log2_size": int(info["log2_size"]), "ratio": float(info["ratio"]), "gbps": float(info["gbps"]),
             "baseline_gbps": baseline_gbps(info)}
    except (TypeError, ValueError) as exc:
      raise ValueError(f"benchmark #{i} ({b.get('name', '?')}): {exc}") from None
    rows.append(row)
  return rows


def load_bench(path: Path) -> Bench:
  """One benchmark file; :class:`InputError` naming the file and the problem."""
  doc = read_json(path)
  try:
    rows = bench_entries(doc)
    declared = (doc.get("surrogate_bench") or {}).get("ops") or []
    ops_info = {str(o["name"]): dict(o) for o in declared if isinstance(o, dict) and o.get("name")}
    aa_control = (doc.get("surrogate_bench") or {}).get("aa_control")
    if aa_control is not None and not isinstance(aa_control, dict):
      raise ValueError(f"surrogate_bench.aa_control is a {type(aa_control).__name__}, not an object")
    meta = dict(doc.get("bench") or {})
    meta.setdefault("datetime", doc.get("datetime", ""))
    commit = doc.get("commit_info") or {}
    provenance = {k: v for k, v in (("commit", commit.get("id")), ("date", doc.get("datetime"))) if v}
  except ValueError as exc:
    raise InputError(path, f"is not a benchmark result: {exc}") from None
  except (TypeError, AttributeError, KeyError) as exc:  # a field of the wrong type somewhere
    raise InputError(path, f"is not a benchmark result: {type(exc).__name__}: {exc}") from None
  return Bench(name=Path(path).stem, meta=meta, rows=tuple(rows), ops_info=ops_info, source=source(path, provenance),
               aa_control=aa_control)


def load_benches(paths: Iterable[Path]) -> tuple[list[Bench], list[Problem]]:
  benches, problems = [], []
  for path in paths:
    try:
      benches.append(load_bench(path))
    except InputError as exc:
      problems.append(Problem(exc.path, exc.problem))
  return benches, problems


def baseline_gbps(info: Mapping[str, Any]) -> float | None:
  """The same-bytes baseline's GB/s measured next to this benchmark: ``baseline_gbps`` (older files),
  else ``comparator_gbps`` where the comparator is the baseline (not the reference, as for a peer)."""
  if info.get("baseline_gbps") is not None:
    return float(info["baseline_gbps"])
  if info.get("comparator_gbps") is not None and info.get("comparator") != "reference":
    return float(info["comparator_gbps"])
  return None


def row_name(e: dict[str, Any]) -> str:
  """The surrogate, with its library unless it is the reference; a ratio to the reference says so."""
  lib = e.get("library", "surrogates")
  name = e["surrogate"] if lib == "surrogates" else f"{e['surrogate']} [{lib}]"
  return f"{name}, ratio to the reference" if e.get("comparator") == "reference" else name


def table(bench: Bench, op: str) -> Table:
  """The ratio / GB/s table of one op; rows sorted by name, columns by dtype (as run) then size."""
  rows = [e for e in bench.rows if e["op"] == op]
  dtypes = list(dict.fromkeys(e["dtype"] for e in rows))
  columns = sorted({(e["dtype"], e["log2_size"]) for e in rows}, key=lambda c: (dtypes.index(c[0]), c[1]))
  ratio = {(row_name(e), (e["dtype"], e["log2_size"])): e["ratio"] for e in rows}
  gbps = {(row_name(e), (e["dtype"], e["log2_size"])): e["gbps"] for e in rows}
  base: dict[tuple[str, int], list[float]] = {}
  for e in rows:
    if e["baseline_gbps"] is not None:
      base.setdefault((e["dtype"], e["log2_size"]), []).append(e["baseline_gbps"])
  baseline_gbps = {c: sorted(v)[len(v) // 2] for c, v in base.items()}
  return Table(op=op, baseline=bench.baseline(op), rows=sorted({row_name(e) for e in rows}), columns=columns,
               ratio=ratio, gbps=gbps, baseline_gbps=baseline_gbps)


def column_title(column: tuple[str, int]) -> str:
  return f"{column[0]} 2^{column[1]}"


# ---------------------------------------------------------------------------------------------
# Everything a page shows
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Inputs:
  """What a report is built from, the inputs left out, and the warnings about the rest."""

  verify: Verification | None
  peers: list[Verification]
  benches: list[Bench]
  problems: list[Problem]
  #: Visible warnings: inputs older than the code, committed results shown instead of a fresh run.
  warnings: list[str]
  #: How each part was asked for (glob, folder, paths), for the notes of a missing part.
  asked: dict[str, str]


def load(verify: Sequence[Path], peers: Sequence[Path], benches: Sequence[Path], committed_default: bool = False,
         asked: Mapping[str, str] | None = None) -> Inputs:
  """Reads every input that exists; see :class:`Inputs`. ``verify`` lists the shards of one run;
  ``committed_default``: it is the committed fallback for a missing fresh run (a visible note)."""
  existing = [p for p in verify if Path(p).is_file()]
  problems = [Problem(str(p), "does not exist") for p in verify if not Path(p).is_file() and len(verify) > 1]
  v, bad = load_verification(existing, "v") if existing else (None, [])
  peer_runs, bad_peers = load_peers(peers)
  bench_runs, bad_bench = load_benches(benches)
  problems += bad + bad_peers + bad_bench
  warnings = []
  if v is not None and committed_default:
    s = v.sources[0]
    shown = f"the committed results of {s.date}" if s.file_date_kind == "committed" else f"results of {s.date}"
    warnings.append(f"No fresh verification run ({DEFAULT_VERIFY} does not exist): showing {shown} ({s.path}); "
                    "write fresh ones with nox -s verify.")
  if v is not None and (partial := missing_shards(v.sources)):
    warnings.append(partial)
  codes = {kind: code_date(kind) for kind in CODE}
  sources = [*(v.sources if v else ()), *(s for p in peer_runs for s in p.sources)]
  warnings += [w for s in sources if (w := s.stale(codes["verify"]))]
  warnings += [w for b in bench_runs if b.source and (w := b.source.stale(codes["bench"]))]
  warnings += [f"{b.source.path if b.source else b.name}: {b.control}" for b in bench_runs
               if b.control and "not trustworthy" in b.control]
  names = {"verify": ", ".join(map(str, verify)) or "no file", "peers": "the peer files given",
           "bench": "the benchmark files given"}
  return Inputs(v, peer_runs, bench_runs, problems, warnings, {**names, **(asked or {})})


def default_verify() -> tuple[list[Path], bool]:
  """The fresh run of ``nox -s verify`` if it exists, else the committed results (and True)."""
  if DEFAULT_VERIFY.is_file():
    return [DEFAULT_VERIFY], False
  return [COMMITTED_VERIFY], True


def check_output(out: Path) -> str | None:
  """Why the report cannot be written to folder ``out``, or None (checked before any work)."""
  out = Path(out)
  if out.exists() and not out.is_dir():
    return f"--out {out} exists and is not a folder"
  parent = out
  while not parent.exists():
    parent = parent.parent
  if not parent.is_dir():
    return f"--out {out}: {parent} is not a folder"
  if not os.access(parent, os.W_OK | os.X_OK):
    return f"--out {out}: {parent} is not writable"
  for sub in ("index.html", "index.md", "img"):
    if (out / sub).exists() and not os.access(out / sub, os.W_OK):
      return f"--out {out}: {out / sub} is not writable"
  return None
