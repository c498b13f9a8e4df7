"""Planted torch candidates: written as the authors of torch libraries write surrogates, one correct
twin per mechanism and one defect per check, each documenting its expected status per check.

``EXPECTED[label]`` maps check name -> (status, capability or None, a text the message or fix
contains or None); checks not named pass. All are judged under the check names of the JAX form.
torch is imported here: import this module only where torch is installed.
"""

from __future__ import annotations

import numpy as np
import torch

from verification.core.candidate import Candidate

ALPHA = 4.0


def sigmoid_g(x):
  s = torch.sigmoid(ALPHA * x)
  return ALPHA * s * (1 - s)


def heaviside(x):
  return (x >= 0).to(x.dtype)


def new_style(g):
  """An autograd.Function of H with backward ct·g(x): forward(x) + setup_context, jvp, generate_vmap_rule and
  a backward of differentiable ops."""

  class NewStyle(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
      return heaviside(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
      ctx.save_for_backward(inputs[0])
      ctx.save_for_forward(inputs[0])

    @staticmethod
    def backward(ctx, ct):
      (x,) = ctx.saved_tensors
      return ct * g(x)

    @staticmethod
    def jvp(ctx, t):
      (x,) = ctx.saved_tensors
      return t * g(x)

  return NewStyle


NewStyle = new_style(sigmoid_g)


class OldStyle(torch.autograd.Function):
  """forward(ctx, x) with save_for_backward (snntorch's style): reverse mode and second order right;
  no jvp and no setup_context, so forward mode and torch.func.vmap are missing capabilities."""

  @staticmethod
  def forward(ctx, x):
    ctx.save_for_backward(x)
    return heaviside(x)

  @staticmethod
  def backward(ctx, ct):
    (x,) = ctx.saved_tensors
    return ct * sigmoid_g(x)


def detach_trick(x):
  """H forward, the sigmoid's gradient backward (spikingjelly's and norse's straight-through style)."""
  s = torch.sigmoid(ALPHA * x)
  return heaviside(x) + (s - s.detach())


class Spike(torch.nn.Module):
  """An nn.Module wrapper, as layers hold their spike function."""

  def forward(self, x):
    return NewStyle.apply(x)


@torch.library.custom_op("planted_surrogates::sigmoid_spike", mutates_args=())
def custom_spike(x: torch.Tensor) -> torch.Tensor:
  return heaviside(x)


@custom_spike.register_fake
def _(x):
  return torch.empty_like(x)


def _custom_setup(ctx, inputs, output):
  ctx.save_for_backward(inputs[0])


def _custom_backward(ctx, ct):
  (x,) = ctx.saved_tensors
  return ct * sigmoid_g(x)


custom_spike.register_autograd(_custom_backward, setup_context=_custom_setup)


def piecewise(g):
  """An autograd.Function whose backward is ct·g(x) for a piecewise-constant g of torch ops."""
  return new_style(g).apply


def _escape_g(x):  # SpikeRateEscape(beta=1, slope=25)
  return 25.0 * torch.exp(-torch.abs(x - 1.0))


def escape_spike(x):
  d = torch.exp(-torch.abs(x - 1.0))  # no overflow on either side (torch.where differentiates both branches)
  e = 25.0 * torch.where(x < 1.0, d, 2.0 - d)
  return heaviside(x) + (e - e.detach())


class Float32Out(NewStyle):
  """Returns float32 spikes whatever the input's dtype."""

  @staticmethod
  def forward(x):
    return (x >= 0).float()


class InPlaceCotangent(NewStyle):
  """Writes its result into the cotangent."""

  @staticmethod
  def backward(ctx, ct):
    (x,) = ctx.saved_tensors
    return ct.mul_(sigmoid_g(x))


class WrongJvp(NewStyle):
  """The tangent doubled."""

  @staticmethod
  def jvp(ctx, t):
    (x,) = ctx.saved_tensors
    return 2 * t * sigmoid_g(x)


class _DoubledDerivative(torch.autograd.Function):
  """Value g(x), its own derivative doubled."""

  generate_vmap_rule = True

  @staticmethod
  def forward(x):
    return sigmoid_g(x)

  @staticmethod
  def setup_context(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])

  @staticmethod
  def backward(ctx, ct):
    (x,) = ctx.saved_tensors
    s = torch.sigmoid(ALPHA * x)
    return ct * 2 * ALPHA**2 * s * (1 - s) * (1 - 2 * s)


class WrongSecond(NewStyle):
  @staticmethod
  def backward(ctx, ct):
    (x,) = ctx.saved_tensors
    return ct * _DoubledDerivative.apply(x)


class Detached(NewStyle):
  """g of the detached input: first order right, the gradient not differentiable where g' ≠ 0."""

  @staticmethod
  def backward(ctx, ct):
    (x,) = ctx.saved_tensors
    return (ct * sigmoid_g(x.detach())).detach()


class WrongBatching(NewStyle):
  """A hand-written vmap rule that thresholds at x > 0.5."""

  generate_vmap_rule = False

  @staticmethod
  def vmap(info, in_dims, x):
    return (x > 0.5).to(x.dtype), in_dims[0]


class OldStyleIgnoresCotangent(torch.autograd.Function):
  """Old style (forward(ctx, x)) whose backward returns g(x) and drops the cotangent."""

  @staticmethod
  def forward(ctx, x):
    ctx.save_for_backward(x)
    return heaviside(x)

  @staticmethod
  def backward(ctx, ct):
    (x,) = ctx.saved_tensors
    return sigmoid_g(x) + 0 * ct


def detach_trick_in_float32(x):
  """The detach trick with the surrogate computed in float32: the spikes come back in float32."""
  s = torch.sigmoid(ALPHA * x.float())
  return heaviside(x).float() + (s - s.detach())


@torch.library.custom_op("planted_surrogates::ignores_cotangent", mutates_args=())
def custom_spike_ignoring_cotangent(x: torch.Tensor) -> torch.Tensor:
  return heaviside(x)


@custom_spike_ignoring_cotangent.register_fake
def _(x):
  return torch.empty_like(x)


def _ignoring_backward(ctx, ct):
  (x,) = ctx.saved_tensors
  return sigmoid_g(x) + 0 * ct


custom_spike_ignoring_cotangent.register_autograd(_ignoring_backward, setup_context=_custom_setup)


class _FromModule(torch.autograd.Function):
  """H forward; the backward reads the input the module saw last (its state), not a saved tensor."""

  @staticmethod
  def forward(ctx, x, module):
    ctx.module = module
    return heaviside(x)

  @staticmethod
  def backward(ctx, ct):
    return ct * sigmoid_g(ctx.module.last), None


class StatefulSpike(torch.nn.Module):
  """A layer that keeps its last input (for a reset or a plot) and whose Function's backward reads it: right
  for one call per backward, wrong for a training loop's several calls before one backward."""

  def __init__(self):
    super().__init__()
    self.last = None

  def forward(self, x):
    self.last = x.detach()
    return _FromModule.apply(x, self)


def _walks_the_buffer(x, contiguous):
  """A kernel's view of a 4-d or 5-d input as the buffer it walks: ``x.contiguous()`` first where
  ``contiguous``, else the storage read in memory order (a channels_last, permuted or sliced tensor's
  elements come out in another order)."""
  if x.dim() < 4:
    return x
  if contiguous:
    return x.contiguous()
  return x.as_strided((x.numel(),), (1,)).view(x.shape)


def buffer_kernel(contiguous):
  class BufferKernel(NewStyle):
    @staticmethod
    def forward(x):
      return heaviside(_walks_the_buffer(x, contiguous))

    @staticmethod
    def backward(ctx, ct):
      (x,) = ctx.saved_tensors
      return ct * sigmoid_g(_walks_the_buffer(x, contiguous))

  return BufferKernel


def chunked_backward(keep_tail):
  class ChunkedBackward(NewStyle):
    """The backward in chunks of 65,536 elements (torch.split); without the tail, the elements past the last
    whole chunk get no gradient."""

    @staticmethod
    def backward(ctx, ct):
      (x,) = ctx.saved_tensors
      chunks = [c * sigmoid_g(v) for c, v in zip(ct.reshape(-1).split(1 << 16), x.reshape(-1).split(1 << 16),
                                                   strict=True)]
      if not keep_tail and x.numel() > 1 << 16 and chunks[-1].numel() < 1 << 16:
        chunks[-1] = torch.zeros_like(chunks[-1])
      return torch.cat(chunks).view(x.shape)

  return ChunkedBackward


@torch.jit.script
def scripted_spike(x):
  """The detach trick as a TorchScript function (a scripted kernel, as older libraries ship them)."""
  s = torch.sigmoid(4.0 * x)
  return (x >= 0).to(x.dtype) + (s - s.detach())


#: The detach trick compiled (the backend that traces without generating code: cheap to compile).
compiled_spike = torch.compile(detach_trick, backend="aot_eager")


def _sigmoid(fn, label, **extra):
  return Candidate(name="Sigmoid", params={"alpha": ALPHA}, fn=fn, label=label, **extra)


_JVP_FIX = ("unsupported", "forward", "jvp")
CORRECT = [
    _sigmoid(NewStyle.apply, "autograd.Function with setup_context, jvp and a vmap rule", surrogate_grad=sigmoid_g),
    _sigmoid(NewStyle, "the autograd.Function class itself"),
    _sigmoid(OldStyle.apply, "autograd.Function with forward(ctx, x) and save_for_backward"),
    _sigmoid(detach_trick, "the detach trick", surrogate_grad=sigmoid_g),
    _sigmoid(Spike(), "an nn.Module wrapper"),
    _sigmoid(custom_spike, "torch.library.custom_op with register_autograd"),
    Candidate(name="LeakyRelu", params={"alpha": 0.1, "beta": 1.0}, label="LeakyRelu, piecewise-constant g",
              fn=piecewise(lambda x: torch.where(x < 0, 0.1, 1.0).to(x.dtype))),
    Candidate(name="PiecewiseLeakyRelu", params={"c": 0.01, "w": 1.0}, label="PiecewiseLeakyRelu, piecewise-constant g",
              fn=piecewise(lambda x: torch.where(x.abs() <= 1.0, 0.5, 0.01).to(x.dtype))),
    Candidate(name="Boxcar", params={"width": 2.0, "height": 0.5}, label="Boxcar, piecewise-constant g",
              fn=piecewise(lambda x: torch.where(x.abs() <= 1.0, 0.5, 0.0).to(x.dtype))),
    Candidate(name="SpikeRateEscape", params={"beta": 1.0, "slope": 25.0}, fn=escape_spike, surrogate_grad=_escape_g,
              label="SpikeRateEscape with its surrogate_grad (torch)"),
    _sigmoid(buffer_kernel(contiguous=True).apply, "a kernel on x.contiguous() for 4-d and 5-d inputs"),
    _sigmoid(chunked_backward(keep_tail=True).apply, "a backward in 65,536-element chunks and the tail"),
    _sigmoid(scripted_spike, "a TorchScript function"),
    _sigmoid(compiled_spike, "a torch.compile'd function"),
]

DEFECTIVE = [
    _sigmoid(Float32Out.apply, "forward returns float32"),
    _sigmoid(InPlaceCotangent.apply, "backward writes into the cotangent"),
    _sigmoid(WrongJvp.apply, "jvp doubles the tangent"),
    _sigmoid(WrongSecond.apply, "double backward is 2g'"),
    _sigmoid(Detached.apply, "backward detaches its result"),
    _sigmoid(WrongBatching.apply, "vmap rule thresholds at 0.5"),
    Candidate(name="SpikeRateEscape", params={"beta": 1.0, "slope": 25.0}, fn=escape_spike,
              surrogate_grad=lambda x: _escape_g(x) / 3, label="surrogate_grad leaves out a factor (torch)"),
    _sigmoid(OldStyleIgnoresCotangent.apply, "old-style backward drops the cotangent"),
    _sigmoid(detach_trick_in_float32, "detach trick returns float32"),
    _sigmoid(custom_spike_ignoring_cotangent, "custom_op backward drops the cotangent"),
    _sigmoid(StatefulSpike(), "backward reads the module's last input"),
    _sigmoid(buffer_kernel(contiguous=False).apply, "a kernel walks the buffer of 4-d and 5-d inputs"),
    _sigmoid(chunked_backward(keep_tail=False).apply, "a backward in 65,536-element chunks drops the tail"),
]

_CUSTOM_OP = {"forward_mode": ("unsupported", "forward", "torch.library has no forward-mode registration"),
              "transforms": ("unsupported", "vmap", "register_vmap")}
_OLD_STYLE = {"forward_mode": _JVP_FIX, "transforms": ("unsupported", "vmap", "setup_context")}
#: label -> {check: (status, capability, text in the message or fix)}; a check not named passes.
EXPECTED = {
    "autograd.Function with forward(ctx, x) and save_for_backward": _OLD_STYLE,
    "torch.library.custom_op with register_autograd": _CUSTOM_OP,
    "forward returns float32": {"autodiff": ("fail", None, "returns float32 for a float16 input")},
    "backward writes into the cotangent": {"autodiff": ("fail", None, "cotangent in place")},
    "jvp doubles the tangent": {"forward_mode": ("fail", None, "tangent is not g(x)·t")},
    "double backward is 2g'": {"second_order": ("fail", None, "double backward is not g'")},
    "backward detaches its result": {"second_order": ("unsupported", "second", "differentiable torch operations")},
    "vmap rule thresholds at 0.5": {"transforms": ("fail", None, "torch.func.vmap(fn) is not fn")},
    "surrogate_grad leaves out a factor (torch)": {"autodiff": ("fail", None, "not its surrogate_grad")},
    "old-style backward drops the cotangent": {**_OLD_STYLE, "autodiff": ("fail", None, "VJP is not ct·g(x)")},
    # its tangent is computed in float32 as well: off g·t beyond the float64 bound
    "detach trick returns float32": {"autodiff": ("fail", None, "returns float32 for a float16 input"),
                                     "forward_mode": ("fail", None, "tangent is not g(x)·t")},
    "custom_op backward drops the cotangent": {**_CUSTOM_OP, "autodiff": ("fail", None, "VJP is not ct·g(x)")},
    "backward reads the module's last input": {"autodiff": ("fail", None, "that step's own input"),
                                               "forward_mode": _JVP_FIX, "transforms": _OLD_STYLE["transforms"],
                                               "second_order": ("unsupported", "second", None)},
    "a kernel walks the buffer of 4-d and 5-d inputs": {"autodiff": ("fail", None, "channels_last")},
    "a torch.compile'd function": {"second_order": ("unsupported", "second", "torch.compile'd function has no double")},
    "a backward in 65,536-element chunks drops the tail": {"autodiff": ("fail", None, "1,060,921-element")},
}


def _np_escape_g(x):
  return 25.0 * np.exp(-np.abs(x - 1.0))


def _np_escape_vjp(x, ct):
  return (ct * _np_escape_g(x)).astype(x.dtype)


def numpy_escape(sg, label):
  """A NumPy-bridged SpikeRateEscape (its own forward and vjp) declaring ``sg`` as its surrogate_grad."""
  return Candidate(name="SpikeRateEscape", params={"beta": 1.0, "slope": 25.0}, backend="numpy", label=label,
                   forward=lambda x: (x >= 0).astype(x.dtype), vjp=_np_escape_vjp, surrogate_grad=sg)


NUMPY_CORRECT = numpy_escape(_np_escape_g, "NumPy bridge, surrogate_grad right")
NUMPY_WRONG_SG = numpy_escape(lambda x: _np_escape_g(x) / 3, "NumPy bridge, surrogate_grad leaves out a factor")


# ---- NaN inputs apart, repeatability ---------------------------------------------------------------
def validating(fn):
  """A layer that validates its input, as data-checking libraries do: raises on a NaN membrane potential."""

  def checked(x):
    if torch.isnan(x).any():
      raise ValueError("the membrane potential holds NaN")
    return fn(x)

  return checked


def _overflowing_g(x):
  e = torch.exp(-ALPHA * x)  # overflows in float16 below x = -2.77: inf / inf = NaN
  return ALPHA * e / (1 + e) ** 2


VALIDATING = _sigmoid(validating(NewStyle.apply), "raises on NaN inputs, right elsewhere")
VALIDATING_OVERFLOW = _sigmoid(validating(new_style(_overflowing_g).apply),
                               "raises on NaN inputs, and its g overflows to NaN in float16")

#: Unseeded: another draw at every call, in every run.
_NOISE = np.random.default_rng()


def numpy_sigmoid(noisy, label):
  """A NumPy-bridged Sigmoid(4); where ``noisy``, its gradient carries a few ulp of noise that changes from
  call to call (a parallel reduction's order, say)."""

  def vjp(x, ct):
    s = 1 / (1 + np.exp(-ALPHA * np.asarray(x, np.float64)))
    g = ALPHA * s * (1 - s)
    if noisy:
      g = g * (1 + _NOISE.integers(-2, 3, g.shape) * np.finfo(np.float64).eps)
    return (ct * g).astype(x.dtype)

  return Candidate(name="Sigmoid", params={"alpha": ALPHA}, backend="numpy", label=label, vjp=vjp,
                   forward=lambda x: (np.asarray(x) >= 0).astype(x.dtype))


NUMPY_DETERMINISTIC = numpy_sigmoid(False, "NumPy Sigmoid, deterministic")
NUMPY_NOISY = numpy_sigmoid(True, "NumPy Sigmoid, a few ulp of noise from call to call")


def _staircase_g(x):
  return sigmoid_g(x.half()).to(x.dtype)  # x and g rounded to float16: a step function at its resolution


#: An honest candidate whose g is a staircase (computed in float16): adaptive quadrature cannot converge on it.
STAIRCASE = _sigmoid(new_style(_staircase_g).apply, "g computed in float16: a staircase at float16 resolution")
