"""What every library's layer adapter shares: a layer option as data, and its run on NumPy arrays.

A :class:`LayerOption` is one setting of a published LIF layer (its defaults, or one option changed):
the call a reader can paste, the configuration its DOCUMENTATION states (an
:class:`~surrogates._lif_config.LIFConfig`, each field that is stated cited by file and line of the
installed version, each field that is not stated marked as read from the code), the reference
parameters it runs at, the surrogate it mirrors, and what the documentation calls learnable.

A :class:`LayerCandidate` adds the run: ``forward(x, v0, params) -> (spikes, membrane)`` and
``vjp(x, v0, params, ct_s, ct_v) -> {"x", "v0", <parameter>: gradient}`` on NumPy arrays, time first
(``x`` of shape [T, batch, neurons], ``v0`` of shape [batch, neurons]). Every run builds a fresh layer
and feeds ``v0`` explicitly, so no state is carried between runs. ``probe`` replaces the library's
surrogate by a function ``g(u)`` given as a torch or JAX callable, through the library's own hook
(None where the library has none). ``received()`` lists the parameters the built layer registers as
trainable (an ``nn.Parameter`` with ``requires_grad``, an ``nnx.Param``), in the reference's names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np

from surrogates._lif_config import LIFConfig

Framework = Literal["torch", "jax"]
Arrays = dict[str, np.ndarray]

#: The fields a layer's documentation is asked about; a field it does not state is read from the code.
CODE = "not stated in the documentation; read from the code"


@dataclasses.dataclass(frozen=True)
class LayerOption:
  """One setting of a library's layer and the configuration its documentation states."""

  library: str
  layer: str
  #: The option set, as the library's keyword arguments that differ from its defaults ({} = defaults).
  option: Mapping[str, Any]
  #: The configuration the documentation states, with the fields it does not state filled from the code.
  documented: LIFConfig
  #: field name -> "file:line: quoted documentation" (or :data:`CODE`).
  cites: Mapping[str, str]
  #: The reference parameters this option runs at (β's raw value in the library's parametrisation, θ, ...).
  params: Mapping[str, float]
  #: The reference surrogate the library's default surrogate mirrors: (name, params, scale).
  surrogate: tuple[str, Mapping[str, float], float]
  #: Reference parameter names the documentation calls learnable for this option.
  learnable: tuple[str, ...] = ()
  #: Reference parameter names the run passes as differentiable tensors (learnable or not).
  differentiable: tuple[str, ...] = ()
  framework: Framework = "torch"
  #: The dtype the layer computes in ("float64" where the library allows it).
  dtype: str = "float64"
  #: Facts worth showing with the results (a float32 spike, a clamp, a parameter the layer cannot take).
  note: str = ""

  @property
  def label(self) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in self.option.items())
    return f"{self.library}.{self.layer}({args})"


#: ``run(x, v0, params, probe) -> (spikes, membrane, leaves)`` in the library's framework: ``leaves`` maps
#: reference parameter names to the tensors whose gradient is that parameter's (a module's parameter, or
#: the tensor passed in).
Run = Callable[..., tuple[Any, Any, Mapping[str, Any]]]


@dataclasses.dataclass(frozen=True)
class LayerCandidate:
  """A layer option with its run on NumPy arrays."""

  option: LayerOption
  run: Run
  #: Whether ``probe`` surrogates are accepted (the library takes a custom surrogate).
  accepts_probe: bool = True
  #: ``received(params) -> names`` of the parameters the built layer registers as trainable.
  received: Callable[[Mapping[str, float]], tuple[str, ...]] | None = None

  @property
  def label(self) -> str:
    return self.option.label

  def forward(self, x: np.ndarray, v0: np.ndarray, params: Mapping[str, float] | None = None,
              probe: Any = None) -> tuple[np.ndarray, np.ndarray]:
    if self.option.framework == "torch":
      return _torch_forward(self, x, v0, params, probe)
    return _jax_forward(self, x, v0, params, probe)

  def vjp(self, x: np.ndarray, v0: np.ndarray, ct_s: np.ndarray, ct_v: np.ndarray,
          params: Mapping[str, float] | None = None, probe: Any = None) -> Arrays:
    if self.option.framework == "torch":
      return _torch_vjp(self, x, v0, ct_s, ct_v, params, probe)
    return _jax_vjp(self, x, v0, ct_s, ct_v, params, probe)

  def _params(self, params: Mapping[str, float] | None) -> dict[str, float]:
    return {**self.option.params, **(params or {})}


def _torch_inputs(cand: LayerCandidate, x: np.ndarray, v0: np.ndarray, params: Mapping[str, float] | None):
  import torch

  dtype = getattr(torch, cand.option.dtype)
  xt = torch.tensor(np.asarray(x), dtype=dtype, requires_grad=True)
  vt = torch.tensor(np.asarray(v0), dtype=dtype, requires_grad=True)
  values = cand._params(params)
  pt = {k: (torch.tensor(float(v), dtype=dtype, requires_grad=True) if k in cand.option.differentiable else float(v))
        for k, v in values.items()}
  return xt, vt, pt


def _torch_forward(cand, x, v0, params, probe):
  import torch

  xt, vt, pt = _torch_inputs(cand, x, v0, params)
  with torch.no_grad():
    s, v, _ = cand.run(xt, vt, pt, probe)
  return s.detach().double().numpy(), v.detach().double().numpy()


def _torch_vjp(cand, x, v0, ct_s, ct_v, params, probe):
  import torch

  xt, vt, pt = _torch_inputs(cand, x, v0, params)
  s, v, leaves = cand.run(xt, vt, pt, probe)
  loss = (s * torch.as_tensor(ct_s, dtype=s.dtype)).sum() + (v * torch.as_tensor(ct_v, dtype=v.dtype)).sum()
  names = ["x", "v0", *leaves]
  wrt = [xt, vt, *leaves.values()]
  grads = torch.autograd.grad(loss, wrt, allow_unused=True)
  return {n: (np.zeros(np.shape(w.detach())) if g is None else g.detach().double().numpy())
          for n, w, g in zip(names, wrt, grads, strict=True)}


def _jax_inputs(cand, x, v0, params):
  import jax.numpy as jnp

  dtype = getattr(jnp, cand.option.dtype)
  values = cand._params(params)
  diff = {k: jnp.asarray(v, dtype) for k, v in values.items() if k in cand.option.differentiable}
  fixed = {k: float(v) for k, v in values.items() if k not in cand.option.differentiable}
  return jnp.asarray(x, dtype), jnp.asarray(v0, dtype), diff, fixed


def _jax_forward(cand, x, v0, params, probe):
  xj, vj, diff, fixed = _jax_inputs(cand, x, v0, params)
  s, v, _ = cand.run(xj, vj, {**fixed, **diff}, probe)
  return np.asarray(s, np.float64), np.asarray(v, np.float64)


def _jax_vjp(cand, x, v0, ct_s, ct_v, params, probe):
  import jax
  import jax.numpy as jnp

  xj, vj, diff, fixed = _jax_inputs(cand, x, v0, params)

  def loss(xj, vj, diff):
    s, v, leaves = cand.run(xj, vj, {**fixed, **diff}, probe)
    return jnp.sum(s * ct_s) + jnp.sum(v * ct_v)

  gx, gv, gp = jax.grad(loss, argnums=(0, 1, 2))(xj, vj, diff)
  out = {"x": np.asarray(gx, np.float64), "v0": np.asarray(gv, np.float64)}
  out.update({k: np.asarray(g, np.float64) for k, g in gp.items()})
  return out


def torch_probe(g: Callable[[Any], Any], ge: bool) -> Any:
  """A torch spike function: forward H(u) (H(0) = 1 where ``ge``, else 0) in u's dtype, backward ``g(u)``."""
  import torch

  class Probe(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u):
      ctx.save_for_backward(u)
      return (u >= 0).to(u.dtype) if ge else (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
      (u,) = ctx.saved_tensors
      return grad * g(u)

  return Probe.apply


def jax_probe(g: Callable[[Any], Any], ge: bool) -> Any:
  """A JAX spike function: forward H(u) (H(0) = 1 where ``ge``), backward ``g(u)`` (``jax.custom_vjp``)."""
  import jax
  import jax.numpy as jnp

  @jax.custom_vjp
  def spike(u):
    return jnp.where(u >= 0 if ge else u > 0, 1.0, 0.0).astype(u.dtype)

  def fwd(u):
    return spike(u), u

  def bwd(u, ct):
    return (ct * g(u),)

  spike.defvjp(fwd, bwd)
  return spike


def layer_cites(documented: Mapping[str, str]) -> dict[str, str]:
  """Every configuration field's citation: the documented ones as given, the others :data:`CODE`; other keys
  (``"learnable beta"``) as given."""
  return {**{f.name: documented.get(f.name, CODE) for f in dataclasses.fields(LIFConfig)}, **documented}
