"""The layer benchmark SNN libraries are usually compared with: one Linear layer and LIF neurons.

Batch B (16), N neurons (1024), T time steps (500), forward and forward + backward (the gradient of
the mean spike count with respect to the Linear layer's weight and bias), float32, on the device of
``--device``: the JAX libraries on JAX's device, the torch libraries on ``torch.device("cuda")`` with
``--device gpu`` (a library that cannot use the device is reported as not run, never timed elsewhere).
Every library gets the same weights and inputs and runs its own idiomatic loop (:data:`LOOPS`).

Neuron equations (``EQUATIONS``), with I[t] = W x[t] + b, β = 0.9, θ = 1:
u[t] = β u[t-1] + I[t] - θ s[t-1],  s[t] = H(u[t] - θ), with the SuperSpike surrogate
g(x) = 1/(100|x| + 1)² (the reference's InvSquareGrad(alpha=100); spyx ``superspike(k=100)``,
snntorch ``fast_sigmoid(slope=100)``, norse ``method="super", alpha=100``). Where the libraries differ:
spyx emits s[t-1] at step t (its LIF spikes before it integrates); snntorch detaches the reset from the
graph (its default); norse integrates u ← u + (dt/τ)(i - u) and resets before the leak, so it is given
dt/τ = 1-β, the input i = I/(1-β) and a reset of θ/β (a ``reset_method`` of its parameters). The spikes
of all four agree exactly on the same data (``tests/test_benchmarks.py``).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

REFERENCE = "surrogates"
BETA, THRESHOLD, SLOPE = 0.9, 1.0, 100.0
PASSES = ("fwd", "fwd+bwd")
EQUATIONS = (
    "Equations: I[t] = W x[t] + b; u[t] = β u[t-1] + I[t] - θ s[t-1]; s[t] = H(u[t] - θ); β = 0.9, θ = 1;"
    " SuperSpike surrogate g(x) = 1/(100|x| + 1)²; loss (fwd+bwd) = mean spike count, gradient in W and b."
    " spyx emits s[t-1] at step t; snntorch detaches the reset; norse is given dt/τ = 1-β, input I/(1-β) and a"
    " reset of θ/β before its leak (the same u)."
)
LOOPS = {
    REFERENCE: "lax.scan over Linear (weight stored in, out) and the LIF step",
    "spyx": "spyx.nn.run (lax.scan) over Sequential(nnx.Linear, spyx.nn.LIF)",
    "snntorch": "Python loop: nn.Linear then snn.Leaky per step",
    "norse": "nn.Linear on the whole sequence, then a Python loop of LIFBoxCell",
}
PEERS = ("spyx", "snntorch", "norse")
TORCH = ("snntorch", "norse")
#: Least duration of a timed batch of passes (back to back, one wait at the end), at most MAX_REPEAT passes.
MIN_BATCH_S = 10e-3
MAX_REPEAT = 100


class NotRun(Exception):
  """The library cannot run on the requested device (the reason is the message)."""


@dataclasses.dataclass(frozen=True)
class LayerCase:
  library: str
  surrogate: str
  neurons: int
  steps: int
  batch: int
  pass_: str
  #: The --device of the run: cpu, gpu or tpu.
  device: str = "cpu"

  @property
  def id(self) -> str:
    return f"layer-{self.library}:{self.surrogate}-N{self.neurons}-T{self.steps}-B{self.batch}-{self.pass_}"


def cases(cfg: Any) -> Iterator[Any]:
  """The reference (InvSquareGrad, and the surrogates of ``--only``) and, with ``--peers``, each peer."""
  names = ["InvSquareGrad", *(n for n in _only(cfg) if n != "InvSquareGrad")]
  for n in cfg.layer_neurons:
    for t in cfg.layer_steps:
      for p in PASSES:
        for name in names:
          c = LayerCase(REFERENCE, name, n, t, cfg.layer_batch, p, cfg.device)
          yield pytest.param(c, id=c.id)
        for lib in PEERS if cfg.peers else ():
          c = LayerCase(lib, "InvSquareGrad", n, t, cfg.layer_batch, p, cfg.device)
          yield pytest.param(c, id=c.id)


def _only(cfg: Any) -> list[str]:
  from benchmarks._harness import selected_names

  return selected_names(cfg.only) if cfg.only else []


def problem(neurons: int, steps: int, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
  """Shared float32 data: input spikes x (T, B, N) with rate 0.3, W (N, N) and b (N,) scaled so that
  about a tenth of the neurons spike per step."""
  rng = np.random.default_rng(seed)
  x = (rng.random((steps, batch, neurons)) < 0.3).astype(np.float32)
  w = rng.uniform(-1.0, 1.0, (neurons, neurons)).astype(np.float32) * np.float32(1.5 / np.sqrt(neurons))
  b = np.full(neurons, 0.12, np.float32)
  return {"x": x, "w": w, "b": b}


# ---- builders: each returns a Pass: run() enqueues one pass, wait(out) waits for it ----------------------


@dataclasses.dataclass
class Pass:
  """One pass of a layer: ``run()`` enqueues it and returns its output, ``wait(out)`` blocks until the device
  has finished it; calling the pass does both and returns the output. ``device``/``device_kind``: where it runs."""

  run: Callable[[], Any]
  wait: Callable[[Any], Any]
  device: str
  device_kind: str

  def __call__(self) -> Any:
    out = self.run()
    self.wait(out)
    return out


def jax_device(case: LayerCase) -> Any:
  """JAX's first device of the run's platform."""
  import jax

  return jax.devices(case.device)[0]


def torch_device(case: LayerCase) -> tuple[Any, Callable[[Any], Any], str]:
  """(torch device, wait, its name) for ``case.device``; :class:`NotRun` where torch cannot use it."""
  import torch

  if case.device == "cpu":
    return torch.device("cpu"), lambda out: None, "cpu"
  if case.device != "gpu":
    raise NotRun(f"torch has no {case.device} backend")
  if not torch.cuda.is_available():
    raise NotRun(f"torch {torch.__version__} finds no CUDA device (built with CUDA {torch.version.cuda})")
  return torch.device("cuda"), lambda out: torch.cuda.synchronize(), torch.cuda.get_device_name(0)


def reference(case: LayerCase, data: dict[str, np.ndarray]) -> Callable[[], Any]:
  """The reference surrogate in a ``lax.scan`` over time, the Linear layer inside the step with its
  weight stored (in, out), as flax and spyx store it.

  The layout matters on XLA:CPU: ``x_t @ w.T`` with a torch-style (out, in) weight is a dot with a
  transposed right operand (``rhs_contracting_dims={1}``) in every step, which measured 1.5-2x slower
  than the same product on an (in, out) weight at N = 1024, B = 16; that, not the surrogate, was the
  reference's forward gap to spyx at T = 100.
  """
  import jax
  import jax.numpy as jnp

  import surrogates

  spike = surrogates.REGISTRY[case.surrogate]()
  dev = jax_device(case)
  kernel, b, x = (jax.device_put(a, dev) for a in (data["w"].T.copy(), data["b"], data["x"]))

  def run(kernel, b, x):
    def step(carry, x_t):
      u, s = carry
      u = BETA * u + (x_t @ kernel + b) - THRESHOLD * s
      s = spike(u - THRESHOLD)
      return (u, s), s

    zeros = jnp.zeros((x.shape[1], kernel.shape[1]), x.dtype)
    return jax.lax.scan(step, (zeros, zeros), x)[1]

  return _jax_pass(run, case.pass_, (kernel, b, x), dev)


def _jax_pass(run: Callable, pass_: str, args: tuple, dev: Any) -> Pass:
  import jax

  if pass_ == "fwd":
    fn = jax.jit(run)
  else:
    fn = jax.jit(jax.grad(lambda w, b, x: run(w, b, x).mean(), argnums=(0, 1)))
  compiled = fn.lower(*args).compile()
  return Pass(lambda: compiled(*args), jax.block_until_ready, dev.platform, dev.device_kind)


def spyx(case: LayerCase, data: dict[str, np.ndarray]) -> Pass:
  import jax
  import jax.numpy as jnp
  import spyx as sx
  from flax import nnx

  n = case.neurons
  model = sx.nn.Sequential(
      nnx.Linear(n, n, rngs=nnx.Rngs(0)),
      sx.nn.LIF((n,), beta=BETA, threshold=THRESHOLD, activation=sx.axn.superspike(k=SLOPE), rngs=nnx.Rngs(0)),
  )
  model.layers[0].kernel[...] = jnp.asarray(data["w"].T)
  model.layers[0].bias[...] = jnp.asarray(data["b"])
  graph, params, rest = nnx.split(model, nnx.Param, ...)
  dev = jax_device(case)  # the model's arrays are on JAX's default device, the run's (JAX_PLATFORMS puts it first)
  x = jax.device_put(data["x"], dev)

  def run(params, x):
    return sx.nn.run(nnx.merge(graph, params, rest), x)[0]

  return _jax_pass_tree(run, params, x, case.pass_ != "fwd", dev)


def _jax_pass_tree(run: Callable, params: Any, x: Any, grad: bool, dev: Any) -> Pass:
  import jax

  fn = jax.jit(jax.grad(lambda p, x: run(p, x).mean()) if grad else run)
  compiled = fn.lower(params, x).compile()
  return Pass(lambda: compiled(params, x), jax.block_until_ready, dev.platform, dev.device_kind)


def _torch_linear(data: dict[str, np.ndarray], dev: Any, scale: float = 1.0):
  import torch

  n = data["w"].shape[0]
  fc = torch.nn.Linear(n, n)
  with torch.no_grad():
    fc.weight.copy_(torch.from_numpy(data["w"] * np.float32(scale)))
    fc.bias.copy_(torch.from_numpy(data["b"] * np.float32(scale)))
  return fc.to(dev), torch.from_numpy(data["x"]).to(dev)


def _torch_pass(forward: Callable[[], Any], fc: Any, pass_: str, wait: Callable[[Any], Any], name: str,
                dev: Any) -> Pass:
  import torch

  device = "gpu" if dev.type == "cuda" else dev.type
  if pass_ == "fwd":
    def once() -> Any:
      with torch.no_grad():
        return forward()
    return Pass(once, wait, device, name)

  def both() -> Any:
    fc.zero_grad(set_to_none=True)
    forward().mean().backward()
    return fc.weight.grad
  return Pass(both, wait, device, name)


def snntorch(case: LayerCase, data: dict[str, np.ndarray]) -> Pass:
  import snntorch as snn
  import torch
  from snntorch import surrogate

  dev, wait, name = torch_device(case)
  fc, x = _torch_linear(data, dev)
  lif = snn.Leaky(beta=BETA, threshold=THRESHOLD, spike_grad=surrogate.fast_sigmoid(slope=SLOPE),
                  reset_mechanism="subtract").to(dev)

  def forward() -> Any:
    mem = lif.init_leaky()
    out = []
    for t in range(x.shape[0]):
      spk, mem = lif(fc(x[t]), mem)
      out.append(spk)
    return torch.stack(out)

  return _torch_pass(forward, fc, case.pass_, wait, name, dev)


def norse(case: LayerCase, data: dict[str, np.ndarray]) -> Pass:
  import torch
  from norse.torch import LIFBoxCell, LIFBoxParameters

  def reset_subtract_before_leak(z, v, reset, th):
    """norse resets before the leak: subtracting θ/β here subtracts θ after it."""
    return v - z * (th / BETA)

  dev, wait, name = torch_device(case)
  dt = 1e-3

  def tensor(v: float) -> Any:
    return torch.as_tensor(v, dtype=torch.float32, device=dev)

  params = LIFBoxParameters(tau_mem_inv=tensor((1.0 - BETA) / dt), v_th=tensor(THRESHOLD), v_leak=tensor(0.0),
                            v_reset=tensor(0.0), method="super", alpha=tensor(SLOPE),
                            reset_method=reset_subtract_before_leak)
  fc, x = _torch_linear(data, dev, 1.0 / (1.0 - BETA))
  lif = LIFBoxCell(params, dt=dt).to(dev)

  def forward() -> Any:
    current, state, out = fc(x), None, []
    for t in range(current.shape[0]):
      spk, state = lif(current[t], state)
      out.append(spk)
    return torch.stack(out)

  return _torch_pass(forward, fc, case.pass_, wait, name, dev)


BUILDERS: dict[str, Callable[[LayerCase, dict[str, np.ndarray]], Pass]] = {
    REFERENCE: reference, "spyx": spyx, "snntorch": snntorch, "norse": norse,
}


def simulate(data: dict[str, np.ndarray]) -> np.ndarray:
  """The reference dynamics in NumPy (float64): the spikes s[t], (T, B, N)."""
  u = np.zeros(data["x"].shape[1:])
  s = np.zeros_like(u)
  out = []
  for x_t in data["x"].astype(np.float64):
    u = BETA * u + x_t @ data["w"].T.astype(np.float64) + data["b"] - THRESHOLD * s
    s = (u >= THRESHOLD).astype(np.float64)
    out.append(s)
  return np.stack(out)


class Timed:
  """A pass with the ``timed()`` the paired rounds of ``_harness`` use: a batch of ``repeat`` passes enqueued back
  to back, one wait at the end (on the last output)."""

  def __init__(self, fn: Pass) -> None:
    self.fn = fn
    self.repeat = 1

  def call(self) -> None:
    self.out = self.fn.run()

  def wait(self) -> None:
    self.fn.wait(self.out)

  def __call__(self) -> None:
    for _ in range(self.repeat):
      self.call()
    self.wait()

  def timed(self) -> float:
    from benchmarks._harness import time_batch

    return time_batch(self.call, self.wait, self.repeat)[0]


def build(case: LayerCase, data: dict[str, np.ndarray]) -> Timed:
  """The case's pass, run once; a peer that cannot be built or run on the device is skipped as not run there."""
  try:
    fn = Timed(BUILDERS[case.library](case, data))
    fn()
  except ImportError as exc:
    pytest.skip(f"{case.library} not importable: {exc}")
  except NotRun as exc:
    pytest.skip(f"not run on {case.device}: {exc}")
  except Exception as exc:
    if case.library == REFERENCE:
      raise
    pytest.skip(f"not run on {case.device}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
  return fn


def run(benchmark: Any, case: LayerCase, cfg: Any) -> dict[str, Any]:
  """Times ``case`` paired round by round, in a random order, with the reference row of its group
  (InvSquareGrad, same N, T and pass; for that row itself, a second build of it: an A/A control); each round
  a batch of passes of each, back to back with one wait (at least :data:`MIN_BATCH_S`); 3 to 30 rounds
  filling ten times ``--max-time``. Returns the extra_info it records: the median and quartiles of the
  time per pass and of the per-round ratio to the reference, the host overhead of a single pass, the device."""
  from benchmarks._harness import calibrate, host_overhead, paired_rounds, per_call, quartiles

  data = problem(case.neurons, case.steps, case.batch)
  fn = build(case, data)
  ref = build(dataclasses.replace(case, library=REFERENCE, surrogate="InvSquareGrad"), data)
  single = statistics.median([fn.timed() for _ in range(3)])
  repeat = calibrate((fn, ref), MIN_BATCH_S, MAX_REPEAT) if single < MIN_BATCH_S else 1
  fn.repeat = ref.repeat = repeat
  once = fn.timed() + ref.timed()
  rounds = cfg.rounds or int(min(30, max(3, math.ceil(10 * cfg.max_time / max(once, 1e-9)))))
  benchmark.group = f"layer-N{case.neurons}-T{case.steps}-{case.pass_}"
  batches, ref_batches = paired_rounds(benchmark, fn, ref, rounds, None)
  times = [per_call(t, repeat) for t in batches]
  q1, median, q3 = quartiles(times)
  r1, ratio, r3 = quartiles([t / r for t, r in zip(batches, ref_batches, strict=True)])
  info = {
      "layer": True, "library": case.library, "surrogate": case.surrogate, "loop": LOOPS[case.library],
      "neurons": case.neurons, "steps": case.steps, "batch": case.batch, "pass": case.pass_,
      "median_s": median, "q1_s": q1, "q3_s": q3, "ratio": ratio, "ratio_q1": r1, "ratio_q3": r3,
      "rounds": rounds, "calls_per_round": repeat, "timing": "batch", "single_call_s": single,
      "host_overhead_s": host_overhead(single, median), "device": fn.fn.device, "device_kind": fn.fn.device_kind,
      "equations": EQUATIONS,
  }
  benchmark.extra_info.update(info)
  return info
