"""Closed-form values: the reference against independent mpmath formulas, in float64."""

from __future__ import annotations

import math

import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import surrogates
from tests.oracles import ORACLES

CASES = [pytest.param(s, id=repr(s)) for s in surrogates.instances()]
# Hand-picked points, in units of each surrogate's length scale, plus the kinks themselves
# (values at the kinks follow the specification's conventions: <=, >= as written there).
UNITS = (-6.0, -2.5, -1.0, -0.3, -0.0, 0.0, 0.2, 0.75, 1.0, 1.5, 4.0)


def _points(s: surrogates.Surrogate) -> np.ndarray:
  return np.array([u * s.length_scale() for u in UNITS] + list(s.kinks()))


def test_every_registry_surrogate_has_an_oracle():
  assert set(ORACLES) == set(surrogates.REGISTRY)
  assert len(surrogates.REGISTRY) == 28


@pytest.mark.parametrize("s", CASES)
def test_grad_and_primitive_match_closed_form(s):
  g_mp, p_mp = ORACLES[s.name]
  xs = _points(s)
  g = np.asarray(s.surrogate_grad(jnp.asarray(xs)))
  p = np.asarray(s.surrogate_fun(jnp.asarray(xs)))
  peak = s.peak()
  for x, gi, pi in zip(xs, g, p, strict=True):
    g_exp = float(g_mp(mp.mpf(float(x)), **s.params))
    p_exp = float(p_mp(mp.mpf(float(x)), **s.params))
    # float64 evaluation of a well-conditioned formula: a few hundred eps of the scale of the
    # value (cos/sin of a reduced argument, log1p, erfc all stay within ~10 eps).
    assert gi == pytest.approx(g_exp, rel=1e-12, abs=1e-12 * peak), f"{s} g({x})"
    assert pi == pytest.approx(p_exp, rel=1e-12, abs=1e-12 * max(1.0, peak * s.length_scale())), f"{s} P({x})"


@pytest.mark.parametrize("s", CASES)
def test_declared_mass_and_limits_match_closed_form(s):
  g_mp, p_mp = ORACLES[s.name]
  limits = s.limits()
  if s.periodic:
    assert limits is None and math.isnan(s.mass())
    return
  big = mp.mpf(10) ** 30
  for sign, p_limit, g_limit in ((-1, limits.p_minus, limits.g_minus), (1, limits.p_plus, limits.g_plus)):
    assert float(g_mp(sign * big, **s.params)) == pytest.approx(g_limit, abs=1e-12)
    far, farther = float(p_mp(sign * big, **s.params)), float(p_mp(sign * big**2, **s.params))
    if math.isinf(p_limit):  # P keeps growing towards the declared infinity (at least like log)
      assert math.copysign(1, p_limit) * (farther - far) > 1
    else:
      assert far == pytest.approx(p_limit, rel=1e-6, abs=1e-12)
  mass = s.mass()
  if math.isfinite(mass):
    total = mp.quad(lambda t: g_mp(t, **s.params), [-mp.inf, *sorted(set(s.kinks()) | {0.0}), mp.inf])
    assert float(total) == pytest.approx(mass, rel=1e-8)
    assert limits.p_plus - limits.p_minus == pytest.approx(mass, rel=1e-12)


@pytest.mark.parametrize(
    ("alias", "params", "g"),
    [
        ("superspike", {"k": 25.0}, lambda x: 1 / (1 + 25 * abs(x)) ** 2),
        ("fast_sigmoid", {"slope": 10.0}, lambda x: 1 / (1 + 10 * abs(x)) ** 2),
        ("triangular", {"k": 2.0}, lambda x: max(1 - 2 * abs(x), 0)),
        ("spyx_arctan", {"k": 2.0}, lambda x: 1 / (math.pi * (1 + (2 * math.pi * x) ** 2))),
    ],
)
def test_aliases_have_their_libraries_formulas(alias, params, g):
  s = surrogates.get(alias, **params)
  xs = np.array([-1.3, -0.2, 0.0, 0.05, 0.4, 2.0])
  np.testing.assert_allclose(np.asarray(s.surrogate_grad(jnp.asarray(xs))), [g(x) for x in xs], rtol=1e-13, atol=1e-15)
  assert getattr(surrogates, alias)(**params) == s
