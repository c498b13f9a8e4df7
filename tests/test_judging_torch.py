"""The torch forms of the checks judged from the worker's record (verification.core.tape).

Each planted torch candidate (tests/planted_torch.py) is checked next to its code, recording, and judged
again from that record alone (:func:`verification.engine.judge.replayed`): the two verdicts agree, and
are the ones the planted candidates document. A candidate that patches the judging code in its own
process changes only its own process's verdict: the judge, which never runs its code, still fails its
wrong gradient.
"""

from __future__ import annotations

import pytest

from verification.engine.judge import replayed
from verification.engine.platform import environment
from verification.results import Status

torch = pytest.importorskip("torch", reason="torch is not installed (only the torch checks need it)")
planted = pytest.importorskip("tests.planted_torch")

from verification.checks import _torch as torch_checks  # noqa: E402 (imports torch when called only)
from verification.core.candidate import Candidate  # noqa: E402

WIRING = ("autodiff", "forward_mode", "second_order", "transforms")
CHECKS = ("forward", *WIRING, "derivative")
OPTS = {"dtypes": ("float32", "float64"), "is_reference": False, "hypothesis_examples": 5}
CANDIDATES = [*planted.CORRECT, *planted.DEFECTIVE, planted.NUMPY_CORRECT, planted.NUMPY_WRONG_SG]
#: The planted torch candidates whose forward changes the dtype (the forward check fails them).
FORWARD_DTYPE_DEFECTS = ("forward returns float32", "detach trick returns float32")


@pytest.fixture(scope="module")
def env():
  return environment()


@pytest.fixture(autouse=True)
def _no_compile(monkeypatch):
  monkeypatch.setenv("SURROGATE_TORCH_COMPILE", "0")  # compiled in one test below, not per candidate


def _expected(c: Candidate, check: str) -> tuple[str, str | None, str | None]:
  """(status, capability, text in the message or fix) as tests/planted_torch.py and tests/test_torch_checks.py
  document them; the forward and derivative checks as the NumPy bridge judges a torch candidate."""
  if check == "derivative":
    return "skip", None, "no surrogate_fun"
  if check == "forward":
    return ("fail", None, "float32") if c.label in FORWARD_DTYPE_DEFECTS else ("pass", None, None)
  if c.backend == "numpy":  # its own forward and vjp: reverse mode only
    if check != "autodiff":
      return "skip", None, "needs JAX transforms"
    return ("fail", None, "surrogate_grad") if c is planted.NUMPY_WRONG_SG else ("pass", None, None)
  return planted.EXPECTED.get(c.label, {}).get(check, ("pass", None, None))


def _assert_agree(direct, judged):
  assert [r.check for r in direct] == [r.check for r in judged]
  for d, j in zip(direct, judged, strict=True):
    assert (j.status, j.message) == (d.status, d.message), f"{d.label} / {d.check}: judged {j.diagnosis.text()} " \
                                                           f"where the worker saw {d.diagnosis.text()}"
    if d.check in WIRING:  # the torch forms: the whole diagnosis, the worst point and all failures with it
      assert j.detail == d.detail, f"{d.label} / {d.check}"


@pytest.mark.parametrize("c", CANDIDATES, ids=lambda c: c.label)
def test_the_judged_verdict_is_the_direct_one_and_the_planted_one(c, env):
  direct, judged = replayed(c, CHECKS, OPTS, env)
  _assert_agree(direct, judged)
  for r in judged:
    status, capability, text = _expected(c, r.check)
    d = r.diagnosis
    assert r.status.value == status, f"{c.label} / {r.check}: {d.text()}"
    if capability:
      assert d.capability == capability, f"{c.label} / {r.check}: {d.text()}"
    if text:
      assert text in f"{d.message} {d.fix or ''} " + " ".join(f["message"] for f in d.extra.get("all_failures", ())), \
          f"{c.label} / {r.check}: {d.text()}"


def test_torch_compile_is_judged_from_the_record(monkeypatch, env):
  monkeypatch.setenv("SURROGATE_TORCH_COMPILE", "aot_eager")
  no_jvp = next(c for c in planted.CORRECT if c.label == "the detach trick")
  for c, status in ((no_jvp, Status.PASS), (planted.CORRECT[0], Status.UNSUPPORTED)):
    direct, judged = replayed(c, ("transforms",), OPTS, env)
    _assert_agree(direct, judged)
    assert judged[0].status is status, judged[0].diagnosis.text()
  assert "torch.compile" in judged[0].message and judged[0].diagnosis.capability == "jit"


# -------------------------------------------------------------------------------------------------
# The boundary: what the candidate does to its own process
# -------------------------------------------------------------------------------------------------


def _cheating_spike(x):
  """The detach trick with a third of the sigmoid's gradient (ct·g/3), which also turns the torch forms'
  comparison into a no-op in the process it runs in."""
  torch_checks.Judge.compare = lambda self, *args, **kwargs: None
  s = torch.sigmoid(planted.ALPHA * x)
  return planted.heaviside(x) + (s - s.detach()) / 3


@pytest.fixture
def clean_judge(monkeypatch):
  """The judge as its own process sees it: the candidate's patch never reaches it. ``replayed`` judges in
  the test's process, so the judging code is put back before each check is judged; and after the test."""
  from verification.engine import judge

  original = torch_checks.Judge.compare
  monkeypatch.setattr(torch_checks.Judge, "compare", original)  # restored at teardown, whatever was set since
  judge_check = judge.Judging.judge
  patched: dict[str, bool] = {}  # check -> whether the candidate had patched the judging when it was judged

  def judged_apart(self, check, *args, **kwargs):
    patched[check] = torch_checks.Judge.compare is not original
    torch_checks.Judge.compare = original
    return judge_check(self, check, *args, **kwargs)

  monkeypatch.setattr(judge.Judging, "judge", judged_apart)
  yield patched
  torch_checks.Judge.compare = original


def test_a_candidate_that_patches_the_judging_in_its_process_still_fails_where_it_is_judged(clean_judge, env):
  c = Candidate(name="Sigmoid", params={"alpha": planted.ALPHA}, fn=_cheating_spike, surrogate_grad=planted.sigmoid_g,
                label="patches Judge.compare, gradient g/3")
  assert c.backend == "torch"
  direct, judged = replayed(c, ("forward", "autodiff"), OPTS, env)
  assert clean_judge["autodiff"], "the candidate's patch did not happen: the test shows nothing"
  by_check = {r.check: (d, r) for d, r in zip(direct, judged, strict=True)}
  worker, judge = by_check["autodiff"]
  assert worker.status is Status.PASS, worker.diagnosis.text()  # its own process: the patch decided
  assert judge.status is Status.FAIL, judge.diagnosis.text()
  assert "not its surrogate_grad" in judge.message
  assert judge.diagnosis.got == pytest.approx(judge.diagnosis.expected / 3, rel=1e-9)


def test_the_cotangent_is_rounded_as_autograd_rounds_it_without_torch():
  """The judge rounds the cotangent to the forward's output dtype in NumPy, bit for bit as torch's cast does,
  the 16-bit floats included, which torch reaches through float32 (a value just above a float16 halfway point
  rounds up directly but to even through float32); other dtypes are torch's own."""
  import numpy as np

  rng = np.random.default_rng(3)
  half_up = 1 + 2.0**-11 + 2.0**-30  # float16: 1 + 2^-10 directly, 1.0 through float32
  bf_up = 1 + 2.0**-8 + 2.0**-30  # bfloat16 likewise
  ct = np.concatenate([rng.normal(size=4096) * 10.0 ** rng.integers(-8, 8, 4096), [half_up, -half_up, bf_up, -bf_up,
                       0.0, -0.0, 1e-45, 7e-46, 3e38, 7e4, 65520.0, np.inf, -np.inf, np.nan]])
  for name in ("float16", "bfloat16", "float32", "float64", "int32", "bool", "complex64"):
    want = torch.from_numpy(ct.copy()).to(getattr(torch, name))
    want = want.to(torch.float64).numpy() if want.is_floating_point() else want.numpy()
    got = torch_checks.rounded_as_autograd(ct, f"torch.{name}")
    assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=got.dtype.kind in "fc"), name
  assert torch_checks.rounded_as_autograd(np.array([half_up]), "torch.float16")[0] == 1.0 != np.float16(half_up)
  assert torch_checks.rounded_as_autograd(np.array([bf_up]), "torch.bfloat16")[0] == 1.0
  assert torch_checks.rounded_as_autograd(np.array([0.1]), "float32")[0] == float(np.float32(0.1))  # a NumPy dtype


_RECORDS = """
import pickle, sys
import jax
jax.config.update("jax_enable_x64", True)
from verification import checks, targets
from verification.core.candidate import judged_fields
from verification.core.tape import Tape, dumps
from verification.engine.platform import environment
(c,) = targets.load_candidates("tests.planted_torch:CORRECT", [sys.argv[2]])
opts = {"dtypes": ("float32", "float64"), "is_reference": False, "hypothesis_examples": 3}
tape, recorded = Tape("record"), {}
ctx = checks.context(c, opts, tape)
for check in checks.NAMES:
  r = checks.run_check(c, ctx, check)
  recorded[check] = ((r.status.value, r.message), dumps(tape.take()))
pickle.dump((judged_fields(c), opts, environment(), recorded), open(sys.argv[1], "wb"))
"""

_JUDGED = """
import pickle, sys
import jax
jax.config.update("jax_enable_x64", True)
from verification.core.tape import loads
from verification.engine.judge import Judging
fields, opts, env, recorded = pickle.load(open(sys.argv[1], "rb"))
judging = Judging(fields, opts, env)
for check, (status, entries) in recorded.items():
  r = judging.judge(check, loads(entries))
  got = (r.status.value, r.message)
  assert got == status, (check, got, status)
print("torch" in sys.modules)
"""


@pytest.mark.parametrize("label", ["autograd.Function with setup_context, jvp and a vmap rule", "the detach trick"])
def test_a_judge_of_a_torch_candidate_imports_no_torch(label, tmp_path):
  """The judge's own computations on a torch candidate's record (the cotangent rounded as autograd rounds it, the
  comparisons) are NumPy's: its process never imports torch (1.5 s of CPU a judge), and its verdicts are the
  worker's, torch.compile's check included."""
  import subprocess
  import sys

  from tests._subprocess import environment as subprocess_environment

  record = tmp_path / "record.pkl"
  env = {k: v for k, v in subprocess_environment().items() if k != "SURROGATE_TORCH_COMPILE"}
  for script, args in ((_RECORDS, [str(record), label]), (_JUDGED, [str(record)])):
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.strip().splitlines()[-1] == "False", proc.stdout
