"""The reference LIF layer proves itself.

1. Smooth mode (H replaced by the surrogate's primitive P): the reference's autodiff matches central
   finite differences (``jax.test_util.check_grads``, float64, orders 1 and 2) for configurations that
   cover every value of every field whose gradient is the function's own derivative (the detached and
   θ-cut settings are stop_gradients by design: FD cannot see them, the adjoint below does).
2. A hand-written adjoint recursion in NumPy float64 (its own forward, written from the step's equations,
   not from ``surrogates.lif``) matches the reference's VJP to 1e-12 relative, hard forward and smooth,
   for the common settings: subtract/to-value, immediate/next (before and after the leak),
   attached/detached, pre/post-reset output, ≥/>/multi-spike, θ cut from the spike or not.
3. The per-step gain ∂v_t/∂v_{t−1}: β exactly for a detached reset, β(1 − θ·g(u)) attached.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import surrogates
from surrogates._lif_config import (
  BetaMap,
  FireFrom,
  Gain,
  Leak,
  MembraneOut,
  Reset,
  ResetGrad,
  ResetWhen,
  SpikeForward,
  SurrogateArg,
  Synapse,
  ThetaGrad,
)
from surrogates.lif import LIFConfig, LIFParams, LIFState, lif_scan, reset_gain

jax.config.update("jax_enable_x64", True)

SURROGATE = surrogates.Sigmoid(alpha=4.0)
ORDER = 2  # first and second derivatives (rev of rev)
T, SHAPE = 6, (2, 3)

#: A raw decay inside each map's smooth range (β ≈ 0.8), and the synapse's (≈ 0.6).
RAW = {
  BetaMap.IDENTITY: (0.8, 0.6),
  BetaMap.CLAMP_0_1: (0.8, 0.6),
  BetaMap.CLAMP_HALF_1: (0.8, 0.6),
  BetaMap.ONE_MINUS_INV_TAU: (5.0, 2.5),
  BetaMap.SIGMOID: (-1.4, -0.4),
  BetaMap.ONE_MINUS_DT_OVER_TAU: (0.2, 0.4),
  BetaMap.EXP_MINUS_INV_TAU: (4.5, 2.0),
  BetaMap.EXP_MINUS_DT_OVER_TAU: (4.5, 2.0),
}


def _params(config: LIFConfig, **kw) -> LIFParams:
  beta, alpha = RAW[config.beta_map]
  base = dict(beta=beta, theta=0.9, v_reset=-0.3, v_leak=0.1, gain=1.3, bias=0.05, g_s=1.2, alpha_syn=alpha, dt=1.0)
  return LIFParams(**{k: jnp.asarray(v, jnp.float64) for k, v in {**base, **kw}.items()})


def _inputs(seed: int):
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
  x = 0.5 + 0.6 * jax.random.normal(k1, (T, *SHAPE), jnp.float64)
  state = LIFState(0.4 * jax.random.normal(k2, SHAPE, jnp.float64), 0.2 * jax.random.normal(k3, SHAPE, jnp.float64))
  return x, state


def _smooth_configs():
  """The default config with one field changed, for every value of every field, plus a few pairs; the
  detached and θ-cut values are left to the adjoint test (FD sees no stop_gradient)."""
  base = LIFConfig()
  configs = [base]
  for f in dataclasses.fields(LIFConfig):
    for value in type(getattr(base, f.name)):
      if f.name == "reset_grad" and value is not ResetGrad.ATTACHED:
        continue
      if f.name == "theta_grad" and value is not ThetaGrad.AUTODIFF:
        continue
      configs.append(dataclasses.replace(base, **{f.name: value}))
  configs += [
    LIFConfig(synapse=Synapse.ADD_THEN_DECAY, leak=Leak.TOWARD_LEAK, beta_map=BetaMap.ONE_MINUS_DT_OVER_TAU,
              gain=Gain.ONE_MINUS_BETA, reset=Reset.TO_VALUE),  # norse-like
    LIFConfig(reset_when=ResetWhen.NEXT_BEFORE_LEAK, reset=Reset.SUBTRACT_RANGE, leak=Leak.TOWARD_LEAK,
              surrogate_arg=SurrogateArg.V_MINUS_THETA_OVER_RANGE, gain=Gain.PARAM_ONE_MINUS_BETA,
              membrane_out=MembraneOut.PRE_RESET),  # brainpy.state-like
    LIFConfig(fire_from=FireFrom.PREVIOUS, reset_when=ResetWhen.NEXT_AFTER_LEAK, beta_map=BetaMap.CLAMP_0_1),
  ]
  return list(dict.fromkeys(configs))


def _label(c: LIFConfig) -> str:
  diff = LIFConfig().differs(c)
  return ",".join(f"{k}={v[1]}" for k, v in diff.items()) or "default"


@pytest.mark.parametrize("config", _smooth_configs(), ids=_label)
def test_smooth_reference_autodiff_matches_finite_differences(config):
  # central differences of step 1e-4 in float64: the second-order truncation (~h²·f''' ≈ 1e-8) and
  # rounding (eps/h ≈ 1e-12) sit well inside check_grads' tolerance of 1e-5 relative
  x, state = _inputs(1)
  params = _params(config)

  @jax.jit
  def f(x, v0, i0, params):
    s, v, final = lif_scan(x, LIFState(v0, i0), params, config, SURROGATE, smooth=True)
    return jnp.concatenate([s.ravel(), v.ravel(), final.v.ravel(), final.i.ravel()])

  check_grads(f, (x, state.v, state.i, params), order=ORDER, modes=("rev",), eps=1e-4, atol=1e-5, rtol=1e-5)


def test_the_smooth_check_sees_a_wrong_wiring():
  # the check can fail: a derivative that drops the leak's dependence on β is caught
  x, state = _inputs(2)
  config = LIFConfig()
  params = _params(config)

  def f(x, beta):
    cut = jax.lax.stop_gradient(beta) + 0.0 * beta
    _, v, _ = lif_scan(x, state, params._replace(beta=cut), config, SURROGATE, smooth=True)
    return v.sum()

  with pytest.raises(AssertionError):
    check_grads(lambda b: f(x, b), (params.beta,), order=1, modes=("rev",), eps=1e-4, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# The hand-written adjoint (NumPy, float64)
# ---------------------------------------------------------------------------------------------


def _np_forward_backward(x, v0, p, c, g, smooth, a, b):
  """Forward and reverse sweep of one LIF layer (synapse none, multiplicative leak, identity β, gain 1)
  written from the equations: returns (S, V, grads dict) for L = Σ a·S + b·V."""
  beta, theta, vr, bias, gs = p["beta"], p["theta"], p["v_reset"], p["bias"], p["g_s"]
  attached = c.reset_grad is ResetGrad.ATTACHED
  theta_live = c.theta_grad is ThetaGrad.AUTODIFF

  def arg(w):  # u and its partials in w and θ
    if c.surrogate_arg is SurrogateArg.V_MINUS_THETA:
      return w - theta, np.ones_like(w), -np.ones_like(w) * theta_live
    return (w - theta) / theta, np.ones_like(w) / theta, (-w / theta**2) * theta_live

  def count(w, u):
    if smooth:
      return SURROGATE_P(u)
    if c.spike_forward is SpikeForward.GE:
      return (u >= 0).astype(float)
    if c.spike_forward is SpikeForward.GT:
      return (u > 0).astype(float)
    return np.where(w >= theta, np.floor(w / theta), 0.0)  # MULTI_GE

  def reset(w, m):  # value, ∂/∂w, ∂/∂m, ∂/∂θ, ∂/∂v_reset
    if c.reset is Reset.SUBTRACT_THETA:
      return w - m * theta, np.ones_like(w), -theta * np.ones_like(w), -m, np.zeros_like(w)
    return w - m * (w - vr), 1 - m, -(w - vr), np.zeros_like(w), m  # TO_VALUE

  Tn = x.shape[0]
  tape = []
  v = v0
  S, V = np.zeros_like(x), np.zeros_like(x)
  for t in range(Tn):
    rec = {"v_prev": v}
    if c.reset_when is not ResetWhen.IMMEDIATE:
      u_p, du_p, dth_p = arg(v)
      rec.update(r=count(v, u_p), g_p=g(u_p), du_p=du_p, dth_p=dth_p)
    a_ = reset(v, rec["r"])[0] if c.reset_when is ResetWhen.NEXT_BEFORE_LEAK else v
    b_ = beta * a_ + x[t] + bias
    c_ = reset(b_, rec["r"])[0] if c.reset_when is ResetWhen.NEXT_AFTER_LEAK else b_
    u, du, dth = arg(c_)
    n = count(c_, u)
    d_ = reset(c_, n)[0] if c.reset_when is ResetWhen.IMMEDIATE else c_
    rec.update(a=a_, b=b_, c=c_, n=n, g=g(u), du=du, dth=dth)
    tape.append(rec)
    S[t] = gs * n
    V[t] = c_ if c.membrane_out is MembraneOut.PRE_RESET else d_
    v = d_

  grads = {k: 0.0 for k in ("beta", "theta", "v_reset", "bias", "g_s")}
  dx = np.zeros_like(x)
  lam = np.zeros_like(v0)
  for t in reversed(range(Tn)):
    rec = tape[t]
    dd = lam + (b[t] if c.membrane_out is MembraneOut.POST_RESET else 0)
    dc = b[t] if c.membrane_out is MembraneOut.PRE_RESET else np.zeros_like(lam)
    dn = a[t] * gs
    grads["g_s"] += np.sum(a[t] * rec["n"])
    if c.reset_when is ResetWhen.IMMEDIATE:
      _, dw, dm, dth_r, dvr = reset(rec["c"], rec["n"])
      dc = dc + dd * dw
      dn = dn + dd * dm * attached
      grads["theta"] += np.sum(dd * dth_r)
      grads["v_reset"] += np.sum(dd * dvr)
    else:
      dc = dc + dd
    dc = dc + dn * rec["g"] * rec["du"]
    grads["theta"] += np.sum(dn * rec["g"] * rec["dth"])
    dr = np.zeros_like(lam)
    if c.reset_when is ResetWhen.NEXT_AFTER_LEAK:
      _, dw, dm, dth_r, dvr = reset(rec["b"], rec["r"])
      db = dc * dw
      dr = dr + dc * dm
      grads["theta"] += np.sum(dc * dth_r)
      grads["v_reset"] += np.sum(dc * dvr)
    else:
      db = dc
    da = db * beta
    grads["beta"] += np.sum(db * rec["a"])
    dx[t] = db
    grads["bias"] += np.sum(db)
    if c.reset_when is ResetWhen.NEXT_BEFORE_LEAK:
      _, dw, dm, dth_r, dvr = reset(rec["v_prev"], rec["r"])
      dv_prev = da * dw
      dr = dr + da * dm
      grads["theta"] += np.sum(da * dth_r)
      grads["v_reset"] += np.sum(da * dvr)
    else:
      dv_prev = da
    if c.reset_when is not ResetWhen.IMMEDIATE and attached:
      dv_prev = dv_prev + dr * rec["g_p"] * rec["du_p"]
      grads["theta"] += np.sum(dr * rec["g_p"] * rec["dth_p"])
    lam = dv_prev
  grads["x"], grads["v0"] = dx, lam
  return S, V, grads


def SURROGATE_P(u):
  return np.asarray(SURROGATE.surrogate_fun(jnp.asarray(u)))


def _adjoint_configs():
  for reset, when, grad, out in itertools.product(
      (Reset.SUBTRACT_THETA, Reset.TO_VALUE), tuple(ResetWhen), (ResetGrad.ATTACHED, ResetGrad.DETACHED),
      tuple(MembraneOut)):
    yield LIFConfig(reset=reset, reset_when=when, reset_grad=grad, membrane_out=out)
  yield LIFConfig(spike_forward=SpikeForward.GT, surrogate_arg=SurrogateArg.V_MINUS_THETA_OVER_THETA)
  yield LIFConfig(spike_forward=SpikeForward.MULTI_GE, theta_grad=ThetaGrad.NONE,
                  surrogate_arg=SurrogateArg.V_MINUS_THETA_OVER_THETA)
  yield LIFConfig(theta_grad=ThetaGrad.NONE, reset_when=ResetWhen.NEXT_AFTER_LEAK)


@pytest.mark.parametrize("smooth", [False, True], ids=["hard", "smooth"])
@pytest.mark.parametrize("config", list(_adjoint_configs()), ids=_label)
def test_hand_written_adjoint_matches_the_reference_vjp(config, smooth):
  # float64 both sides; the two compute the same sums in a different order: 1e-12 relative
  Tn = 20
  k = jax.random.split(jax.random.PRNGKey(7), 4)
  x = np.asarray(0.35 + 0.5 * jax.random.normal(k[0], (Tn, 3, 5), jnp.float64))
  v0 = np.asarray(0.3 * jax.random.normal(k[1], (3, 5), jnp.float64))
  a = np.asarray(jax.random.normal(k[2], (Tn, 3, 5), jnp.float64))
  b = np.asarray(jax.random.normal(k[3], (Tn, 3, 5), jnp.float64))
  p = dict(beta=0.85, theta=0.7, v_reset=-0.3, bias=0.02, g_s=1.3)
  g = lambda u: np.asarray(SURROGATE.surrogate_grad(jnp.asarray(u)))
  S, V, want = _np_forward_backward(x, v0, p, config, g, smooth, a, b)

  def loss(x, v0, beta, theta, v_reset, bias, g_s):
    params = LIFParams(beta=beta, theta=theta, v_reset=v_reset, bias=bias, g_s=g_s)
    s, v, _ = lif_scan(x, LIFState(v0), params, config, SURROGATE, smooth=smooth)
    return jnp.sum(a * s) + jnp.sum(b * v), (s, v)

  args = (x, v0, *(jnp.asarray(p[k], jnp.float64) for k in ("beta", "theta", "v_reset", "bias", "g_s")))
  grads, (s, v) = jax.grad(loss, argnums=tuple(range(7)), has_aux=True)(*args)
  assert 0 < S.mean() < 1.3, "the sample should fire sometimes"
  np.testing.assert_array_equal(np.asarray(s), S) if not smooth else np.testing.assert_allclose(s, S, rtol=1e-13)
  np.testing.assert_allclose(v, V, rtol=1e-12, atol=1e-13)
  for name, got in zip(("x", "v0", "beta", "theta", "v_reset", "bias", "g_s"), grads, strict=True):
    ref = want[name]
    scale = max(1.0, float(np.max(np.abs(ref))))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * scale, err_msg=f"{_label(config)}: d/d{name}")


def test_the_adjoint_comparison_sees_a_wrong_reset_gradient():
  # the comparison can fail: the reference at "detached" against the adjoint written for "attached"
  Tn = 20
  x = np.asarray(0.35 + 0.5 * jax.random.normal(jax.random.PRNGKey(3), (Tn, 3, 5), jnp.float64))
  a = np.ones((Tn, 3, 5))
  b = np.ones((Tn, 3, 5))
  p = dict(beta=0.85, theta=0.7, v_reset=-0.3, bias=0.02, g_s=1.3)
  g = lambda u: np.asarray(SURROGATE.surrogate_grad(jnp.asarray(u)))
  _, _, want = _np_forward_backward(x, np.zeros((3, 5)), p, LIFConfig(), g, False, a, b)
  detached = LIFConfig(reset_grad=ResetGrad.DETACHED)
  params = LIFParams(beta=0.85, theta=0.7, v_reset=-0.3, bias=0.02, g_s=1.3)
  dx = jax.grad(lambda x: sum(jnp.sum(o) for o in lif_scan(x, LIFState(), params, detached, SURROGATE)[:2]))(x)
  assert np.max(np.abs(np.asarray(dx) - want["x"])) > 1e-3


# ---------------------------------------------------------------------------------------------
# The per-step gain
# ---------------------------------------------------------------------------------------------


def test_reset_gain_is_beta_detached_and_beta_times_one_minus_theta_g_attached():
  x, state = _inputs(4)
  params = LIFParams(beta=0.8, theta=0.9)
  detached = reset_gain(x, state, params, LIFConfig(reset_grad=ResetGrad.DETACHED), SURROGATE)
  np.testing.assert_allclose(detached, 0.8, rtol=1e-15)
  attached = reset_gain(x, state, params, LIFConfig(), SURROGATE)
  _, v, _ = lif_scan(x, state, params, LIFConfig(membrane_out=MembraneOut.PRE_RESET), SURROGATE)
  want = 0.8 * (1 - 0.9 * SURROGATE.surrogate_grad(v - 0.9))
  np.testing.assert_allclose(attached, want, rtol=1e-14)
  assert float(jnp.max(jnp.abs(attached))) != pytest.approx(0.8)


# ---------------------------------------------------------------------------------------------
# The coded settings (one program for the grid) give the static settings' values and gradients
# ---------------------------------------------------------------------------------------------


def _coded_loss(cfg, x, state, params):
  s, v, final = lif_scan(x, state, params, cfg, SURROGATE)
  return jnp.sum(s * jnp.cos(v)) + jnp.sum(v) + jnp.sum(final.v) + jnp.sum(final.i), (s, v)


#: The coded settings' program: traced and compiled once for every config of the test below (the codes are
#: arguments), as the settings search uses it.
_CODED = jax.jit(jax.grad(_coded_loss, argnums=(1, 2, 3), has_aux=True))


@pytest.mark.parametrize("config", _smooth_configs()[::2] + list(_adjoint_configs())[::3], ids=_label)
def test_coded_settings_give_the_static_values_and_gradients(config):
  from surrogates.lif import config_codes

  x, state = _inputs(5)
  params = _params(config)
  static = jax.jit(jax.grad(functools.partial(_coded_loss, config), argnums=(0, 1, 2), has_aux=True))
  (gs, (s1, v1)), (gc, (s2, v2)) = static(x, state, params), _CODED(config_codes(config), x, state, params)
  np.testing.assert_array_equal(s1, s2)
  # the same operations for the selected option; XLA may fuse the two programs differently: a few ulp
  np.testing.assert_allclose(v1, v2, rtol=1e-14, atol=1e-14)
  for a, b in zip(jax.tree_util.tree_leaves(gs), jax.tree_util.tree_leaves(gc), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
