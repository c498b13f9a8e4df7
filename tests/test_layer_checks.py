"""The layer checks catch a layer that implements another setting than it documents, and name the setting.

For every field of LIFConfig: a correct planted layer (torch object holding its state in a Python loop,
a lax.scan with a stacked carry, a plain-JAX class holding its state; ``tests/planted_layers.py``) passes
every layer check, and the same layer with that one choice changed fails with ``differs`` naming the
field. Hostile layers (raising, garbage shapes and types, NaN, a hang) are failing results, not crashes.
The grid is smaller than the documented sizes (one seed, T up to 20) to keep the suite short; the
checks, tolerances and search are the same.
"""

from __future__ import annotations

import jax
import numpy as np
import planted_layers as P
import pytest

from verification.checks.layers import Grid, _frozen_fd, check_layers, layer_context
from verification.results import Status

jax.config.update("jax_enable_x64", True)

GRID = Grid(t_values=(1, 2, 3, 20), seeds=(0,))
STYLES = tuple(P.STYLES)
FIELDS = tuple(P.FIELD_DEFECTS)


def _run(candidate, checks=None):
  return {r.check: r for r in check_layers([candidate], checks=checks, grid=GRID, timeout=600)}


def _style(field: str) -> str:
  return STYLES[FIELDS.index(field) % len(STYLES)]


@pytest.mark.parametrize("field", FIELDS)
def test_a_correct_layer_passes_and_the_changed_one_is_named(field):
  style = _style(field)
  good, bad = P.defect(field, style)
  # the probes rebuild the layer per probe (a JAX layer is compiled again for each): torch layers here,
  # every style in test_every_style_passes_and_a_detached_reset_is_named
  results = _run(good, checks=None if style == "torch" else ["layer_forward", "layer_gradient", "layer_learnable"])
  for r in results.values():
    assert r.status is Status.PASS, f"{style} {field} correct: {r.check}: {r.message}"
    assert r.detail["documented"] == r.detail["implemented"] and r.detail["differs"] == {}
    assert r.detail["dtype"] == "float64" and r.detail["reset_gain"] is not None
  results = _run(bad, checks=["layer_forward", "layer_gradient"])
  failing = [r for r in results.values() if r.status is Status.FAIL]
  assert failing, f"{style} {field} changed: no check failed"
  for r in failing:
    assert r.detail["implemented"] is not None, r.message
    # the nearest settings that reproduce the layer: the changed field among them (an equivalent setting may
    # come first: subtracting θ before the leak is subtracting βθ after it)
    named = [d for d in r.detail["matching_differs"] if field in d]
    assert named, f"{field}: {r.message}"
    documented, implemented = named[0][field]
    assert documented == getattr(good.config, field).value
    assert implemented == P.FIELD_DEFECTS[field][1].value
    assert f"{field}={implemented}" in r.message


@pytest.mark.parametrize("style", STYLES)
def test_every_style_passes_and_a_detached_reset_is_named(style):
  good, bad = P.defect("reset_grad", style)
  for r in _run(good).values():
    assert r.status is Status.PASS, f"{style}: {r.check}: {r.message}"
  r = _run(bad, checks=["layer_gradient"])["layer_gradient"]
  assert r.status is Status.FAIL
  assert r.detail["differs"] == {"reset_grad": ["attached", "detached"]}, r.message


def test_the_search_screen_keeps_every_setting_the_full_comparison_accepts():
  # the settings search compares in full only the settings its screen (one vmapped forward for many settings)
  # keeps: the screen must keep each one the full comparison accepts, and leave out the most of the others
  from verification.checks.layers import SEARCH_T, _matches, _screen, _variants

  _, bad = P.defect("reset", "jax_scan")  # its membrane differs from the reference's by rounding: a tolerance shows
  ctx = layer_context(bad, grid=GRID)
  batches = [b for b in ctx.batches if b.T in SEARCH_T]
  singles = [c for c in _variants(bad.config) if len(bad.config.differs(c)) == 1]
  kept = _screen(ctx, singles, batches)
  accepted = [_matches(ctx, c, batches, gradient=True) for c in singles]
  assert any(accepted)
  assert all(k for k, a in zip(kept, accepted, strict=True) if a), "the screen left out a matching setting"
  assert sum(kept) < len(singles) / 2


def test_the_probes_see_the_wiring_without_the_surrogate():
  # the reset detached: at g ≡ c the layer's VJP differs from the attached reference's
  _, bad = P.defect("reset_grad", "torch")
  r = _run(bad, checks=["layer_probes"])["layer_probes"]
  assert r.status is Status.FAIL and "probe g=" in r.message
  assert r.detail["differs"] == {"reset_grad": ["attached", "detached"]}


def test_the_frozen_pattern_difference_measures_the_layer_itself():
  # a layer whose backward through the leak is scaled at g ≡ 0 (a wrong hand-written backward) fails the
  # finite differences of its own forward; the correct one passes them
  import torch

  good, _ = P.defect("reset_grad", "torch")
  ctx = layer_context(good, grid=GRID)
  assert _frozen_fd(ctx, ctx.longest()) is None

  class HalfGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v):
      return v.clone()

    @staticmethod
    def backward(ctx, g):
      return 0.5 * g

  def broken(g=None):
    run = good.with_surrogate(g) if g is not None else good.run

    def wrapped(x, state0, params):
      return run(x, state0._replace(v=HalfGrad.apply(state0.v)), params)
    return wrapped

  import dataclasses

  bad = dataclasses.replace(good, name="planted.half_grad_v0", label="", run=broken(), with_surrogate=broken)
  ctx = layer_context(bad, grid=GRID)
  problem = _frozen_fd(ctx, ctx.longest())
  assert problem is not None and "d/dv" in problem


def test_a_learnable_parameter_without_gradient_fails():
  import dataclasses

  good, _ = P.defect("reset_grad", "jax_scan")

  def gradients(x, state0, params, a, b):  # a module that reads only β's gradient back
    def loss(beta):
      s, m = good.run(x, state0, params._replace(beta=beta))
      return (s * a).sum() + (m * b).sum()
    return {"beta": jax.grad(loss)(params.beta)}

  declared = dataclasses.replace(good, name="planted.theta_without_gradient", label="", gradients=gradients,
                                 learnable=frozenset({"beta", "theta"}))
  r = _run(declared, checks=["layer_learnable"])["layer_learnable"]
  assert r.status is Status.FAIL and "theta" in r.message
  honest = dataclasses.replace(declared, name="planted.beta_only", label="", learnable=frozenset({"beta"}))
  r = _run(honest, checks=["layer_learnable"])["layer_learnable"]
  assert r.status is Status.PASS, r.message
  assert r.detail["received"] == ["beta"]


@pytest.mark.parametrize("kind", ["raises", "shapes", "types", "nan"])
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_hostile_layer_is_a_failing_result(kind, backend):
  results = _run(P.hostile(kind, backend), checks=["layer_forward", "layer_gradient"])
  for r in results.values():
    assert r.status is Status.FAIL, f"{kind}: {r.check}: {r.status} {r.message}"


def test_a_hanging_layer_is_a_failing_result():
  import dataclasses

  def run(x, state0, params):
    while True:
      pass

  hang = dataclasses.replace(P.hostile("raises"), name="hostile.hangs", label="", run=run)
  (r,) = check_layers([hang], checks=["layer_forward"], grid=GRID, timeout=2.0)
  assert r.status is Status.FAIL and "ran past" in r.message


def test_the_margin_keeps_every_reference_membrane_away_from_the_threshold():
  from verification.checks.layers import _margin, _pre_reset, make_batches

  good, _ = P.defect("reset", "torch")
  for batch in make_batches(good, grid=GRID):
    pre = _pre_reset(good.config, good.surrogate, batch.x, batch.v, batch.i, batch.params)
    assert np.all(_margin(good.config, pre, batch.v, batch.params["theta"]) > 1e-12)


def test_the_tie_case_pins_ge_against_gt():
  from verification.checks.layers import tie_batch

  good, bad = P.defect("spike_forward", "torch")  # documented ≥; the changed layer fires on >
  tie = tie_batch(good)
  assert tie is not None
  assert np.all(layer_context(good, grid=GRID).reference(tie)["s"] == 1.0)  # ≥ fires exactly at θ
  r = _run(bad, checks=["layer_forward"])["layer_forward"]
  assert r.status is Status.FAIL and "tie" in r.message
  assert r.detail["differs"] == {"spike_forward": ["ge", "gt"]}


def test_layer_candidates_are_judged_through_the_engine():
  # the worker records the layer's outputs, the judge decides from the record: same verdicts and findings
  import verification

  good, bad = P.defect("reset_grad", "torch")
  report = verification.check([good, bad], checks=["layer_forward", "layer_gradient", "forward"], jobs=1)
  assert {r.check for r in report.results} == {"layer_forward", "layer_gradient"}  # the checks of their kind
  assert report.result(good.label, "layer_gradient").status is Status.PASS
  r = report.result(bad.label, "layer_gradient")
  assert r.status is Status.FAIL and r.detail["differs"] == {"reset_grad": ["attached", "detached"]}, r.message
  assert report.result(bad.label, "layer_forward").status is Status.PASS
