"""The layer-candidate protocol: a spiking layer (JAX or torch) judged through time against the reference LIF.

A layer candidate is a :class:`LayerCandidate` (or a mapping / object with its fields and ``kind="layer"``,
or ``run`` and ``config``). It says which point of the settings grid (:class:`surrogates.LIFConfig`) the
layer's documentation states, where each setting is documented, which reference surrogate its spike
function mirrors, which parameters it declares learnable, and how to run it::

    import snntorch, torch
    import surrogates
    from surrogates import LIFConfig
    from surrogates._lif_config import BetaMap, FireFrom, MembraneOut, ResetGrad, ResetWhen, SpikeForward
    from verification.core.layer import LayerCandidate

    def run(x, state0, params):                 # torch tensors: x [T, batch, neurons], LIFState, LIFParams
      layer = snntorch.Leaky(beta=params.beta, threshold=params.theta, spike_grad=snntorch.surrogate.atan(2.0))
      mem, spikes, membrane = state0.v, [], []
      for xt in x:
        s, mem = layer(xt, mem)
        spikes.append(s); membrane.append(mem)
      return torch.stack(spikes), torch.stack(membrane)

    LAYERS = [LayerCandidate(
        name="snntorch.Leaky", run=run, surrogate=surrogates.Arctan(alpha=2.0),
        config=LIFConfig(beta_map=BetaMap.CLAMP_0_1, spike_forward=SpikeForward.GT,
                         reset_when=ResetWhen.NEXT_AFTER_LEAK, reset_grad=ResetGrad.DETACHED,
                         membrane_out=MembraneOut.PRE_RESET),
        citations={"reset_grad": "snntorch/_neurons/neurons.py L102: 'Generates detached reset signal'"},
        learnable=frozenset())]

``run(x, state0, params) -> (spikes, membrane)`` takes the input ``[T, batch, neurons]``, the initial state
(:class:`surrogates.LIFState`: ``v``, ``i``) and the parameters in the reference's names
(:class:`surrogates.LIFParams`; ``beta`` and ``alpha_syn`` raw, in the library's own parametrisation as
``config.beta_map`` says: τ for a library that stores τ), all as arrays of the candidate's framework
(torch tensors or JAX arrays) in ``dtype``; the adapter maps them onto the library's layer. The harness
differentiates ``L = Σ a·spikes + b·membrane`` through ``run``'s arguments by the framework's autodiff,
unless the candidate gives ``gradients(x, state0, params, a, b) -> {name: dL/dname}`` (names: ``x``,
``v``, ``i`` and the ``LIFParams`` fields; a missing name or None is "no gradient"), which a layer whose
parameters live in a module needs (read ``.grad`` and map it back: dL/dτ, not dL/dβ, for a τ library).

``with_surrogate(g) -> run`` (optional) builds the same layer with a spike function whose forward is the
library's and whose derivative is ``g(u)`` (a function of framework arrays, u the library's surrogate
argument): the probe checks use it with g ≡ 0, g ≡ c and an asymmetric g.

How a candidate's code is called by the checks is :class:`LayerEvaluator`: every call is ``@recorded``
(:mod:`verification.core.tape`), with NumPy arrays in and out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np

from surrogates import LIFConfig, LIFParams, LIFState, Surrogate
from verification.core.errors import CandidateError
from verification.core.tape import recorded

Backend = Literal["jax", "torch"]
#: The names a gradient is reported under: the input, the initial state, then the parameters.
GRADIENT_NAMES = ("x", "v", "i", *LIFParams._fields)

#: The probe surrogates (derivatives g(u) written for any array module ``xp``): name -> g.
PROBES: dict[str, Callable[[Any, Any], Any]] = {
  "zero": lambda u, xp: 0.0 * u,
  "const_0.37": lambda u, xp: 0.0 * u + 0.37,
  "const_0.61": lambda u, xp: 0.0 * u + 0.61,
  "asym": lambda u, xp: xp.exp(-u * u) * (1.0 + 0.3 * u),
}


@dataclasses.dataclass(frozen=True)
class LayerCandidate:
  """One spiking layer at one option set, with its documented settings (see the module)."""

  name: str
  run: Callable[..., Any]
  config: LIFConfig
  #: The reference surrogate the layer's spike function mirrors (the library's own at its parameters).
  surrogate: Surrogate
  #: The parameter values it is checked at, in the reference's names (raw β in the library's parametrisation).
  params: LIFParams = LIFParams()  # noqa: RUF009  (an immutable NamedTuple)
  #: Where each documented setting comes from: a ``LIFConfig`` field (or an option name) -> a citation
  #: (file and line, docstring, page).
  citations: Mapping[str, str] = dataclasses.field(default_factory=dict)
  #: The ``LIFParams`` names the layer declares learnable (trainable by default, or by the option set).
  learnable: frozenset[str] = frozenset()
  #: The ``LIFParams`` names the checks may vary (θ and v_reset over the grid) where the layer takes them.
  varies: frozenset[str] = frozenset({"theta", "v_reset"})
  #: The parts of the initial state the layer accepts ("v", "i"); the others are held at 0 in the checks.
  takes_state: frozenset[str] = frozenset({"v", "i"})
  #: The ``LIFParams`` names the layer's run uses (None: all of them). A JAX run is differentiated in every
  #: parameter passed in, and one it never reads (a bias the layer has not) gets a zero gradient that is not
  #: the layer's: those are left out of its gradients, as torch's unused leaves are.
  takes_params: frozenset[str] | None = None
  backend: Backend | None = None
  #: The dtype the layer computes in: "float64" where it allows, "float32" where it computes spikes in
  #: float32 (judged at float32 tolerances, and the results say so).
  dtype: str = "float64"
  gradients: Callable[..., Any] | None = None
  with_surrogate: Callable[[Callable[[Any], Any]], Callable[..., Any]] | None = None
  label: str = ""
  #: Free-form notes shown with the results (library, version, the call that built it).
  notes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  kind: str = "layer"

  def __post_init__(self) -> None:
    if not isinstance(self.name, str) or not self.name:
      raise TypeError(f"name={self.name!r}: expected the layer's name (a string)")
    if not callable(self.run):
      raise TypeError(f"{self.name}: run={self.run!r}: expected run(x, state0, params) -> (spikes, membrane)")
    if not isinstance(self.config, LIFConfig):
      raise TypeError(f"{self.name}: config={self.config!r}: expected a surrogates.LIFConfig")
    if not isinstance(self.surrogate, Surrogate):
      raise TypeError(f"{self.name}: surrogate={self.surrogate!r}: expected a reference surrogate instance")
    if not isinstance(self.params, LIFParams):
      object.__setattr__(self, "params", LIFParams(**dict(self.params)))
    state = frozenset(self.takes_state)
    if state - {"v", "i"}:
      raise ValueError(f"{self.name}: takes_state={sorted(state)}: expected a subset of {{'v', 'i'}}")
    object.__setattr__(self, "takes_state", state)
    for field in ("learnable", "varies"):
      names = frozenset(getattr(self, field))
      unknown = sorted(names - set(LIFParams._fields))
      if unknown:
        raise ValueError(f"{self.name}: {field} names {unknown}, not parameters of LIFParams {LIFParams._fields}")
      object.__setattr__(self, field, names)
    if self.dtype not in ("float32", "float64"):
      raise ValueError(f"{self.name}: dtype={self.dtype!r}: expected 'float32' or 'float64'")
    for field in ("gradients", "with_surrogate"):
      value = getattr(self, field)
      if value is not None and not callable(value):
        raise TypeError(f"{self.name}: {field}={value!r}: expected a callable or None")
    if self.backend is None:
      from verification.core import torch_bridge

      object.__setattr__(self, "backend", "torch" if torch_bridge.is_torch_callable(self.run) else "jax")
    if self.backend not in ("jax", "torch"):
      raise ValueError(f"{self.name}: backend={self.backend!r}: expected 'jax' or 'torch'")
    object.__setattr__(self, "citations", {str(k): str(v) for k, v in dict(self.citations).items()})
    object.__setattr__(self, "notes", dict(self.notes))
    if not self.label:
      object.__setattr__(self, "label", self.name)

  # What a result names as the candidate's "parameters".
  @property
  def params_json(self) -> dict[str, Any]:
    return {k: _plain(v) for k, v in self.params._asdict().items()}


def _plain(v: Any) -> Any:
  a = np.asarray(v, np.float64)
  return float(a) if a.ndim == 0 else a.tolist()


_FIELDS = tuple(f.name for f in dataclasses.fields(LayerCandidate))


def looks_like_layer(obj: Any) -> bool:
  """A LayerCandidate, or a mapping / object with ``run`` and ``config`` (or ``kind == "layer"``)."""
  if isinstance(obj, LayerCandidate):
    return True
  try:
    get = obj.get if isinstance(obj, Mapping) else lambda k, d=None: getattr(obj, k, d)
    return get("kind") == "layer" or (get("run") is not None and isinstance(get("config"), LIFConfig))
  except Exception:  # a property that raises: not something we can read
    return False


def as_layer(obj: Any) -> LayerCandidate:
  """Normalises a mapping or object following the protocol (raises TypeError/ValueError naming the field)."""
  if isinstance(obj, LayerCandidate):
    return obj
  get = obj.get if isinstance(obj, Mapping) else lambda k, d=None: getattr(obj, k, d)
  missing = [k for k in ("name", "run", "config", "surrogate") if get(k) is None]
  if missing:
    raise TypeError(f"not a layer candidate: {obj!r:.200} has no {', '.join(missing)}")
  return LayerCandidate(**{k: get(k) for k in _FIELDS if get(k) is not None})


# -------------------------------------------------------------------------------------------------
# What the judge knows of a layer candidate
# -------------------------------------------------------------------------------------------------


def layer_judged_fields(c: LayerCandidate) -> dict[str, Any]:
  """The data of a layer candidate the checks read besides its code, as JSON values (the judge process
  rebuilds a stand-in from them: :func:`layer_stand_in`). A surrogate that is not a registered class is
  ``"unregistered"``: its code would have to run in the judge, so the candidate is judged in its worker."""
  import json

  import surrogates

  cls = type(c.surrogate)
  registered = surrogates.REGISTRY.get(cls.__name__) is cls
  fields = {"kind": "layer", "label": c.label, "name": c.name, "params": c.params_json, "notes": dict(c.notes),
            "config": c.config.settings(),
            "surrogate": {"class": cls.__name__, "params": dict(c.surrogate.params)} if registered else None,
            "declaration": None if registered else "unregistered",
            "learnable": sorted(c.learnable), "varies": sorted(c.varies), "takes_state": sorted(c.takes_state),
            "dtype": c.dtype, "backend": c.backend, "citations": dict(c.citations),
            "has": [f for f in ("gradients", "with_surrogate") if getattr(c, f) is not None]}
  return json.loads(json.dumps(fields, default=repr))


def _not_here(*args: Any, **kwargs: Any) -> Any:
  raise RuntimeError("the judge process called a layer candidate's code: a check ran it outside a recorded call "
                     "(verification.core.tape)")


def layer_stand_in(fields: Mapping[str, Any]) -> LayerCandidate:
  """The layer candidate as the judge process sees it: its data, and callables that raise if called."""
  import surrogates
  from surrogates import _lif_config

  config = LIFConfig(**{name: type(getattr(LIFConfig(), name))(value) for name, value in fields["config"].items()})
  del _lif_config
  s = fields["surrogate"]
  has = set(fields.get("has", ()))
  return LayerCandidate(
    name=fields["name"], run=_not_here, config=config,
    surrogate=surrogates.REGISTRY[str(s["class"])](**dict(s["params"])), params=LIFParams(**fields["params"]),
    citations=fields.get("citations") or {}, learnable=frozenset(fields["learnable"]),
    varies=frozenset(fields["varies"]), takes_state=frozenset(fields["takes_state"]), backend=fields["backend"],
    dtype=fields["dtype"], gradients=_not_here if "gradients" in has else None,
    with_surrogate=_not_here if "with_surrogate" in has else None, label=fields["label"],
    notes=fields.get("notes") or {})


# -------------------------------------------------------------------------------------------------
# Calling the candidate: NumPy in, NumPy out, every call recorded
# -------------------------------------------------------------------------------------------------


class LayerEvaluator:
  """Runs a layer candidate's code for the checks (``tape``: record, replay or None, see the tape module).

  Arrays cross as NumPy float64 (the inputs are cast to the candidate's dtype here, the outputs back
  to float64 exactly); whatever the candidate raises or returns wrongly is a :class:`CandidateError`
  or the exception itself, never a harness crash.
  """

  def __init__(self, candidate: LayerCandidate, tape: Any = None):
    self.candidate = candidate
    self.tape = tape
    self._runs: dict[str, Any] = {}
    self._jitted: dict[tuple[str, str], Any] = {}

  # -- the framework side --------------------------------------------------------------------
  def _run_fn(self, probe: str) -> Callable[..., Any]:
    """The layer's run (``probe`` "own"), or the one ``with_surrogate`` builds for a probe (built once)."""
    c = self.candidate
    if probe == "own":
      return c.run
    if c.with_surrogate is None:
      raise CandidateError(f"{c.label}: the layer takes no custom surrogate (no with_surrogate)")
    if probe not in self._runs:
      xp = _xp(c.backend)
      g = PROBES[probe]
      self._runs[probe] = c.with_surrogate(lambda u: g(u, xp))
    return self._runs[probe]

  def _jax_call(self, what: str, probe: str, fn: Callable[..., Any], *args: Any) -> Any:
    """A JAX layer's function compiled once per probe (a scan traced again at every eager call would be
    compiled again); a layer that cannot be traced (Python control flow on values) runs eagerly."""
    import jax

    key = (what, probe)
    jitted = self._jitted.get(key)
    if jitted is None:
      jitted = self._jitted[key] = jax.jit(fn)
    if jitted is not False:
      try:
        return jitted(*args)
      except (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError,
              jax.errors.TracerArrayConversionError, jax.errors.TracerIntegerConversionError):
        self._jitted[key] = False
    return fn(*args)

  def _inputs(self, x: np.ndarray, v: np.ndarray, i: np.ndarray, params: Mapping[str, Any]) -> tuple[Any, ...]:
    to = _to_framework(self.candidate.backend, self.candidate.dtype)
    return to(x), LIFState(to(v), to(i)), LIFParams(**{k: to(np.asarray(params[k])) for k in LIFParams._fields})

  def _outputs(self, out: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    label = self.candidate.label
    if not isinstance(out, tuple | list) or len(out) != 2:
      raise CandidateError(f"{label}: run returned {type(out).__name__}, expected (spikes, membrane)")
    arrays = []
    for what, a in zip(("spikes", "membrane"), out, strict=True):
      a = _to_numpy(a)
      if a.shape != shape:
        raise CandidateError(f"{label}: run returned {what} of shape {a.shape}, expected {shape} (the input's)")
      if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer) and a.dtype != bool:
        raise CandidateError(f"{label}: run returned {what} of dtype {a.dtype}, expected numbers")
      arrays.append(a.astype(np.float64))
    return arrays[0], arrays[1]

  @recorded
  def forward(self, probe: str, x: np.ndarray, v: np.ndarray, i: np.ndarray, params: dict) -> tuple:
    """(spikes, membrane, the dtype the spikes came in) of the layer (``probe``: "own" or a PROBES name)."""
    run = self._run_fn(probe)
    args = self._inputs(x, v, i, params)
    with _no_grad(self.candidate.backend):
      out = self._jax_call("forward", probe, run, *args) if self.candidate.backend == "jax" else run(*args)
    dtype = str(getattr(out[0], "dtype", "?")).replace("torch.", "") if isinstance(out, tuple | list) and out else "?"
    s, m = self._outputs(out, x.shape)
    return s, m, dtype

  @recorded
  def vjp(self, probe: str, x: np.ndarray, v: np.ndarray, i: np.ndarray, params: dict, a: np.ndarray,
          b: np.ndarray) -> dict:
    """dL/d(x, v, i, each parameter) for L = Σ a·spikes + b·membrane; a name absent: no gradient."""
    got = self._vjp(probe, x, v, i, params, a, b)
    keep = self.candidate.takes_params
    return got if keep is None else {k: g for k, g in got.items() if k in ("x", "v", "i") or k in keep}

  def _vjp(self, probe: str, x: np.ndarray, v: np.ndarray, i: np.ndarray, params: dict, a: np.ndarray,
           b: np.ndarray) -> dict:
    c = self.candidate
    run = self._run_fn(probe)
    if c.gradients is not None and probe == "own":
      xs, state, ps = self._inputs(x, v, i, params)
      to = _to_framework(c.backend, c.dtype)
      got = c.gradients(xs, state, ps, to(a), to(b))
      if not isinstance(got, Mapping):
        raise CandidateError(f"{c.label}: gradients returned {type(got).__name__}, expected a mapping name -> array")
      return {str(k): _to_numpy(g).astype(np.float64) for k, g in got.items() if g is not None}
    if c.backend == "torch":
      return self._torch_vjp(run, x, v, i, params, a, b)
    return self._jax_vjp(run, probe, x, v, i, params, a, b)

  def _torch_vjp(self, run, x, v, i, params, a, b) -> dict:
    import torch

    xs, state, ps = self._inputs(x, v, i, params)
    leaves = {"x": xs, "v": state.v, "i": state.i, **ps._asdict()}
    for t in leaves.values():
      t.requires_grad_(True)
    with torch.enable_grad():
      s, m = run(xs, state, ps)
      shape = tuple(x.shape)
      for what, o in (("spikes", s), ("membrane", m)):
        if not isinstance(o, torch.Tensor) or tuple(o.shape) != shape:
          raise CandidateError(f"{self.candidate.label}: run returned {what} that is not a tensor of shape {shape}")
      to = _to_framework("torch", self.candidate.dtype)
      loss = (s * to(a).to(s.dtype)).sum() + (m * to(b).to(m.dtype)).sum()
      if not loss.requires_grad:
        return {}
      grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    return {k: g.detach().cpu().numpy().astype(np.float64) for k, g in zip(leaves, grads, strict=True) if g is not None}

  def _jax_vjp(self, run, probe, x, v, i, params, a, b) -> dict:
    import jax
    import jax.numpy as jnp

    xs, state, ps = self._inputs(x, v, i, params)

    def grads(xs, state, ps, a, b):
      def loss(xs, state, ps):
        s, m = run(xs, state, ps)
        if jnp.shape(s) != xs.shape or jnp.shape(m) != xs.shape:
          raise CandidateError(f"{self.candidate.label}: run returned spikes of shape {jnp.shape(s)} and membrane "
                               f"of shape {jnp.shape(m)}, expected {xs.shape} (the input's)")
        return jnp.sum(jnp.asarray(s) * a) + jnp.sum(jnp.asarray(m) * b)
      return jax.grad(loss, argnums=(0, 1, 2))(xs, state, ps)

    to = _to_framework("jax", self.candidate.dtype)
    gx, gs, gp = self._jax_call("vjp", probe, grads, xs, state, ps, to(a), to(b))
    out = {"x": gx, "v": gs.v, "i": gs.i, **gp._asdict()}
    return {k: np.asarray(g, np.float64) for k, g in out.items() if g is not None}


def _xp(backend: str) -> Any:
  if backend == "torch":
    import torch

    return torch
  import jax.numpy as jnp

  return jnp


def _to_framework(backend: str, dtype: str) -> Callable[[np.ndarray], Any]:
  if backend == "torch":
    import torch

    tdtype = getattr(torch, dtype)
    return lambda a: torch.tensor(np.asarray(a, np.float64), dtype=tdtype)
  import jax.numpy as jnp

  return lambda a: jnp.asarray(np.asarray(a, np.float64), dtype)


def _to_numpy(a: Any) -> np.ndarray:
  if hasattr(a, "detach"):
    a = a.detach().cpu()
    if str(a.dtype) == "torch.bfloat16":
      a = a.float()
    return a.numpy()
  return np.asarray(a)


class _no_grad:
  def __init__(self, backend: str):
    self.backend = backend
    self.inner = None

  def __enter__(self) -> None:
    if self.backend == "torch":
      import torch

      self.inner = torch.no_grad()
      self.inner.__enter__()

  def __exit__(self, *exc: Any) -> None:
    if self.inner is not None:
      self.inner.__exit__(*exc)


__all__ = ["GRADIENT_NAMES", "PROBES", "LayerCandidate", "LayerEvaluator", "as_layer", "layer_judged_fields",
           "layer_stand_in", "looks_like_layer"]
