"""Planted candidates: defective implementations, one per defect class, and correct ones.

Each defective candidate documents the check meant to catch it in ``notes["caught_by"]``.
The correct ones are written independently of the reference, in the input's own dtype, or are
the reference at extreme parameters; every check must pass them.
"""

from __future__ import annotations

import math
import time
import types

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

import surrogates
from verification.core.candidate import Candidate


def heaviside(x):
  return jnp.where(x >= 0, 1.0, 0.0).astype(x.dtype)


def spike_with(grad_fn, forward=heaviside):
  """A spike function with a custom JVP: forward ``forward``, derivative ``grad_fn``."""

  @jax.custom_jvp
  def spike(x):
    return forward(x)

  @spike.defjvp
  def _(primals, tangents):
    (x,), (t,) = primals, tangents
    return spike(x), grad_fn(x) * t

  return spike


def candidate(name, params, g, p=None, caught_by=None, forward=heaviside, fn=None, **extra):
  return Candidate(name=name, params=params, fn=fn or spike_with(g, forward), surrogate_grad=g, surrogate_fun=p,
                   label=extra.pop("label", None) or f"{caught_by or 'correct'}: {name}{params}",
                   notes={"caught_by": caught_by} if caught_by else {}, **extra)


def _sig(z):
  return jax.nn.sigmoid(z)


# ---- correct building blocks, native dtype ---------------------------------------------------
def sigmoid_g(a):
  return lambda x: a * _sig(a * x) * _sig(-a * x)


def sigmoid_p(a):
  return lambda x: _sig(a * x)


def fourier_g(n, T):
  w = 2 * math.pi / T
  return lambda x: (4 / T) * sum(jnp.cos((2 * i - 1) * w * jnp.remainder(x, T)) for i in range(1, n + 1))


def fourier_p(n, T):
  w = 2 * math.pi / T
  return lambda x: 0.5 + (2 / math.pi) * sum(
      jnp.sin((2 * i - 1) * w * jnp.remainder(x, T)) / (2 * i - 1) for i in range(1, n + 1))


# ---- defects -------------------------------------------------------------------------------------
def _ignores_cotangent(a):
  g = sigmoid_g(a)

  @jax.custom_vjp
  def spike(x):
    return heaviside(x)

  spike.defvjp(lambda x: (heaviside(x), x), lambda x, ct: (g(x),))  # drops ct
  return spike


def _reverse_only(a):
  g = sigmoid_g(a)

  @jax.custom_vjp
  def spike(x):
    return heaviside(x)

  spike.defvjp(lambda x: (heaviside(x), x), lambda x, ct: (ct * g(x),))
  return spike


def _float32_through_float16(a):
  g = sigmoid_g(a)
  return lambda x: g(x.astype(jnp.float16)).astype(x.dtype) if x.dtype == jnp.float32 else g(x)


def _native_sigmoid_g(a):
  # exp(-a x) overflows in float16 for a·x < -11.1: inf / inf = NaN
  return lambda x: a * jnp.exp(-a * x) / (1 + jnp.exp(-a * x)) ** 2


def _s2nn_unguarded_p(alpha=4.0, beta=1.0, eps=1e-8):
  g = lambda x: jnp.where(x < 0, alpha * _sig(alpha * x) * _sig(-alpha * x), beta / (jnp.maximum(x, 0) + 1))
  p = lambda x: jnp.where(x < 0, _sig(alpha * x), beta * jnp.log(x + 1 + eps) + 0.5)  # log of x+1 <= 0: NaN in dP
  return g, p


def _log_tailed_unguarded():
  g = lambda x: jnp.where(x > 1, 1 / x, jnp.where(x > 0, 1.0, 0.0)).astype(x.dtype)  # 1/x at 0: NaN only in g'
  p = lambda x: jnp.clip(x, 0, 1) + jnp.log(jnp.maximum(x, 1))
  return g, p


def _soft_sign_textbook(a=1.0):
  g = lambda x: a / (2 * (1 + a * jnp.abs(x)) ** 2)
  p = lambda x: 0.5 + x / (2 * (1 / a + jnp.abs(x)))  # inf / inf = NaN at ±inf
  return g, p


def _raises(x):
  raise RuntimeError("planted failure")


def _hangs(x):
  time.sleep(3600)
  return x


# ---- outside styles: custom primitives, custom_vjp / custom_gradient, stop_gradient, squeeze -------
def elementwise_primitive(name, impl, lowered, batched=None):
  """A primitive as a library would register one: a NumPy eager implementation, a lowering from jnp
  code, an abstract evaluation and (unless ``batched`` is False) a batching rule."""
  p = Primitive(name)
  p.def_impl(lambda x: np.asarray(impl(np.asarray(x))).astype(np.asarray(x).dtype))
  p.def_abstract_eval(lambda x: jax.core.ShapedArray(x.shape, x.dtype))
  mlir.register_lowering(p, mlir.lower_fun(lambda x: lowered(x).astype(x.dtype), multiple_results=False))
  if batched is not False:
    batching.primitive_batchers[p] = batched or (lambda args, dims: (p.bind(args[0]), dims[0]))
  return p


def primitive_spike(spike_p, grad_p):
  """spike_p for the forward; its JVP multiplies the tangent by grad_p (first order only)."""
  def jvp(primals, tangents):
    return spike_p.bind(primals[0]), grad_p.bind(primals[0]) * tangents[0]

  ad.primitive_jvps[spike_p] = jvp
  return spike_p.bind


def _np_sigmoid_g(a):
  return lambda x: a / (2 + np.exp(-a * x) + np.exp(a * x))


def _jnp_sigmoid_g(a):
  return lambda x: a / (2 + jnp.exp(-a * x) + jnp.exp(a * x))


def _np_step(x):
  return np.where(np.signbit(x) & (x != 0), 0.0, 1.0)


def _jnp_step(x):
  return jnp.where(x >= 0, 1.0, 0.0)


def _eager_threshold_differs():
  # eager (NumPy) tests x > 0, the lowering x >= 0: H(±0) is 0 eagerly, 1 under jit
  spike_p = elementwise_primitive("planted_spike_eager_gt", lambda x: np.where(x > 0, 1.0, 0.0), _jnp_step)
  grad_p = elementwise_primitive("planted_grad_ok", _np_sigmoid_g(4.0), _jnp_sigmoid_g(4.0))
  return primitive_spike(spike_p, grad_p)


def _eager_gradient_differs():
  # the eager gradient drops the factor alpha for x > 0 only; the lowering is right
  spike_p = elementwise_primitive("planted_spike_ok", _np_step, _jnp_step)
  grad_p = elementwise_primitive("planted_grad_eager_positive",
                                 lambda x: np.where(x > 0, _np_sigmoid_g(4.0)(x) / 4.0, _np_sigmoid_g(4.0)(x)),
                                 _jnp_sigmoid_g(4.0))
  return primitive_spike(spike_p, grad_p)


def _batched_threshold():
  # the batching rule thresholds with x > 0: H(0) is 0 under vmap only
  spike_p = elementwise_primitive("planted_spike_batched_gt", _np_step, _jnp_step,
                                  batched=lambda args, dims: (jnp.where(args[0] > 0, 1.0, 0.0).astype(args[0].dtype),
                                                              dims[0]))
  grad_p = elementwise_primitive("planted_grad_ok_2", _np_sigmoid_g(4.0), _jnp_sigmoid_g(4.0))
  return primitive_spike(spike_p, grad_p)


def _no_batching_rule():
  spike_p = elementwise_primitive("planted_spike_unbatched", _np_step, _jnp_step, batched=False)
  grad_p = elementwise_primitive("planted_grad_unbatched", _np_sigmoid_g(4.0), _jnp_sigmoid_g(4.0), batched=False)
  return primitive_spike(spike_p, grad_p)


def _soft_primal(a):
  # the JVP rule returns the smooth sigmoid as its primal output: soft spikes under jax.vjp / value_and_grad
  @jax.custom_jvp
  def spike(x):
    return heaviside(x)

  @spike.defjvp
  def _(primals, tangents):
    (x,), (t,) = primals, tangents
    return _sig(a * x), sigmoid_g(a)(x) * t

  return spike


def _scrambled_layout(a):
  # the gradient is computed on a transposed copy of 2-d and 3-d inputs and reshaped back
  g = sigmoid_g(a)

  @jax.custom_jvp
  def spike(x):
    return heaviside(x)

  @spike.defjvp
  def _(primals, tangents):
    (x,), (t,) = primals, tangents
    dx = g(jnp.swapaxes(x, 0, -1).reshape(x.shape)) if x.ndim >= 2 else g(x)
    return spike(x), dx * t

  return spike


def _squeezed(a):
  spike = spike_with(sigmoid_g(a))
  return lambda x: jnp.squeeze(spike(x))


def _second_order_stopped(a):
  # stop_gradient inside the derivative: first order right, second order 0
  return spike_with(lambda x: sigmoid_g(a)(jax.lax.stop_gradient(x)))


def _reverse_only_stopped(a):
  # custom_vjp with stop_gradient in its bwd rule: first order right, grad of grad 0. The mechanism
  # does not promise a second derivative, so this is the capability missing, not a defect.
  g = sigmoid_g(a)

  @jax.custom_vjp
  def spike(x):
    return heaviside(x)

  spike.defvjp(lambda x: (heaviside(x), x), lambda x, ct: (ct * g(jax.lax.stop_gradient(x)),))
  return spike


def _custom_gradient(a):
  g = sigmoid_g(a)

  @jax.custom_gradient
  def spike(x):
    return heaviside(x), lambda ct: ct * g(x)

  return spike


def _nan_tail_g(a):
  return lambda x: jnp.where(x > 4 / a, jnp.nan, sigmoid_g(a)(x)).astype(x.dtype)


def _nan_in_float32(a):
  g = sigmoid_g(a)
  return lambda x: jnp.where(x > 1 / a, jnp.nan, g(x)).astype(x.dtype) if x.dtype == jnp.float32 else g(x)


def _non_decaying_g(a):
  # right on every ordinary input, a constant 1e-3 beyond 45 widths: no finite total mass
  g = sigmoid_g(a)
  return lambda x: g(x) + jnp.where(jnp.abs(x) > 45 / a, 1e-3, 0.0).astype(x.dtype)


# ---- inputs as training has them: sizes and ranks ---------------------------------------------------
def _chunked_g(a, chunk=1 << 16, keep_tail=True):
  """g in chunks of 65,536 elements with lax.map (a kernel's working size); without ``keep_tail`` the
  elements past the last whole chunk get no gradient (inputs up to one chunk are one piece)."""
  g = sigmoid_g(a)

  def chunked(x):
    flat = x.reshape(-1)
    full = flat.size // chunk * chunk
    if full == 0:
      return g(x)
    head = jax.lax.map(g, flat[:full].reshape(-1, chunk)).reshape(-1)
    tail = g(flat[full:]) if keep_tail else jnp.zeros(flat.size - full, x.dtype)
    return jnp.concatenate([head, tail]).reshape(x.shape)

  return chunked


def _nhwc_kernel_g(a, transpose_back=True):
  """g of 4-d inputs computed channels-last (N, H, W, C); without ``transpose_back`` the result is
  reshaped to (N, C, H, W) instead of transposed back: the gradients land on other elements."""
  g = sigmoid_g(a)

  def kernel(x):
    if x.ndim != 4:
      return g(x)
    y = g(jnp.transpose(x, (0, 2, 3, 1)))
    return jnp.transpose(y, (0, 3, 1, 2)) if transpose_back else y.reshape(x.shape)

  return kernel


def _callback_g(a):
  """g computed on the host with NumPy through jax.pure_callback (as wrappers of C or NumPy kernels do):
  right at first order; JAX has no JVP of a callback, so no second derivative."""
  np_g = _np_sigmoid_g(a)

  def g(x):
    return jax.pure_callback(lambda v: np_g(np.asarray(v)).astype(np.asarray(v).dtype),
                             jax.ShapeDtypeStruct(x.shape, x.dtype), x, vmap_method="expand_dims")

  return g


DEFECTIVE = [
    candidate("Sigmoid", {"alpha": 4.0}, lambda x: _sig(4 * x) * _sig(-4 * x), sigmoid_p(4.0), "derivative",
              label="missing factor alpha in g"),
    candidate("Arctan", {"alpha": 1.0}, lambda x: -0.5 / (1 + (math.pi * x / 2) ** 2),
              lambda x: jnp.arctan(math.pi * x / 2) / math.pi + 0.5, "derivative", label="sign error in g"),
    candidate("SquarewaveFourierSeries", {"n": 2, "t_period": 8.0}, fourier_g(3, 8.0), fourier_p(2, 8.0),
              "derivative", label="off-by-one in the Fourier sum of g"),
    candidate("PiecewiseLeakyRelu", {"c": 0.01, "w": 1.0},
              lambda x: jnp.where(jnp.abs(x) <= 1.0, 1.0, 0.01).astype(x.dtype),
              lambda x: jnp.clip(x, -1, 1) / 2 + 0.5 + 0.01 * (x - jnp.clip(x, -1, 1)), "derivative",
              label="wrong constant: 1/w instead of 1/(2w)"),
    candidate("Sigmoid", {"alpha": 4.0}, sigmoid_g(4.0), None, "quadrature", scale=1.0,
              fn=spike_with(lambda x: 2 * sigmoid_g(4.0)(x)), label="no primitive, g twice too large"),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=_ignores_cotangent(4.0), label="gradient ignores the cotangent",
              notes={"caught_by": "autodiff"}),
    candidate("Sigmoid", {"alpha": 4.0}, sigmoid_g(4.0), sigmoid_p(4.0), "forward",
              forward=lambda x: jnp.where(jnp.signbit(x), 0.0, 1.0).astype(x.dtype),
              label="sign-bit threshold: H(-0.0) = 0, H(+0.0) = 1"),
    candidate("Sigmoid", {"alpha": 4.0}, sigmoid_g(4.0), sigmoid_p(4.0), "forward",
              forward=lambda x: jnp.where(x > 0, 1.0, jnp.where(x == 0, 0.5, 0.0)).astype(x.dtype),
              label="0.5 at zero"),
    candidate("Sigmoid", {"alpha": 4.0}, sigmoid_g(4.0), sigmoid_p(4.0), "forward",
              forward=lambda x: heaviside(x).astype(jnp.float32), label="forward returns float32"),
    candidate("Sigmoid", {"alpha": 4.0}, _float32_through_float16(4.0), sigmoid_p(4.0), "low_precision",
              label="float32 computed through float16"),
    candidate("S2NN", {"alpha": 4.0, "beta": 1.0, "epsilon": 1e-8}, *_s2nn_unguarded_p(), "edge",
              label="dead branch: NaN only in the derivative of P"),
    candidate("LogTailedRelu", {"alpha": 0.0}, *_log_tailed_unguarded(), "edge",
              label="dead branch: NaN only in the second derivative"),
    candidate("Sigmoid", {"alpha": 4.0}, _native_sigmoid_g(4.0), sigmoid_p(4.0), "edge",
              label="exp overflow in float16"),
    candidate("SoftSign", {"alpha": 1.0}, *_soft_sign_textbook(), "edge", label="primitive is NaN at ±inf"),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=spike_with(sigmoid_g(4.0), _raises),
              label="forward raises", notes={"caught_by": "forward"}),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=spike_with(sigmoid_g(4.0), lambda x: heaviside(x)[..., None]),
              label="forward returns the wrong shape", notes={"caught_by": "forward"}),
    candidate("Sigmoid", {"alpha": 4.0}, sigmoid_g(2.0), sigmoid_p(2.0), "differential",
              label="self-consistent but alpha=2 claimed as alpha=4"),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=_eager_threshold_differs(), surrogate_fun=sigmoid_p(4.0),
              label="primitive: eager H(±0) = 0, compiled H(±0) = 1", notes={"caught_by": "transforms"}),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=_eager_gradient_differs(), surrogate_fun=sigmoid_p(4.0),
              label="primitive: eager gradient wrong for x > 0 only", notes={"caught_by": "transforms"}),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=_batched_threshold(), surrogate_fun=sigmoid_p(4.0),
              label="primitive: batching rule thresholds with x > 0", notes={"caught_by": "transforms"}),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=_soft_primal(4.0), surrogate_fun=sigmoid_p(4.0),
              label="JVP rule returns the sigmoid as the primal output", notes={"caught_by": "autodiff"}),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=_scrambled_layout(4.0), surrogate_fun=sigmoid_p(4.0),
              label="gradient of 2-d and 3-d inputs in the wrong layout", notes={"caught_by": "autodiff"}),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=_squeezed(4.0), surrogate_fun=sigmoid_p(4.0),
              label="forward squeezes size-1 axes", notes={"caught_by": "forward"}),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=spike_with(sigmoid_g(4.0)), surrogate_fun=sigmoid_p(4.0),
              surrogate_grad=_float32_through_float16(4.0), label="surrogate_grad: float32 computed through float16",
              notes={"caught_by": "low_precision"}),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=_second_order_stopped(4.0), surrogate_fun=sigmoid_p(4.0),
              label="stop_gradient in the derivative: second order is 0", notes={"caught_by": "second_order"}),
    candidate("Sigmoid", {"alpha": 4.0}, _nan_tail_g(4.0), sigmoid_p(4.0), "derivative",
              label="NaN gradient beyond 4 widths"),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=spike_with(sigmoid_g(4.0)), surrogate_fun=sigmoid_p(4.0),
              surrogate_grad=_nan_in_float32(4.0), label="surrogate_grad NaN in float32",
              notes={"caught_by": "low_precision"}),
    candidate("Sigmoid", {"alpha": 4.0}, _non_decaying_g(4.0), None, "quadrature",
              label="g does not decay: a finite total mass is declared"),
    Candidate(name="Sigmoid", params={"alpha": 1e-300}, fn=spike_with(sigmoid_g(4.0)), surrogate_fun=sigmoid_p(4.0),
              label="claims alpha=1e-300", notes={"caught_by": "differential", "status": "error"}),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=spike_with(_chunked_g(4.0, keep_tail=False)),
              label="lax.map over 65,536-element chunks drops the tail", notes={"caught_by": "autodiff"}),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=spike_with(_nhwc_kernel_g(4.0, transpose_back=False)),
              label="NHWC kernel reshaped back instead of transposed", notes={"caught_by": "autodiff"}),
    candidate("Sigmoid", {"alpha": 4.0}, sigmoid_g(4.0), sigmoid_p(4.0), "forward",
              forward=lambda x: jnp.where(x > 1e-30, 1.0, 0.0).astype(x.dtype),
              label="threshold at 1e-30: H is 0 at tiny positive inputs"),
]

#: The checks in two groups: the wiring checks (one compiled transformed program per candidate) and the
#: numeric ones (the evaluator's bundles in every dtype). Together they are every check.
CHECK_GROUPS = {
    "wiring": ("forward", "autodiff", "forward_mode", "second_order", "transforms"),
    "numeric": ("derivative", "quadrature", "edge", "low_precision", "differential", "parameters"),
}
#: The candidate claiming parameters at which the reference cannot be computed: every check says so.
(UNCOMPUTABLE,) = [c for c in DEFECTIVE if c.params.get("alpha") == 1e-300]
#: DEFECTIVE by group of the check meant to catch each defect (``tests.planted:BY_GROUP.wiring`` is a
#: target), and UNCOMPUTABLE in every group, so that one run per group checks each defect with its check.
BY_GROUP = types.SimpleNamespace(**{
    group: [c for c in DEFECTIVE if c.notes["caught_by"] in checks or c is UNCOMPUTABLE]
    for group, checks in CHECK_GROUPS.items()})

#: A candidate that never returns: the runner's time limit turns it into an error result.
HANGING = Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=spike_with(sigmoid_g(4.0), _hangs),
                    surrogate_fun=lambda x: _hangs(x), label="forward hangs", notes={"caught_by": "forward"})


def _reference(name, **params):
  s = surrogates.get(name, **params)
  return Candidate(name=s.name, params=s.params, fn=s, surrogate_fun=s.surrogate_fun, surrogate_grad=s.surrogate_grad,
                   label=f"correct: reference {s!r}")


#: Correct up to a documented convention: ``convention`` from the check named, everything else passes.
CONVENTIONS = [
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=spike_with(sigmoid_g(4.0), lambda x: jnp.where(
        x > 0, 1.0, 0.0).astype(x.dtype)), surrogate_fun=sigmoid_p(4.0), surrogate_grad=sigmoid_g(4.0),
              label="x > 0 as threshold (both zeros give 0)", notes={"convention": "forward"}),
]

CORRECT = [
    candidate("Sigmoid", {"alpha": 25.0}, sigmoid_g(25.0), sigmoid_p(25.0), label="correct: native-dtype Sigmoid(25)"),
    candidate("SquarewaveFourierSeries", {"n": 5, "t_period": 4.0}, fourier_g(5, 4.0), fourier_p(5, 4.0),
              label="correct: native-dtype Fourier(n=5, T=4)"),
    _reference("Sigmoid", alpha=1000.0),
    _reference("Sigmoid", alpha=1e-3),
    _reference("GaussianGrad", sigma=1e-3),
    _reference("InvSquareGrad", alpha=1e4),
    _reference("Boxcar", width=1e-3, height=1000.0),
    _reference("SquarewaveFourierSeries", n=16, t_period=100.0),
    _reference("PiecewiseQuadratic", alpha=1e-3),
    _reference("QPseudoSpike", alpha=1.0001),
    Candidate(name="Arctan", params={"alpha": 4.0}, fn=surrogates.spyx_arctan(2.0), scale=1 / (2 * math.pi),
              label="correct: spyx arctan(k=2) = Arctan(alpha=4) scaled by 1/(2π)"),
    candidate("Sigmoid", {"alpha": 4.0}, sigmoid_g(4.0), lambda x: sigmoid_p(4.0)(x) - 0.5,
              label="correct: primitive shifted by -1/2 (additive constants are free)"),
    # Capabilities: each lacks one by construction; that check reports it unsupported, the others pass.
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=_reverse_only(4.0), surrogate_fun=sigmoid_p(4.0),
              label="correct: custom_vjp (no forward mode)", notes={"unsupported": {"forward_mode": "forward"}}),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=_custom_gradient(4.0), surrogate_fun=sigmoid_p(4.0),
              label="correct: custom_gradient (no forward mode)", notes={"unsupported": {"forward_mode": "forward"}}),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=_reverse_only_stopped(4.0), surrogate_fun=sigmoid_p(4.0),
              label="correct: custom_vjp, stop_gradient in bwd (no forward mode, no second order)",
              notes={"unsupported": {"forward_mode": "forward", "second_order": "second"}}),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=_no_batching_rule(), surrogate_fun=sigmoid_p(4.0),
              label="correct: primitive without a batching rule or second order",
              notes={"unsupported": {"transforms": "vmap", "second_order": "second"}}),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=spike_with(_chunked_g(4.0)), surrogate_fun=sigmoid_p(4.0),
              label="correct: lax.map over 65,536-element chunks and the tail"),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=spike_with(_nhwc_kernel_g(4.0)), surrogate_fun=sigmoid_p(4.0),
              label="correct: NHWC kernel transposed back"),
    Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=spike_with(_callback_g(4.0)), surrogate_fun=sigmoid_p(4.0),
              label="correct: gradient by jax.pure_callback (no second order)",
              notes={"unsupported": {"second_order": "second"}}),
]


# --- parameters check ---
# Candidates rebuilt at traced parameter values (``factory``), each in a style the reference does not
# use; the parameters check must catch the three defects and pass the correct twins.


def _leaks_tangent(alpha=4.0):
  """H's JVP adds the parameter's tangent to the output (as braintools 0.3.0 does through g)."""

  @jax.custom_jvp
  def spike(x, a):
    return heaviside(x)

  @spike.defjvp
  def _(primals, tangents):
    (x, a), (tx, ta) = primals, tangents
    return spike(x, a), sigmoid_g(a)(x) * tx + ta * sigmoid_g(a)(x)

  return lambda x: spike(x, alpha)


def _wrong_parameter_sign(alpha=4.0):
  """g's value is right, its derivative in alpha is negated (a hand-written tangent with a sign slip)."""

  @jax.custom_jvp
  def g(x, a):
    return sigmoid_g(a)(x)

  @g.defjvp
  def _(primals, tangents):
    (x, a), (tx, ta) = primals, tangents
    dg_dx, dg_da = jax.grad(lambda u, b: sigmoid_g(b)(u), argnums=(0, 1))(x, a)
    return g(x, a), dg_dx * tx - dg_da * ta

  @jax.custom_jvp
  def spike(x, a):
    return heaviside(x)

  @spike.defjvp
  def _(primals, tangents):
    (x, a), (tx, _) = primals, tangents
    return spike(x, a), g(x, a) * tx

  return lambda x: spike(x, alpha)


def _ignored_when_traced(alpha=4.0):
  """alpha read with float(): a traced alpha falls back to the default, silently."""
  try:
    a = float(alpha)
  except Exception:
    a = 4.0
  return spike_with(sigmoid_g(a))


def _explicit_parameter_tangent(alpha=4.0):
  """Correct: one custom_jvp over (x, alpha) whose output tangent in alpha is written out as zero."""

  @jax.custom_jvp
  def spike(x, a):
    return heaviside(x)

  @spike.defjvp
  def _(primals, tangents):
    (x, a), (tx, ta) = primals, tangents
    return spike(x, a), sigmoid_g(a)(x) * tx + jnp.zeros_like(x) * ta

  return lambda x: spike(x, alpha)


def _custom_vjp_with_parameter_cotangent(alpha=4.0):
  """Correct: custom_vjp over (x, alpha), the cotangent of alpha explicitly zero (reverse mode only)."""

  @jax.custom_vjp
  def spike(x, a):
    return heaviside(x)

  spike.defvjp(lambda x, a: (heaviside(x), (x, a)),
               lambda res, ct: (ct * sigmoid_g(res[1])(res[0]), jnp.zeros_like(res[1])))
  return lambda x: spike(x, alpha)


def _with_factory(factory, label, caught_by=None):
  return Candidate(name="Sigmoid", params={"alpha": 4.0}, fn=factory(alpha=4.0), factory=factory, label=label,
                   notes={"caught_by": caught_by} if caught_by else {})


def _one_alpha_per_layer(alpha=4.0):
  """A layer that keeps one alpha: the mean of per-neuron values (a reduction in a constructor)."""
  return spike_with(sigmoid_g(jnp.mean(jnp.asarray(alpha))))


def _first_alpha(alpha=4.0):
  """alpha read as its first element (``alpha.ravel()[0]``, as code written for a scalar does)."""
  return spike_with(sigmoid_g(jnp.ravel(jnp.asarray(alpha))[0]))


def _flattened_alpha(alpha=4.0):
  """alpha flattened: broadcast along the last axis whatever its shape (per channel of NCHW lands on W)."""
  a = jnp.asarray(alpha)
  return spike_with(sigmoid_g(jnp.ravel(a) if a.ndim else a))


def _alpha_as_given(alpha=4.0):
  """Correct: alpha used as given, so an array broadcasts against x by NumPy's rules."""
  a = jnp.asarray(alpha)
  return spike_with(lambda x: a / (2 + jnp.exp(-a * x) + jnp.exp(a * x)))


PARAMETER_DEFECTS = [
    _with_factory(_leaks_tangent, "the output leaks the parameter's tangent", "parameters"),
    _with_factory(_wrong_parameter_sign, "the parameter gradient has the wrong sign", "parameters"),
    _with_factory(_ignored_when_traced, "the parameter is ignored when traced", "parameters"),
    _with_factory(_one_alpha_per_layer, "per-neuron alpha reduced to its mean", "parameters"),
    _with_factory(_first_alpha, "per-neuron alpha read as its first element", "parameters"),
    _with_factory(_flattened_alpha, "per-channel alpha flattened onto the last axis", "parameters"),
]

PARAMETER_CORRECT = [
    _with_factory(_alpha_as_given, "correct: per-neuron alpha broadcast as given"),
    _with_factory(_explicit_parameter_tangent, "correct: custom_jvp with an explicit zero tangent in alpha"),
    _with_factory(_custom_vjp_with_parameter_cotangent, "correct: custom_vjp with a zero cotangent for alpha"),
]
