"""The torch form of the autodiff check (verification.checks.autodiff.check_torch) on planted torch candidates.

Each planted defect is caught with the status and capability meant for it, and the correct twin
(an ``autograd.Function`` with ``setup_context``, ``jvp``, a vmap rule and a differentiable
backward) passes. All are Sigmoid(alpha=4): g = α·σ(αx)(1 - σ(αx)).
"""

from __future__ import annotations

import numpy as np
import pytest

import surrogates
from verification import checks
from verification.checks import _torch as torch_checks
from verification.checks import autodiff
from verification.core.candidate import Candidate
from verification.results import Status
from verification.targets import _torch

torch = pytest.importorskip("torch", reason="torch is not installed (only the torch checks need it)")

ALPHA = 4.0


def _g(x):
  s = torch.sigmoid(ALPHA * x)
  return ALPHA * s * (1 - s)


class CorrectNoJvp(torch.autograd.Function):
  """H forward in the input's dtype, g backward with differentiable ops, vmap by rule; no jvp (what
  torch.compile(fullgraph=True) can trace in torch 2.13)."""

  generate_vmap_rule = True

  @staticmethod
  def forward(x):
    return (x >= 0).to(x.dtype)

  @staticmethod
  def setup_context(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])
    ctx.save_for_forward(inputs[0])

  @staticmethod
  def backward(ctx, ct):
    (x,) = ctx.saved_tensors
    return ct * _g(x)


class Correct(CorrectNoJvp):
  """The correct twin: the same with a jvp (forward mode)."""

  @staticmethod
  def jvp(ctx, t):
    (x,) = ctx.saved_tensors
    return t * _g(x)


class Float32Out(Correct):
  """Returns float32 spikes whatever the input's dtype (as snntorch and sinabs do)."""

  @staticmethod
  def forward(x):
    return (x >= 0).float()


class InPlaceCotangent(Correct):
  """Writes the result into the cotangent."""

  @staticmethod
  def backward(ctx, ct):
    (x,) = ctx.saved_tensors
    return ct.mul_(_g(x))


class OldStyle(torch.autograd.Function):
  """forward(ctx, x) with no setup_context: torch.func cannot transform it; no jvp either."""

  @staticmethod
  def forward(ctx, x):
    ctx.save_for_backward(x)
    return (x >= 0).to(x.dtype)

  @staticmethod
  def backward(ctx, ct):
    (x,) = ctx.saved_tensors
    return ct * _g(x)


class _WrongDerivative(torch.autograd.Function):
  """Value g(x), but its own derivative doubled: a wrong second order."""

  @staticmethod
  def forward(x):
    return _g(x)

  @staticmethod
  def setup_context(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])

  @staticmethod
  def backward(ctx, ct):
    (x,) = ctx.saved_tensors
    s = torch.sigmoid(ALPHA * x)
    return ct * 2 * ALPHA**2 * s * (1 - s) * (1 - 2 * s)


class WrongSecond(Correct):
  @staticmethod
  def backward(ctx, ct):
    (x,) = ctx.saved_tensors
    return ct * _WrongDerivative.apply(x)


class Detached(Correct):
  """g of the detached input: first order right, the gradient not differentiable."""

  @staticmethod
  def backward(ctx, ct):
    (x,) = ctx.saved_tensors
    return (ct * _g(x.detach())).detach()


def _judge(fn, monkeypatch, compile_mode: str = "0"):
  monkeypatch.setenv("SURROGATE_TORCH_COMPILE", compile_mode)
  ref = surrogates.Sigmoid(alpha=ALPHA)
  cand = Candidate(name="Sigmoid", params={"alpha": ALPHA}, **_torch.candidate_fns(fn))
  ctx = checks.Context(candidate=cand, reference=ref, evaluator=None, dtypes=(np.dtype(np.float64),))
  return autodiff.check_torch(ctx)


def test_correct_twin_passes_every_transform(monkeypatch):
  out = _judge(Correct.apply, monkeypatch)
  assert out.status is Status.PASS, out.diagnosis.text()


def test_compiled_equals_eager_for_the_twin_without_jvp(monkeypatch):
  out = _judge(CorrectNoJvp.apply, monkeypatch, compile_mode="aot_eager")
  assert out.status is Status.UNSUPPORTED, out.diagnosis.text()
  assert out.diagnosis.extra["missing"] == ["forward"]  # compiled, and equal to eager


def test_a_function_with_jvp_cannot_be_compiled_fullgraph(monkeypatch):
  out = _judge(Correct.apply, monkeypatch, compile_mode="aot_eager")
  assert out.status is Status.UNSUPPORTED and out.diagnosis.capability == "jit", out.diagnosis.text()


def test_float32_output_for_other_dtypes_fails(monkeypatch):
  out = _judge(Float32Out.apply, monkeypatch)
  assert out.status is Status.FAIL
  assert "returns float32 for a float16 input" in out.diagnosis.message
  assert {f["dtype"] for f in out.diagnosis.extra["all_failures"]} >= {"float16", "bfloat16", "float64"}


def test_in_place_write_to_the_cotangent_fails(monkeypatch):
  out = _judge(InPlaceCotangent.apply, monkeypatch)
  assert out.status is Status.FAIL
  assert any("cotangent in place" in f["message"] for f in out.diagnosis.extra["all_failures"])


def test_no_setup_context_is_unsupported_vmap_and_no_jvp_unsupported_forward(monkeypatch):
  out = _judge(OldStyle.apply, monkeypatch)
  assert out.status is Status.UNSUPPORTED, out.diagnosis.text()
  assert set(out.diagnosis.extra["missing"]) == {"forward", "vmap"}
  assert out.diagnosis.capability == "forward" and "jvp" in out.diagnosis.fix
  vmap = next(m for m in out.diagnosis.extra["all_missing"] if m["capability"] == "vmap")
  assert "setup_context" in vmap["fix"]


def test_wrong_double_backward_fails(monkeypatch):
  out = _judge(WrongSecond.apply, monkeypatch)
  assert out.status is Status.FAIL
  assert "double backward is not g'" in out.diagnosis.message
  assert out.diagnosis.got == pytest.approx(2 * out.diagnosis.expected, rel=1e-3)


def test_non_differentiable_backward_is_unsupported_second(monkeypatch):
  out = _judge(Detached.apply, monkeypatch)
  assert out.status is Status.UNSUPPORTED and out.diagnosis.capability == "second", out.diagnosis.text()


def test_compile_can_be_turned_off(monkeypatch):
  monkeypatch.setenv("SURROGATE_TORCH_COMPILE", "0")
  assert torch_checks.compile_mode() == ""
  monkeypatch.setenv("SURROGATE_TORCH_COMPILE", "inductor")
  assert torch_checks.compile_mode() == "inductor"
  monkeypatch.delenv("SURROGATE_TORCH_COMPILE")
  assert torch_checks.compile_mode() == "aot_eager"
