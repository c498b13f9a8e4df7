"""The torch forms of the checks on planted torch candidates (tests/planted_torch.py).

A torch candidate is judged under the check names of the JAX form: autodiff (reverse mode),
forward_mode, second_order and transforms each have a torch form. Each planted defect is caught by its
check with the status and capability meant for it; the correct twin of each mechanism
(``autograd.Function`` in both styles, the detach trick, an ``nn.Module``, a ``torch.library`` custom
op, piecewise-constant g) passes, or is ``unsupported`` exactly where its mechanism lacks a capability,
with the fix for that mechanism. A wrong ``surrogate_grad`` is caught for torch, JAX and NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

from verification import checks
from verification.checks import _torch as torch_checks
from verification.core.candidate import Candidate
from verification.core.evaluate import Evaluator
from verification.results import Status

torch = pytest.importorskip("torch", reason="torch is not installed (only the torch checks need it)")
planted = pytest.importorskip("tests.planted_torch")

WIRING = ("autodiff", "forward_mode", "second_order", "transforms")


def _judge(c: Candidate, names=WIRING, dtypes=(np.float64,)):
  ctx = checks.Context(candidate=c, reference=c.reference(), evaluator=Evaluator(c),
                       dtypes=tuple(map(np.dtype, dtypes)))
  return {n: checks.CHECKS[n](ctx) for n in names}


def _assert_expected(label, outs):
  want = planted.EXPECTED.get(label, {})
  for name, out in outs.items():
    status, capability, text = want.get(name, ("pass", None, None))
    d = out.diagnosis
    assert out.status.value == status, f"{label} / {name}: {d.text()}"
    if capability:
      assert d.capability == capability, f"{label} / {name}: {d.text()}"
    if text:
      assert text in f"{d.message} {d.fix or ''} " + " ".join(f["message"] for f in d.extra.get("all_failures", ())), \
          f"{label} / {name}: {d.text()}"


@pytest.fixture(autouse=True)
def _no_compile(monkeypatch):
  monkeypatch.setenv("SURROGATE_TORCH_COMPILE", "0")  # compiled once below, not per candidate


@pytest.mark.parametrize("c", planted.CORRECT, ids=lambda c: c.label)
def test_correct_twin_of_each_mechanism_passes(c):
  assert c.backend == "torch"
  _assert_expected(c.label, _judge(c))


@pytest.mark.parametrize("c", planted.DEFECTIVE, ids=lambda c: c.label)
def test_planted_torch_defect_is_caught_by_its_check(c):
  outs = _judge(c)
  assert any(o.status is not Status.PASS for o in outs.values())
  _assert_expected(c.label, outs)


def test_custom_op_fixes_name_the_custom_op_registrations():
  (c,) = [c for c in planted.CORRECT if "custom_op" in c.label]
  outs = _judge(c, ("forward_mode", "transforms"))
  assert "planted_surrogates::sigmoid_spike" in outs["forward_mode"].diagnosis.message
  assert "silently" in outs["forward_mode"].diagnosis.message and "jvp" in outs["forward_mode"].diagnosis.fix
  assert "setup_context" not in outs["transforms"].diagnosis.fix


def test_second_order_of_a_detached_sigmoid_backward_is_unsupported_but_of_a_boxcar_passes():
  boxcar = next(c for c in planted.CORRECT if c.name == "Boxcar")
  detached = next(c for c in planted.DEFECTIVE if "detaches" in c.label)
  assert _judge(boxcar, ("second_order",))["second_order"].status is Status.PASS
  assert _judge(detached, ("second_order",))["second_order"].status is Status.UNSUPPORTED


def test_torch_candidate_checks_report_under_the_jax_names_not_skip():
  c = planted.CORRECT[0]
  outs = _judge(c, tuple(checks.CHECKS))
  assert not [n for n in WIRING if outs[n].status is Status.SKIP]
  failing = {n: o.diagnosis.text() for n, o in outs.items() if o.status.failing}
  assert not failing


def test_torch_surrogate_grad_is_judged_in_every_dtype_bfloat16_included():
  c = next(c for c in planted.CORRECT if c.name == "SpikeRateEscape")
  out = _judge(c, ("low_precision", "edge"), dtypes=(np.float64, np.float32, "bfloat16"))
  assert out["low_precision"].status is Status.PASS, out["low_precision"].diagnosis.text()
  assert "surrogate_grad" in out["low_precision"].diagnosis.message
  assert out["edge"].status is Status.PASS, out["edge"].diagnosis.text()


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_a_wrong_surrogate_grad_is_caught_for_numpy_and_jax(backend):
  if backend == "numpy":
    right, wrong = planted.NUMPY_CORRECT, planted.NUMPY_WRONG_SG
  else:
    import jax.numpy as jnp

    from tests.planted import spike_with

    g = lambda x: 25.0 * jnp.exp(-jnp.abs(x - 1.0))
    make = lambda sg, label: Candidate(name="SpikeRateEscape", params={"beta": 1.0, "slope": 25.0}, fn=spike_with(g),
                                       surrogate_grad=sg, label=label)
    right, wrong = make(g, "right"), make(lambda x: g(x) / 3, "g/3")
  assert right.backend == wrong.backend == backend
  ok, bad = _judge(right, ("autodiff",))["autodiff"], _judge(wrong, ("autodiff",))["autodiff"]
  assert ok.status is Status.PASS, ok.diagnosis.text()
  assert bad.status is Status.FAIL and "surrogate_grad" in bad.diagnosis.message
  assert bad.diagnosis.got == pytest.approx(3 * bad.diagnosis.expected, rel=1e-9)


def test_compiled_equals_eager_and_a_jvp_excludes_fullgraph(monkeypatch):
  monkeypatch.setenv("SURROGATE_TORCH_COMPILE", "aot_eager")
  no_jvp = next(c for c in planted.CORRECT if c.label == "the detach trick")
  assert _judge(no_jvp, ("transforms",))["transforms"].status is Status.PASS
  out = _judge(planted.CORRECT[0], ("transforms",))["transforms"]
  assert out.status is Status.UNSUPPORTED and out.diagnosis.capability == "jit", out.diagnosis.text()


def test_backend_is_inferred_from_a_torch_fn():
  assert Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=planted.detach_trick).backend == "torch"
  assert Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=planted.Spike()).backend == "torch"
  assert Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=planted.custom_spike).backend == "torch"
  import surrogates

  assert Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=surrogates.Sigmoid(alpha=4.0)).backend == "jax"


def test_compile_can_be_turned_off(monkeypatch):
  monkeypatch.setenv("SURROGATE_TORCH_COMPILE", "0")
  assert torch_checks.compile_mode() == ""
  monkeypatch.setenv("SURROGATE_TORCH_COMPILE", "inductor")
  assert torch_checks.compile_mode() == "inductor"
  monkeypatch.delenv("SURROGATE_TORCH_COMPILE")
  assert torch_checks.compile_mode() == "aot_eager"
