"""Hostile candidates cannot crash, hang, fool or contaminate a run (tests/hostile/ has them).

Each run mixes hostile candidates with a correct one: the run completes, writes its JSON, gives the
hostile candidate a failing result whose diagnosis names the cause, and passes the correct one. One
surrogate, one dtype, two checks, short time limits: seconds per case.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from verification.engine.runner import Options, run
from verification.results import Run, Status

FAST = ["--checks", "forward,autodiff", "--dtypes", "float32", "--quiet"]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "verification", *args], capture_output=True, text=True,
                        timeout=timeout)


def checked(target: str, tmp_path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
  """A CLI run that must complete with exit status 1 and a JSON file; the results by (label, check)."""
  out = tmp_path / "run.json"
  proc = cli("--target", f"tests.hostile:{target}", *FAST, "--json", str(out), *extra)
  assert proc.returncode == 1, proc.stdout + proc.stderr
  doc = Run.from_json(json.loads(out.read_text()))
  return proc, {(r.label, r.check): r for r in doc.results}


def assert_fails(results: dict, label: str, *words: str) -> None:
  mine = [r for (lab, _), r in results.items() if lab == label]
  assert mine and all(r.failing for r in mine), [r.status for r in mine]
  for r in mine:
    for w in words:
      assert w in r.diagnosis.text(), (w, r.diagnosis.text())


def assert_passes(results: dict, label: str) -> None:
  mine = {chk: r for (lab, chk), r in results.items() if lab == label}
  assert set(mine) == {"forward", "autodiff"}
  assert all(r.status is Status.PASS for r in mine.values()), {c: r.diagnosis.text() for c, r in mine.items()}


def test_os_exit_and_segfault_are_errors_naming_exit_status_and_signal(tmp_path):
  _, results = checked("DIES", tmp_path, "--jobs", "1")
  assert_fails(results, "exits", "exited with status 3", "sanity")
  assert_fails(results, "segfaults", "SIGSEGV")
  assert "_segfault" in results[("segfaults", "forward")].diagnosis.text()  # Python's fatal-error report
  assert_passes(results, "correct after deaths")


def test_a_hanging_compiled_loop_is_ended_by_the_time_limit(tmp_path):
  # The loop spins a core until the limit ends it. 3 s: the correct candidate's checks take ~0.5 s
  # (float32, two checks) on a loaded machine; start-up and loading have their own, longer limit.
  _, results = checked("HANGS", tmp_path, "--jobs", "1", "--timeout", "3")
  assert_fails(results, "hangs", "time limit of 3 s", "worker process was ended")
  assert_passes(results, "correct after the hang")


def test_a_list_output_fails_at_once_and_a_30_gb_allocation_hits_the_memory_limit(tmp_path):
  _, results = checked("MONSTERS", tmp_path, "--jobs", "1")
  assert_fails(results, "returns a list", "returned a list", "shape (4,)")
  assert_fails(results, "allocates 30 GB", "MemoryError")
  assert_passes(results, "correct after the monsters")


def test_a_candidate_flipping_x64_fails_and_does_not_reach_the_next(tmp_path):
  _, results = checked("CONTAMINATES", tmp_path, "--jobs", "1")
  assert_fails(results, "flips x64", "jax_enable_x64: True -> False")
  assert_passes(results, "correct after contamination")
  # the candidate that flipped x64 and the one that left a thread running each had their worker replaced
  assert json.loads((tmp_path / "run.json").read_text())["provenance"]["workers_started"] == 3


def test_unbuildable_candidates_are_errors_and_the_others_are_checked(tmp_path):
  """A raising factory; also --jobs 100 is capped (one candidate to check)."""
  _, results = checked("UNBUILDABLE", tmp_path, "--jobs", "100")
  labels = {lab for lab, _ in results}
  factory = next(lab for lab in labels if "_raising_factory" in lab)
  assert_fails(results, factory, "the factory is broken")
  assert all(r.status is Status.ERROR for (lab, _), r in results.items() if lab != "correct among the unbuildable")
  assert_passes(results, "correct among the unbuildable")
  doc = json.loads((tmp_path / "run.json").read_text())
  assert doc["provenance"]["workers"] == 1


@pytest.mark.parametrize(("target", "field"), [("MALFORMED_SCALE", "scale='two'"), ("MALFORMED_PARAMS", "params=4.0")])
def test_a_malformed_candidate_is_a_usage_error_naming_the_field(target, field):
  proc = cli("--target", f"tests.hostile:{target}", *FAST)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert field in proc.stderr and "malformed" in proc.stderr


def test_ten_megabytes_of_output_per_call_are_captured_and_truncated(tmp_path):
  out = tmp_path / "run.json"
  proc = cli("--target", "tests.hostile:CHATTY", *FAST, "--json", str(out), "--jobs", "1")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert len(proc.stdout) + len(proc.stderr) < 100_000
  results = {(r.label, r.check): r for r in Run.from_json(json.loads(out.read_text())).results}
  extra = results[("prints 10 MB per call", "forward")].diagnosis.extra
  assert extra["output_bytes"] >= 10 << 20 and "bytes left out" in extra["output"] and len(extra["output"]) < 4000
  assert_passes(results, "correct next to chatter")


def test_a_set_ordered_target_is_matched_by_label():
  got = run("tests.hostile:SET_ORDERED", Options(checks=("forward", "differential"), dtypes=("float32",), jobs=2))
  per_label = {}
  for r in got.results:
    per_label.setdefault(r.label, []).append(r.check)
  # labelled by the process that builds it: the workers that load the target build different ones
  (pid,) = [label for label in per_label if label.startswith("set: made in process ")]
  assert pid != f"set: made in process {os.getpid()}", "the target was loaded in the harness process"
  assert per_label == {label: ["forward", "differential"] for label in
                       ("set: correct a", "set: half gradient", "set: correct b", "set: correct c", pid)}
  by = {(r.label, r.check): r for r in got.results}
  message = by[(pid, "forward")].message
  assert by[(pid, "forward")].status is Status.ERROR and "not deterministic" in message
  # the labels named as the cause, with the nearest label the other process built as the example
  assert "labels differ between the processes" in message and "process id" in message
  assert message.count("'set: made in process ") == 2, message
  assert by[("set: half gradient", "differential")].status is Status.FAIL
  assert "ratio 0.5" in by[("set: half gradient", "differential")].message
  assert all(by[(f"set: correct {k}", c)].status is Status.PASS for k in "abc" for c in ("forward", "differential"))


def test_a_killed_run_leaves_the_json_of_what_finished(tmp_path):
  # the JSON is rewritten at most every few seconds: the second candidate, done within them of the first, is
  # written when they are up, while the third hangs
  out = tmp_path / "run.json"
  proc = subprocess.Popen([sys.executable, "-m", "verification", "--target", "tests.hostile:INCREMENTAL", *FAST,
                           "--json", str(out), "--jobs", "1", "--timeout", "300"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)

  def written() -> set:
    try:
      return {(r.label, r.status) for r in Run.from_json(json.loads(out.read_text())).results}
    except (OSError, ValueError):
      return set()

  try:
    deadline = time.monotonic() + 300
    while len({label for label, _ in written()}) < 2 and proc.poll() is None and time.monotonic() < deadline:
      time.sleep(0.5)
  finally:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
  assert written() == {("first", Status.PASS), ("second", Status.PASS)}, "no JSON of both while the third hangs"


@pytest.mark.parametrize(("args", "words"), [
    (["--target", "tests.hostile:DUPLICATE_LABELS"], ["'same'", "more than once"]),
    (["--target", "tests.hostile.broken_import:X"], ["tests.hostile.broken_import", "broken at import"]),
    (["--target", "tests.no_such_module:X"], ["tests.no_such_module", "ModuleNotFoundError"]),
    (["--target", "tests.hostile:EMPTY"], ["has no candidates"]),
    (["--target", "builtins:print"], ["builtin_function_or_method", "candidate_factory"]),
    (["--json", "/nonexistent-dir/run.json"], ["/nonexistent-dir", "does not exist"]),
    (["--junit", "/nonexistent-dir/run.xml"], ["/nonexistent-dir", "does not exist"]),
    (["--timeout", "0"], ["timeout 0.0"]),
    (["--timeout", "-1"], ["timeout -1.0"]),
    (["--timeout", "nan"], ["timeout nan"]),
    (["--checks", ","], ["empty check name"]),
    (["--dtypes", ","], ["dtypes"]),
    (["--only", "Sigmoid,NoSuch"], ["NoSuch"]),
    (["--only", "Sigmod"], ["did you mean", "Sigmoid"]),
    (["--examples", "0"], ["hypothesis examples 0"]),
    (["--jobs", "-1"], ["jobs -1"]),
    (["--target", "tests.hostile:HANGS", "--target", "tests.hostile:DIES"], ["--target given more than once",
                                                                             "tests.hostile:HANGS", "one target"]),
])
def test_usage_and_loading_errors_exit_2_with_one_message(args, words, capsys):
  """Found before any worker starts (so in this process: the command line's main())."""
  from verification.__main__ import main

  assert main([*args, "--quiet"]) == 2
  out, err = capsys.readouterr()
  assert "Traceback" not in err and out == ""
  for w in words:
    assert w in err, err


@pytest.mark.parametrize(("module", "cause"), [("exits_at_import", "exited with status 0"),
                                               ("segfaults_at_import", "SIGSEGV")])
def test_a_module_that_ends_its_process_at_import_is_a_loading_error(module, cause):
  # Imported by the harness process, os._exit(0) would end the run with status 0: a passing gate.
  proc = cli("--target", f"tests.hostile.{module}:CANDIDATES", *FAST)
  assert proc.returncode == 2, proc.stdout + proc.stderr
  assert f"tests.hostile.{module}" in proc.stderr and cause in proc.stderr and "loading it ended" in proc.stderr


def test_a_module_that_hangs_at_import_is_ended_by_the_loading_limit(monkeypatch):
  from verification.engine import processes
  from verification.targets import TargetError

  monkeypatch.setattr(processes, "STARTUP_LIMIT", 4.0)
  start = time.monotonic()
  with pytest.raises(TargetError, match="not loaded within 4 s"):
    run("tests.hostile.hangs_at_import:CANDIDATES", Options(checks=("forward",), dtypes=("float32",), timeout=1.0))
  assert time.monotonic() - start < 60


def test_the_harness_process_never_imports_the_target():
  import jax

  before = dict(jax.config.values)
  got = run("tests.hostile.spoils_at_import:CANDIDATES", Options(checks=("forward", "autodiff"), dtypes=("float32",)))
  assert "tests.hostile.spoils_at_import" not in sys.modules
  assert dict(jax.config.values) == before
  # the workers re-assert the harness's configuration after loading it: the candidate is checked in 64-bit
  assert [r.status for r in got.results] == [Status.PASS, Status.PASS], [r.message for r in got.results]


def test_shards_partition_the_candidates_by_label():
  from verification.engine.runner import load

  whole = load("reference", Options()).labels
  parts = [load("reference", Options(shard=(k, 3))).labels for k in (1, 2, 3)]
  assert sorted(label for part in parts for label in part) == sorted(whole) and all(parts)
  assert parts[0] == load("reference", Options(shard=(1, 3))).labels


def test_an_internal_error_of_the_harness_exits_3(monkeypatch, capsys):
  from verification import __main__ as cli_module
  from verification.engine import runner

  def broken(*args, **kwargs):
    raise RuntimeError("planted harness bug")

  monkeypatch.setattr(runner, "run", broken)
  assert cli_module.main(["--only", "Sigmoid", "--quiet"]) == 3
  err = capsys.readouterr().err
  assert "internal error of the harness" in err and "planted harness bug" in err and "Traceback" not in err


def test_alarms_timers_a_deleted_directory_and_variables_do_not_reach_the_next_candidate(tmp_path):
  """An alarm and a faulthandler timer (1 s), a deleted working directory and an environment variable, left
  by correct candidates: the worker resets them before each check, so the last, slow candidate passes."""
  out = tmp_path / "run.json"
  proc = cli("--target", "tests.hostile:LEFTOVERS", *FAST, "--json", str(out), "--jobs", "1", "--timeout", "20")
  assert proc.returncode == 0, proc.stdout + proc.stderr
  results = {(r.label, r.check): r for r in Run.from_json(json.loads(out.read_text())).results}
  for label in ("arms an alarm", "arms a faulthandler timer", "deletes its directory", "sets a variable", "innocent"):
    assert_passes(results, label)


def test_a_patched_judge_fails_the_patching_candidate_and_does_not_reach_the_next(tmp_path):
  _, results = checked("PATCHES", tmp_path, "--jobs", "1", "--checks", "forward,differential")
  assert_fails(results, "patches the judge", "numpy.allclose", "Comparisons.compare", "_context.worst")
  assert results[("half gradient after a patch", "differential")].status is Status.FAIL
  assert json.loads((tmp_path / "run.json").read_text())["provenance"]["workers_started"] == 2


def test_judging_code_rewritten_in_the_worker_or_a_forged_pass_changes_no_verdict(tmp_path):
  """The comparison helpers' code rewritten in place in the worker (no snapshot sees it; the worker is kept):
  the half gradient still fails, and so does the clean one the same worker checks next, since the verdicts
  are the judge's. A 'pass' written with the run's token, read from the worker's own channel, ends the worker."""
  out = tmp_path / "run.json"
  proc = cli("--target", "tests.hostile:JUDGED_ELSEWHERE", "--checks", "forward,differential", "--dtypes", "float32",
             "--quiet", "--jobs", "1", "--json", str(out))
  assert proc.returncode == 1, proc.stdout + proc.stderr
  results = {(r.label, r.check): r for r in Run.from_json(json.loads(out.read_text())).results}
  for label in ("rewrites the judge's code", "half gradient after a rewrite"):
    assert results[(label, "differential")].status is Status.FAIL, results[(label, "differential")].message
    assert "g differs from the reference" in results[(label, "differential")].message
  assert_fails(results, "forges a pass with the token", "verdicts come from the judge")
  for label in ("correct after a rewrite", "correct after a forged pass"):
    assert {r.status for (lab, _), r in results.items() if lab == label} == {Status.PASS}, label
  assert json.loads(out.read_text())["provenance"]["workers_started"] == 2  # the rewrite went unseen


def test_a_judge_rebound_at_import_is_put_back_before_any_check():
  # The module's import rebinds the comparison helpers and numpy.allclose in the worker that loads it;
  # the worker puts them back, so the half gradient still fails (it passed when the patch held).
  from verification.engine.runner import Options, run

  got = run("tests.hostile.patches_at_import:CANDIDATES", Options(checks=("differential",), dtypes=("float32",),
                                                                   jobs=1))
  (result,) = got.results
  assert result.status is Status.FAIL, result.message
  assert "g differs from the reference" in result.message


def test_base_exceptions_of_a_candidate_are_its_errors_in_each_check(tmp_path):
  _, results = checked("BASE_EXCEPTIONS", tmp_path, "--jobs", "1")
  for label, name in (("keyboard interrupt", "KeyboardInterrupt"), ("generator exit", "GeneratorExit"),
                      ("library abort", "LibraryAbort")):
    assert_fails(results, label, f"{name}: {name} raised by the candidate")
    assert all(r.status is Status.ERROR and "internal error" not in r.message
               for (lab, _), r in results.items() if lab == label)
  assert_passes(results, "correct after base exceptions")


def test_jax_settings_made_at_import_are_set_back_so_a_wrong_candidate_still_fails(tmp_path):
  """jax_disable_jit, jax_debug_nans and jax_numpy_rank_promotion set by the target's module: evaluated eagerly,
  an untraceable gradient would pass; the worker sets every option back to its own before each candidate."""
  proc = cli("--target", "tests.hostile.configures_at_import:CANDIDATES", *FAST, "--json", str(tmp_path / "run.json"),
             "--jobs", "1")
  assert proc.returncode == 1, proc.stdout + proc.stderr
  results = {(r.label, r.check): r for r in Run.from_json(json.loads((tmp_path / "run.json").read_text())).results}
  assert results[("untraceable gradient", "autodiff")].status is Status.FAIL
  assert "TracerArrayConversionError" in results[("untraceable gradient", "autodiff")].message
  assert_passes(results, "correct next to the settings")


def test_odd_text_in_messages_labels_and_output_gives_valid_bounded_reports(tmp_path):
  """A lone surrogate, ANSI escapes and a 4.2 MB message: exit 1 (not an internal error), valid UTF-8 JSON and
  JUnit XML, no raw escape on the terminal, every field bounded, no temporary file left."""
  import xml.etree.ElementTree as ET

  out, junit = tmp_path / "run.json", tmp_path / "run.xml"
  proc = subprocess.run([sys.executable, "-m", "verification", "--target", "tests.hostile:ODD_TEXT", *FAST, "--json",
                         str(out), "--junit", str(junit), "--jobs", "1"], capture_output=True, timeout=600)
  assert proc.returncode == 1, proc.stderr[-3000:]
  assert b"\x1b" not in proc.stdout + proc.stderr and len(proc.stdout) + len(proc.stderr) < 100_000
  assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "run.xml"]
  assert out.stat().st_size < 200_000
  results = {(r.label, r.check): r for r in Run.from_json(json.loads(out.read_bytes().decode("utf-8"))).results}
  assert "\\udcff.npy" in results[("undecodable path", "forward")].message
  ansi = "ansi \\x1b[31mlabel\\x1b[0m"
  assert "\\x1b[2J" in results[(ansi, "forward")].message
  assert "\\x1b[31mred" in results[(ansi, "forward")].diagnosis.extra["output"]
  huge = results[("huge message", "forward")].message
  assert len(huge) <= 4096 and "characters left out" in huge
  assert_passes(results, "correct next to odd text")
  cases = ET.parse(junit).getroot().findall("testcase")
  assert len(cases) == 8 and {c.get("classname") for c in cases} >= {ansi, "undecodable path"}


def test_a_forged_header_half_a_message_and_forged_verdicts_end_the_worker_and_the_run_finishes(tmp_path):
  """Written to the worker's channel by candidates: a header announcing 1 GiB, a message that never completes
  (the time limit still ends it) and verdicts without the run's token; each is its candidate's error."""
  _, results = checked("CHANNEL", tmp_path, "--jobs", "1", "--timeout", "5")
  assert_fails(results, "forges a header", "protocol", "1,073,741,824 bytes")
  assert_fails(results, "sends half a message", "time limit of 5 s")
  assert_fails(results, "forges verdicts", "protocol", "token")
  assert_passes(results, "correct after forgeries")


def test_processes_a_candidate_leaves_are_ended_and_reported(tmp_path, monkeypatch):
  """Helpers started with Popen (in the worker's group, and in a session of their own) and a forked child
  that never exits: each is ended when the check that started it ends, and named in that check's result."""
  import psutil

  from tests.hostile import MARKER

  pid_file = tmp_path / "forked.pid"
  monkeypatch.setenv("HOSTILE_PID_FILE", str(pid_file))
  _, results = checked("PROCESSES", tmp_path, "--jobs", "1")
  for label in ("starts a helper", "starts a helper in its own session"):
    assert any("left 1 process(es) running" in r.message and MARKER in r.message
               for (lab, _), r in results.items() if lab == label), label
  assert any("left 1 process(es) running" in r.message for (lab, _), r in results.items()
             if lab == "forks a child that never exits")
  assert_passes(results, "correct after helpers")
  forked = int(pid_file.read_text())
  assert not psutil.pid_exists(forked) or psutil.Process(forked).status() == psutil.STATUS_ZOMBIE
  assert not [p for p in psutil.process_iter(["cmdline"]) if MARKER in " ".join(p.info["cmdline"] or [])]


def test_the_parent_refuses_messages_out_of_sequence():
  from verification.engine.protocol import ProtocolError, Sequence

  def seq():
    s = Sequence("a", ("forward", "autodiff"))
    s.accept("start", ["a", "loading"])
    return s

  bad = [
      [("done", ["a", None])],  # done before every check had its result
      [("result", ["a", {"check": "edge"}])],  # a check not asked for
      [("result", ["a", {"check": "forward"}]), ("result", ["a", {"check": "forward"}])],  # twice
      [("start", ["b", "sanity"])],  # another label
      [("start", ["a", "loading"])],  # a phase started twice
      [("result", ["a", "not a record"])],
  ]
  for messages in bad:
    s = seq()
    with pytest.raises(ProtocolError):
      for kind, rest in messages:
        s.accept(kind, rest)
  s = seq()
  for kind, rest in [("start", ["a", "sanity"]), ("start", ["a", "forward"]), ("result", ["a", {"check": "forward"}]),
                     ("start", ["a", "autodiff"]), ("result", ["a", {"check": "autodiff"}]), ("done", ["a", None])]:
    s.accept(kind, rest)
  with pytest.raises(ProtocolError, match="'done' before"):
    Sequence("a", ("forward",)).accept("done", ["a", None])


def test_a_failed_output_loses_neither_the_other_nor_leaves_a_temporary_file(tmp_path, monkeypatch, capsys):
  from verification import __main__ as cli_module
  from verification import output
  from verification.engine import runner
  from verification.results import Diagnosis, Result

  record = Result("c", "Sigmoid", {}, "forward", Status.FAIL, Diagnosis("bad"))
  monkeypatch.setattr(runner, "run", lambda *a, **k: Run(target="t", results=(record,), checks=("forward",)))

  def broken(path, run):
    output._replace(path, "{")
    raise OSError("disk full")

  monkeypatch.setattr(output, "write_json", broken)
  monkeypatch.setattr(output, "summary", lambda *args, **kwargs: None)  # its default stream is bound at import
  code = cli_module.main(["--json", str(tmp_path / "run.json"), "--junit", str(tmp_path / "run.xml"), "--quiet"])
  assert code == 3 and "disk full" in capsys.readouterr().err
  assert (tmp_path / "run.xml").stat().st_size > 0
  (tmp_path / "folder").mkdir()
  with pytest.raises(OSError):
    output._replace(str(tmp_path / "folder"), "text")
  assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "run.json", "run.xml"]


# ---- benign side effects pass; leftovers are charged to the candidate that left them -------------------
def passed(target: str, tmp_path, *extra: str) -> dict:
  """A CLI run that must pass (exit status 0); the results by (label, check)."""
  out = tmp_path / "run.json"
  proc = cli("--target", target, *FAST, "--json", str(out), *extra)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  return {(r.label, r.check): r for r in Run.from_json(json.loads(out.read_text())).results}


def test_what_a_module_sets_at_import_stays_and_what_a_candidate_changes_is_put_back(tmp_path):
  """An environment default, a signal handler, a warnings filter, a JAX logging option, shared memory (Python's
  resource tracker) and a helper process, all set up at import and read by every call; one candidate changes
  the environment, the handler and the filters during its checks, and the one after it sees the module's."""
  results = passed("tests.hostile.settles_at_import:CANDIDATES", tmp_path, "--jobs", "1")
  for label in ("reads the module's settings", "changes the module's settings", "reads them after a change"):
    assert_passes(results, label)


def test_python_s_own_helper_processes_are_no_one_s_and_a_left_process_is_its_author_s(tmp_path):
  from tests.hostile import MARKER

  _, results = checked("HELPERS", tmp_path, "--jobs", "1")
  for label in ("makes shared memory", "uses the forkserver", "correct after helpers"):
    assert_passes(results, label)
  assert any("left 1 process(es) running" in r.message and MARKER in r.message
             for (lab, _), r in results.items() if lab == "leaves a helper")


#: What -ffast-math's start-up code (crtfastmath.o) does when a library built with it is loaded, written out as
#: well: compilers since GCC 13 leave that code out of shared libraries.
FAST_MATH_C = r"""
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
__attribute__((constructor)) static void fast_math(void) { _mm_setcsr(_mm_getcsr() | 0x8040); }
#elif defined(__aarch64__)
__attribute__((constructor)) static void fast_math(void) {
  unsigned long fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (1UL << 24)));
}
#endif
double scale(double a, double b) { return a * b; }
"""


def fast_math_library(tmp_path) -> str:
  """A shared library built with -ffast-math (skipped where no C compiler is found)."""
  import shutil

  cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
  if cc is None:
    pytest.skip("no C compiler (cc, gcc or clang) to build a library with -ffast-math")
  (tmp_path / "fast_math.c").write_text(FAST_MATH_C)
  library = tmp_path / "fast_math.so"
  subprocess.run([cc, "-shared", "-fPIC", "-O2", "-ffast-math", str(tmp_path / "fast_math.c"), "-o", str(library)],
                 check=True, capture_output=True, timeout=120)
  return str(library)


def test_floating_point_state_a_candidate_leaves_is_charged_to_it_and_the_next_passes(tmp_path, monkeypatch):
  """A NumPy candidate that loads a library built with -ffast-math (flush-to-zero and denormals-are-zero for the
  thread) and one that sets the rounding mode upward, each before a plain NumPy candidate; the edge check
  computes subnormal inputs, which a flushing worker would compute differently from the judge. All pass; the
  two that changed the state are named, and their workers replaced."""
  monkeypatch.setenv("HOSTILE_FAST_MATH", fast_math_library(tmp_path))
  results = passed("tests.hostile:FLOATING_POINT", tmp_path, "--jobs", "1", "--checks", "forward,edge")
  for label, state in (("loads a fast-math library", "flush-to-zero, denormals-are-zero"),
                       ("rounds upward", "rounding upward")):
    notes = {r.diagnosis.extra.get("left_behind") for (lab, _), r in results.items() if lab == label}
    assert len(notes) == 1 and state in notes.pop(), label
  for label in ("NumPy after fast math", "NumPy after rounding"):
    assert not any("left_behind" in r.diagnosis.extra for (lab, _), r in results.items() if lab == label)
  assert json.loads((tmp_path / "run.json").read_text())["provenance"]["workers_started"] == 3


def test_a_fast_math_library_loaded_at_import_does_not_change_the_inputs_the_checks_compute(tmp_path, monkeypatch):
  monkeypatch.setenv("HOSTILE_FAST_MATH", fast_math_library(tmp_path))
  results = passed("tests.hostile.fast_math_at_import:CANDIDATES", tmp_path, "--jobs", "1", "--checks", "forward,edge")
  assert {r.status for r in results.values()} == {Status.PASS} and len(results) == 2


def test_memory_a_candidate_keeps_is_charged_to_it_and_not_to_the_next(tmp_path, monkeypatch):
  """A correct candidate keeps 1.5 GiB in a module list; the correct one after it needs 1.2 GiB under a 4 GiB
  limit. The first's worker grew by more than a quarter of the limit: it is replaced, and the first is named."""
  monkeypatch.setenv("HOSTILE_CACHE_MB", "1536")
  monkeypatch.setenv("HOSTILE_NEED_MB", "1229")
  results = passed("tests.hostile:MEMORY", tmp_path, "--jobs", "1", "--memory-limit", "4G")
  notes = {r.diagnosis.extra.get("left_behind") for (lab, _), r in results.items() if lab == "keeps a cache"}
  assert len(notes) == 1 and "resident memory grew" in notes.pop()
  assert not any("left_behind" in r.diagnosis.extra for (lab, _), r in results.items() if lab == "needs memory")


def test_a_slow_first_call_is_named_as_the_first_call_with_the_options_that_change_the_limit(tmp_path):
  _, results = checked("SLOW_START", tmp_path, "--jobs", "1", "--timeout", "4")
  assert_fails(results, "warms up for 30 s", "first call", "--timeout", "Options(timeout=", "--surrogate-timeout")
  assert_passes(results, "correct after a slow start")


def test_long_labels_stay_whole_in_json_and_junit_and_unique_on_the_terminal(tmp_path):
  import xml.etree.ElementTree as ET

  out, junit = tmp_path / "run.json", tmp_path / "run.xml"
  proc = cli("--target", "tests.hostile:LONG_LABELS", *FAST, "--json", str(out), "--junit", str(junit), "--jobs", "1")
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  wanted = {"x" * 4999 + "a", "x" * 4999 + "b", *(f"short {k}" for k in range(6))}
  assert {r.label for r in Run.from_json(json.loads(out.read_text())).results} == wanted
  cases = ET.parse(junit).getroot().findall("testcase")
  assert len(cases) == 16 and {c.get("classname") for c in cases} == wanted
  assert "8 candidates" in proc.stdout
  rows = [line for line in proc.stdout.splitlines() if line.startswith("xxxx")]
  assert len(rows) == 2 and rows[0].split()[0] != rows[1].split()[0] and max(map(len, rows)) < 300


def test_a_record_crosses_the_parent_as_bytes_and_a_wrong_size_is_refused():
  """The worker's record goes to the judge as the bytes it sent, unread by the parent (in pieces or whole); a
  record whose entries are not the size it announced, or that announces no size, breaks the protocol."""
  import contextlib
  import socket

  from verification.core.tape import Tape
  from verification.engine.protocol import Channel, ProtocolError

  entries = [["key:1", ["ok", ["i", 3]]]]
  a, b = socket.socketpair()
  worker, parent = Channel(a, "t"), Channel(b, "t")
  worker.put_record("c", "forward", entries, None, 0.5)
  worker.put("start", "c", "edge")
  got = parent.messages()
  assert got[0][:3] == ["record", "c", "forward"] and isinstance(got[0][3], bytes) and got[0][4:] == [None, 0.5]
  assert got[1] == ["start", "c", "edge"]
  tape = Tape("replay")
  tape.add(got[0][3])  # the judge reads the bytes
  assert tape._held == {"key:1": [["ok", ["i", 3]]]}
  # the entries split across two reads: the record waits for them
  body = b'[["key:2", ["ok", ["i", 4]]]]'
  worker.put("record", "c", "edge", len(body), None, 0.1)
  a.sendall(len(body).to_bytes(8, "big") + body[:5])
  assert parent.messages() == []
  a.sendall(body[5:])
  assert parent.messages()[0][3] == body
  # a large record's entries, read into place as they come, then a message behind them
  large = bytes(range(256)) * (3 << 12) + b"end"
  worker.put("record", "c", "edge", len(large), None, 0.1)
  a.sendall(len(large).to_bytes(8, "big") + large[:100])
  assert parent.messages() == [] and parent.body is not None
  for k in range(100, len(large), 60_000):  # each piece fits the socket's buffer
    a.sendall(large[k:k + 60_000])
    got = parent.messages()
  worker.put("start", "c", "curves")
  got += parent.messages()
  assert [m[:3] for m in got] == [["record", "c", "edge"], ["start", "c", "curves"]] and got[0][3] == large
  for wrong in (len(body) + 1, "many"):
    worker.put("record", "c", "edge", wrong, None, 0.1)
    a.sendall(len(body).to_bytes(8, "big") + body)
    with pytest.raises(ProtocolError, match="record"):
      Channel(b, "t").messages()  # a fresh reader each time: what is left of a refused message is not read on
    with contextlib.suppress(BlockingIOError):
      b.recv(1 << 16, socket.MSG_DONTWAIT)
  with pytest.raises(Exception, match="does not start with the length"):
    Tape("replay").add(b"[not json")
  with pytest.raises(Exception, match="not JSON"):
    Tape("replay").add(len(b"[not json").to_bytes(8, "big") + b"[not json")
