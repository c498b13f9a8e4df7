"""The verdicts are decided where no candidate code runs (verification/core/tape.py, verification/engine/judge.py).

The record/replay is faithful: for every planted JAX candidate (correct, defective, conventional) each check
judged from the worker's record gives the result judged next to the candidate, message included. The
record is data: -0.0, NaN payloads, bfloat16 and the kinds of exceptions survive it; an output the judge
asks for that the record lacks, or a record that cannot be read, is an ``error``; the judge's stand-in
candidate has no code to run.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from tests import planted
from verification.checks import CHECKS
from verification.core import tape as T
from verification.core.candidate import judged_fields, stand_in
from verification.core.evaluate import CandidateError, describe
from verification.engine.judge import Judging, replayed
from verification.engine.platform import environment
from verification.results import Status

OPTS = {"dtypes": ("float32", "float64"), "is_reference": False, "hypothesis_examples": 3}
ENV = {"dtypes": ["float16", "bfloat16", "float32", "float64"], "platform": "cpu"}


def _planted():
  return [*planted.CORRECT, *planted.DEFECTIVE, *planted.CONVENTIONS, *planted.PARAMETER_DEFECTS,
          *planted.PARAMETER_CORRECT]


@pytest.mark.parametrize("candidate", _planted(), ids=lambda c: c.label[:60])
def test_a_check_judged_from_the_record_gives_the_result_judged_next_to_the_candidate(candidate):
  direct, judged = replayed(candidate, tuple(CHECKS), OPTS, ENV)
  for d, j in zip(direct, judged, strict=True):
    assert (j.check, j.status, j.message) == (d.check, d.status, d.message), (d.check, d.message, j.message)


def test_the_record_is_data_that_survives_its_bytes():
  payload = np.frombuffer(np.uint64(0x7FF8_0000_0000_0ABC).tobytes(), np.float64)
  values = {"zeros": np.array([0.0, -0.0]), "nan": payload,
            "bf16": np.array([1.5, -2.0], ml_dtypes.bfloat16), "scalar": np.float32(3.5), "float": -0.0,
            "nested": ({"a": [1, None, True, "s"]},), "not": NotImplementedError("no rule"),
            "mine": CandidateError("g raised"), "abort": KeyboardInterrupt("stop")}
  back = T.decode(T.loads(T.dumps([T.encode(values)]))[0])
  assert np.signbit(back["zeros"]).tolist() == [False, True]
  assert back["nan"].tobytes() == values["nan"].tobytes()
  assert back["bf16"].dtype == ml_dtypes.bfloat16 and back["bf16"].tolist() == [1.5, -2.0]
  assert back["scalar"] == np.float32(3.5) and back["scalar"].dtype == np.float32
  assert math.copysign(1, back["float"]) == -1 and back["nested"] == ({"a": [1, None, True, "s"]},)
  assert isinstance(back["not"], NotImplementedError) and type(back["not"]).__name__ == "NotImplementedError"
  assert isinstance(back["mine"], CandidateError) and describe(back["mine"]) == "g raised"
  assert not isinstance(back["abort"], Exception) and isinstance(back["abort"], BaseException)
  # what is not an array of numbers becomes an exception value, the rest is kept
  odd = T.decode(T.encode({"ok": np.ones(2), "odd": np.array([object()])}))
  assert odd["ok"].tolist() == [1.0, 1.0] and isinstance(odd["odd"], CandidateError)


def test_a_record_whose_bytes_do_not_hold_what_its_entries_say_is_refused():
  """The arrays' bytes follow the JSON, referred to by offset and length: a reference past the end, one that is
  not one, a length that is not the array's, or an array given as text is a record that cannot be read."""
  body = T.dumps([["k:1", ["ok", T.encode(np.arange(4.0))]]])
  assert T.decode(T.loads(body)[0][1][1]).tolist() == [0.0, 1.0, 2.0, 3.0]
  head = int.from_bytes(body[:8], "big")
  text = body[8:8 + head].decode()
  assert '{"b":[0,32]}' in text and len(body) == 8 + head + 32  # the 32 bytes, not base64 of them

  def forged(new: str, data: bytes = body[8 + head:]) -> bytes:
    return len(new).to_bytes(8, "big") + new.encode() + data

  for bad in ('{"b":[0,33]}', '{"b":[-8,32]}', '{"b":[0,32],"c":1}', '{"b":"0"}', '{"x":[0,32]}'):
    with pytest.raises(T.TapeError, match="reference"):
      T.loads(forged(text.replace('{"b":[0,32]}', bad)))
  for bad in ('{"b":[0,24]}', '"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="'):  # a size that is not the shape's; text
    entries = T.loads(forged(text.replace('{"b":[0,32]}', bad)))
    with pytest.raises(T.TapeError):
      T.decode(entries[0][1][1])
  with pytest.raises(T.TapeError, match="length"):
    T.loads((1 << 40).to_bytes(8, "big") + body[8:])


def test_keys_tell_apart_what_values_do_not():
  assert T.key("f", (np.array([0.0]),), {}) != T.key("f", (np.array([-0.0]),), {})
  assert T.key("f", (np.array([1.0], np.float32),), {}) != T.key("f", (np.array([1.0], np.float64),), {})
  assert T.key("f", (np.ones(4),), {}) != T.key("f", (np.ones((2, 2)),), {})
  assert T.key("f", (np.ones(4),), {}) == T.key("f", (np.ones(4),), {})


def _sigmoid():
  return planted.CORRECT[0]


def test_an_output_the_record_lacks_is_an_error_naming_the_call():
  judging = Judging(judged_fields(_sigmoid()), OPTS, ENV)
  result = judging.judge("autodiff", [])
  assert result.status is Status.ERROR and "holds no output of the candidate" in result.message


def test_a_record_of_outputs_at_other_inputs_is_an_error_and_an_unreadable_one_too():
  c = _sigmoid()
  tape = T.Tape("record")
  from verification.checks import context, run_check

  ctx = context(c, OPTS, tape)
  ctx.seed = 7  # the worker's inputs differ from those the judge chooses (seed 0)
  run_check(c, ctx, "autodiff")
  entries = tape.take()
  assert entries
  assert Judging(judged_fields(c), OPTS, ENV).judge("autodiff", entries).status is Status.ERROR
  for bad in ("not a list", [["k", ["ok"]]], [[entries[0][0], ["ok", ["a", "object", [1], "AA=="]]]]):
    result = Judging(judged_fields(c), OPTS, ENV).judge("autodiff", bad)
    assert result.status is Status.ERROR, result.message


def test_the_judges_stand_in_has_no_code_to_run():
  c = stand_in(judged_fields(_sigmoid()))
  with pytest.raises(RuntimeError, match="called a candidate's code"):
    c.fn(jnp.ones(2))
  with pytest.raises(RuntimeError, match="called a candidate's code"):
    c.surrogate_grad(np.ones(2))


def _nothing(*args, **kwargs):
  return None


def _no_failure(*args, **kwargs):
  return {"failing_points": 0, "points": 0, "worst_input": None, "expected": None, "got": None, "tolerance": None,
          "error": None}


def test_patching_the_judging_code_during_the_record_changes_nothing_judged():
  """The comparison helpers rewritten in place while the worker's side runs (so its own verdict passes):
  the judge's verdict is still the defect."""
  from verification.checks import _context

  wrong = next(c for c in planted.DEFECTIVE if c.label == "missing factor alpha in g")
  saved = _context.Comparisons.compare.__code__, _context.worst.__code__
  from verification.checks import context, run_check

  tape = T.Tape("record")
  ctx = context(wrong, OPTS, tape)
  _context.Comparisons.compare.__code__ = _nothing.__code__
  _context.worst.__code__ = _no_failure.__code__
  try:
    record_side = run_check(wrong, ctx, "derivative")
  finally:
    _context.Comparisons.compare.__code__, _context.worst.__code__ = saved
  judged = Judging(judged_fields(wrong), OPTS, ENV).judge("derivative", tape.take())
  assert record_side.status is Status.PASS, record_side.message  # the patch fools a verdict made beside it
  assert judged.status is Status.FAIL, judged.message


def test_the_environment_is_what_the_judge_compares_on():
  env = environment()
  assert env["platform"] == jax.default_backend() and "float64" in env["dtypes"]


def test_an_unregistered_declaration_is_judged_in_its_worker_and_says_so_and_a_registered_one_by_the_judge():
  import surrogates
  from examples.byo_circ import Circ
  from verification.engine.runner import Options, run

  got = run([{"surrogate": Circ(alpha=0.5)}, {"surrogate": surrogates.Sigmoid(alpha=2.0), "label": "declared Sigmoid"}],
            Options(checks=("forward", "quadrature"), dtypes=("float64",), jobs=1))
  by_label = {}
  for r in got.results:
    by_label.setdefault(r.label, []).append(r)
  assert {r.status for rs in by_label.values() for r in rs} == {Status.PASS}
  circ = by_label["Circ(alpha=0.5)"]
  assert all("declares its own surrogate" in r.diagnosis.extra.get("judged_in", "") for r in circ)
  assert not any("judged_in" in r.diagnosis.extra for r in by_label["declared Sigmoid"])
  assert got.provenance["judges_started"] == 1


def _numpy_sigmoid(label, sleepy=False, stamp=False):
  """A NumPy candidate (its own forward and vjp); ``sleepy``: its first vjp call of the checks (the worker's
  sanity test makes the very first) sleeps 6 s, marks a file, and sleeps 2 s more; ``stamp``: its first call
  writes the time beside that file."""
  import os
  import pathlib
  import time

  def forward(x):
    stamped = pathlib.Path(os.environ["JUDGE_TEST_FLAG"] + ".stamp")
    if stamp and not stamped.exists():
      stamped.write_text(repr(time.time()))
    return (np.asarray(x) >= 0).astype(np.asarray(x).dtype)

  calls = []

  def vjp(x, ct):
    calls.append(1)
    if sleepy and len(calls) == 2:
      time.sleep(6)  # the judge has started and judged the forward check by now
      pathlib.Path(os.environ["JUDGE_TEST_FLAG"]).write_text("now")
      time.sleep(2)
    s = 1 / (1 + np.exp(-4 * np.asarray(x, np.float64)))
    return (4 * s * (1 - s) * ct).astype(np.asarray(x).dtype)

  from verification.core.candidate import Candidate

  return Candidate(name="Sigmoid", params={"alpha": 4.0}, forward=forward, vjp=vjp, label=label)


def _on_the_flag(flag, signal_number):
  """Sends the judge processes ``signal_number`` once ``flag`` exists (in a thread); the pids it signalled."""
  import threading
  import time

  import psutil

  done = []

  def act():
    deadline = time.monotonic() + 120
    while not flag.exists() and time.monotonic() < deadline:
      time.sleep(0.05)
    for p in psutil.Process().children(recursive=True):
      if "verification.engine.judge" in " ".join(p.cmdline()):
        p.send_signal(signal_number)
        done.append(p.pid)

  threading.Thread(target=act, daemon=True).start()
  return done


@pytest.mark.parametrize("event", ["ends while idle", "stops while judging"])
def test_a_judge_that_ends_is_replaced_and_one_that_stops_gives_errors_for_what_it_was_judging(event, tmp_path,
                                                                                                monkeypatch):
  """The judge process killed while the worker computes the second check: a fresh one takes over with the
  records so far, and nothing is lost. The judge stopped (SIGSTOP) while the worker computes it: the record
  waits past the time limit, that check is an error naming the judge, and the next candidate (whose records
  the worker, free again, queued behind it on the stopped judge) is judged afresh by a fresh judge, not
  blamed."""
  import pathlib
  import signal

  from verification.engine.runner import Options, run

  flag = tmp_path / "flag"
  monkeypatch.setenv("JUDGE_TEST_FLAG", str(flag))
  signalled = _on_the_flag(flag, signal.SIGKILL if event == "ends while idle" else signal.SIGSTOP)
  got = run([_numpy_sigmoid("sleepy", sleepy=True), _numpy_sigmoid("next"), _numpy_sigmoid("after", stamp=True)],
            Options(checks=("forward", "autodiff"), dtypes=("float64",), jobs=1, timeout=12))
  results = {(r.label, r.check): r for r in got.results}
  assert signalled and got.provenance["judges_started"] == 2
  assert {results[(label, c)].status for label in ("next", "after") for c in ("forward", "autodiff")} == {Status.PASS}
  if event == "stops while judging":  # the worker ran one candidate ahead of the stopped judge, not two
    started = float(pathlib.Path(str(flag) + ".stamp").read_text())
    assert started - flag.stat().st_mtime > 8, "the third candidate began while the judge still owed the first"
  assert results[("sleepy", "forward")].status in (Status.PASS, Status.ERROR)
  second = results[("sleepy", "autodiff")]
  if event == "ends while idle":
    assert second.status is Status.PASS, second.message
  else:
    assert second.status is Status.ERROR and "the judge process failed while judging this check" in second.message
    assert "did not judge within the time limit of 12 s" in second.message


def test_a_judge_taking_over_with_the_earlier_records_judges_as_the_first_would():
  """autodiff replays the transformed program's outputs recorded during the forward check."""
  from verification.checks import context, run_check

  c = _sigmoid()
  tape = T.Tape("record")
  ctx = context(c, OPTS, tape)
  run_check(c, ctx, "forward")
  first = tape.take()
  run_check(c, ctx, "autodiff")
  second = tape.take()
  alone = Judging(judged_fields(c), OPTS, ENV).judge("autodiff", second)
  assert alone.status is Status.ERROR and "holds no output" in alone.message  # needs the forward's record
  taking_over = Judging(judged_fields(c), OPTS, ENV)
  taking_over.tape.add(first)
  assert taking_over.judge("autodiff", second).status is Status.PASS


_DRAWS = """
import hashlib, sys
import numpy as np
if sys.argv[1:]:
  __import__(sys.argv[1])
from verification.core import numerics
d = numerics.hypothesis_draws("float32", 5, 0) + numerics.hypothesis_draws("float64", 20, 0)
print(hashlib.sha256(b"".join(v.tobytes() for v, _ in d)).hexdigest())
"""


def test_the_hypothesis_draws_do_not_depend_on_the_code_a_process_imported():
  """The worker imports the target, the judge does not; both must draw the edge check's inputs alike
  (hypothesis mixes numbers from the local modules imported so far into its draws unless told not to)."""
  import subprocess
  import sys

  digests = {subprocess.run([sys.executable, "-c", _DRAWS, *extra], capture_output=True, text=True, check=True,
                            timeout=300).stdout for extra in ([], ["tests.planted"], ["tests.hostile"])}
  assert len(digests) == 1, digests


def test_a_platform_without_float64_is_a_skip_the_judge_gives_for_every_check():
  judging = Judging(judged_fields(_sigmoid()), OPTS, {"dtypes": ["bfloat16", "float32"], "platform": "tpu"})
  for check in CHECKS:
    result = judging.judge(check, [])
    assert result.status is Status.SKIP and "has no float64" in result.message, (check, result.message)
