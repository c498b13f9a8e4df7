"""What every library's layer adapter shares: a layer option as data, turned into a layer candidate.

A :class:`LayerOption` is one setting of a published LIF layer (its defaults, or one option changed):
the configuration its DOCUMENTATION states (a :class:`surrogates.LIFConfig`, each stated field cited by
file and line of the installed version, each field the documentation does not state marked
:data:`CODE`, read from the code), the reference parameters it runs at, the reference surrogate its
default spike function mirrors, and what the documentation calls learnable. :func:`layer_candidate`
makes it a :class:`verification.core.layer.LayerCandidate` (the protocol the layer checks judge) from
the adapter's run.

An adapter's run is ``run(x, v0, params, g) -> (spikes, membrane, leaves)`` in the library's framework:
``params`` a dict in the reference's names, ``g`` None (the library's own surrogate) or a probe
derivative ``g(u)`` to install through the library's own custom-surrogate hook, and ``leaves`` the
tensors whose gradient is a parameter's (a module's ``nn.Parameter``, or the tensor passed in), in the
reference's names. Every run builds a fresh layer and feeds ``v0`` explicitly, so no state is carried
between runs (stateful modules are never reused).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Literal

from surrogates._lif_config import LIFConfig

Framework = Literal["torch", "jax"]

#: The citation of a setting the documentation does not state: it is read from the code.
CODE = "not stated in the documentation; read from the code"


@dataclasses.dataclass(frozen=True)
class LayerOption:
  """One setting of a library's layer and the configuration its documentation states."""

  library: str
  version: str
  layer: str
  #: The option set, as the library's keyword arguments that differ from its defaults ({} = defaults).
  option: Mapping[str, Any]
  #: The configuration the documentation states, with the fields it does not state filled from the code.
  documented: LIFConfig
  #: field name (or "learnable NAME") -> "file:line: 'quoted documentation'" (or :data:`CODE`).
  cites: Mapping[str, str]
  #: The reference parameters this option runs at (β's raw value in the library's parametrisation, θ, ...).
  params: Mapping[str, float]
  #: The reference surrogate the library's default spike function mirrors: (name, params).
  surrogate: tuple[str, Mapping[str, float]]
  #: Reference parameter names the documentation calls learnable for this option.
  learnable: tuple[str, ...] = ()
  #: Reference parameter names the checks may vary (θ, v_reset) where the layer takes them as values.
  varies: tuple[str, ...] = ("theta", "v_reset")
  framework: Framework = "torch"
  #: The dtype the layer computes in ("float64" where the library allows it).
  dtype: str = "float64"
  #: Facts worth showing with the results (a float32 spike, a clamp, a parameter the layer cannot take).
  note: str = ""

  @property
  def label(self) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in self.option.items())
    return f"{self.library}.{self.layer}({args})"


Run = Callable[..., tuple[Any, Any, Mapping[str, Any]]]


def layer_candidate(option: LayerOption, run: Run, accepts_probe: bool = True) -> Any:
  """The option as a :class:`~verification.core.layer.LayerCandidate`: ``run`` feeds the initial membrane,
  ``gradients`` reads the module's own parameters' gradients, ``with_surrogate`` installs a probe g."""
  import surrogates
  from verification.core.layer import LayerCandidate

  def outputs(g):
    return lambda x, state0, params: run(x, state0.v, params._asdict(), g)[:2]

  name, sparams = option.surrogate
  return LayerCandidate(
      name=f"{option.library}.{option.layer}", label=option.label, run=outputs(None), config=option.documented,
      surrogate=surrogates.REGISTRY[name](**sparams), params=dict(option.params), citations=dict(option.cites),
      learnable=frozenset(option.learnable), varies=frozenset(option.varies), takes_state=frozenset({"v"}),
      takes_params=frozenset(option.params), backend=option.framework, dtype=option.dtype,
      gradients=_torch_gradients(run) if option.framework == "torch" else None,
      with_surrogate=outputs if accepts_probe else None,
      notes={"library": option.library, "version": option.version, "layer": option.layer,
             "option": {k: repr(v) for k, v in option.option.items()},
             **({"note": option.note} if option.note else {})},
  )


def _torch_gradients(run: Run) -> Callable[..., dict[str, Any]]:
  """dL/d(x, v, each parameter the layer holds) for L = Σ a·spikes + b·membrane, through the module's leaves."""

  def gradients(x, state0, params, a, b):
    import torch

    x = x.detach().requires_grad_(True)
    v = state0.v.detach().requires_grad_(True)
    p = {k: t.detach().requires_grad_(True) for k, t in params._asdict().items()}
    with torch.enable_grad():
      s, m, leaves = run(x, v, p, None)
      loss = (s * a.to(s.dtype)).sum() + (m * b.to(m.dtype)).sum()
      wrt = {"x": x, "v": v, **leaves}
      grads = torch.autograd.grad(loss, list(wrt.values()), allow_unused=True)
    return {k: g for k, g in zip(wrt, grads, strict=True) if g is not None}

  return gradients


def value(t: Any) -> float:
  """A parameter the library takes as a Python float (its gradient is then none, as the library gives)."""
  return float(t.detach()) if hasattr(t, "detach") else float(t)


def torch_spike(g: Callable[[Any], Any], ge: bool) -> Any:
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


def jax_spike(g: Callable[[Any], Any], ge: bool) -> Any:
  """A JAX spike function: forward H(u) (H(0) = 1 where ``ge``), backward ``g(u)`` (``jax.custom_vjp``)."""
  import jax
  import jax.numpy as jnp

  @jax.custom_vjp
  def spike(u):
    return jnp.where(u >= 0 if ge else u > 0, 1.0, 0.0).astype(u.dtype)

  spike.defvjp(lambda u: (spike(u), u), lambda u, ct: (ct * g(u),))
  return spike


def layer_cites(documented: Mapping[str, str]) -> dict[str, str]:
  """Every configuration field's citation: the documented ones as given, the others :data:`CODE`; other keys
  (``"learnable beta"``) as given."""
  return {**{f.name: documented.get(f.name, CODE) for f in dataclasses.fields(LIFConfig)}, **documented}
