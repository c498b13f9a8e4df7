"""The library adapters: coverage of every exported surrogate, and the parameter mapping.

These are smoke tests of the adapters (the verification engine does the real checks). Each
library's tests are skipped only when that library is not installed; braintools is part of the
test dependencies, so its tests always run there. norse, sinabs, rockpool, snnax, jaxsnn and brainpy
run on the installed library where there is one, and otherwise on the small stand-ins in
``tests/stubs`` (same module layout, the released code the adapters call).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import sys
from pathlib import Path
from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import surrogates
from verification import targets

STUBS = Path(__file__).with_name("stubs")
if str(STUBS) not in sys.path:
  sys.path.append(str(STUBS))  # after the installed packages: an installed library wins

LIBRARIES = ["braintools", "spyx", "snntorch", "spikingjelly", "norse", "sinabs", "rockpool", "snnax", "jaxsnn",
             "brainpy"]
TORCH_LIBRARIES = {"snntorch", "spikingjelly", "norse", "sinabs", "rockpool"}
#: Calls the installed versions are known to break (the engine reports them with a reproducer),
#: by "library.export": the error they raise, or None where the gradient differs from the docs.
KNOWN_DEFECTS: dict[str, type[Exception] | None] = {
    "snntorch.LSO": TypeError,  # passes 1 argument to StochasticSpikeOperator, which takes 2
    "snntorch.LeakySpikeOperator": RuntimeError,  # backward returns 1 gradient for 2 inputs
    "spyx.custom": None,  # the default bwd is the identity, so g(x) = x, not the documented 1
    "norse.super_fn": None,  # the backward is 1/(|x| + 1)^2 whatever alpha (agrees at alpha = 1 only)
    "snnax.superspike_surrogate": None,  # 1/(1 + beta|x|), the square of SuperSpike missing
    "snnax.sigmoid_surrogate": TypeError,  # calls jax.nn.sigmoid(x, beta), which takes one argument
}
#: Parameter sets at which a known-defective call happens to give the documented gradient.
DEFECT_FREE = {"norse.super_fn": ({"alpha": 1.0},)}


def _adapter(name: str):
  """The adapter module, skipping when the library (or torch for the torch ones) is absent."""
  spec = targets.builtin()[name]
  if name in TORCH_LIBRARIES:
    pytest.importorskip("torch", reason=f"torch is not installed, so {name} cannot be adapted")
  if importlib.util.find_spec(spec["package"]) is None:  # no stub either (braintools, spyx)
    pytest.skip(f"{spec['package']} is not installed (nox -s verify installs it)")
  return targets.load(name)


def _modules(adapter) -> list[ModuleType]:
  """The library modules an adapter covers."""
  if hasattr(adapter, "modules"):
    return list(adapter.modules())
  x64 = bool(jax.config.jax_enable_x64)  # braintools' import (brainstate) turns 64-bit JAX off
  try:
    return [importlib.import_module(adapter.MODULE)]
  finally:
    jax.config.update("jax_enable_x64", x64)


def _exported(module: ModuleType) -> set[str]:
  """The public functions and classes a library module defines (or lists in ``__all__``)."""
  names = getattr(module, "__all__", None)
  if names is not None:
    return {n for n in names if callable(getattr(module, n))}
  return {
      n for n, obj in vars(module).items()
      if not n.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
      and getattr(obj, "__module__", "") == module.__name__
  }


def _points(ref: surrogates.Surrogate) -> np.ndarray:
  """A few ordinary points, in units of the length scale, kept off the kinks and off 0."""
  xs = np.array([-1.7, -0.6, 0.35, 0.9, 2.3]) * ref.length_scale()
  for k in (*ref.kinks(), 0.0):
    xs = np.where(np.abs(xs - k) < 0.05 * ref.length_scale(), xs + 0.1 * ref.length_scale(), xs)
  return xs


def _gradient(c, xs: np.ndarray) -> np.ndarray:
  if c.backend != "jax":
    return np.asarray(c.vjp(xs, np.ones_like(xs)), np.float64)
  return np.asarray(jax.vmap(jax.grad(lambda v: c.fn(v)))(jnp.asarray(xs)), np.float64)


def test_builtin_json_names_every_adapter():
  spec = targets.checkable()
  assert sorted(spec) == sorted(LIBRARIES)
  assert set(targets.builtin()) - set(spec) == {"lava-dl"}
  assert "Python" in targets.builtin()["lava-dl"]["not_checkable"]
  with pytest.raises(targets.TargetError, match="not checkable"):
    targets.load("lava-dl")
  for name, entry in spec.items():
    assert set(entry) >= {"module", "package", "default_version", "extra_requirements"}
    assert entry["module"] == f"verification.targets.{name}"
    source = importlib.util.find_spec(entry["module"])
    assert source is not None, entry["module"]
    assert targets.requirements(name)[-1] == f"{entry['package']}=={entry['default_version']}"
  assert targets.requirements("braintools", "0.1.10") == ["braintools==0.1.10"]
  json.loads(targets.BUILTIN_JSON.read_text())


@pytest.mark.parametrize("name", LIBRARIES)
def test_every_exported_surrogate_is_checked_or_unmapped(name):
  adapter = _adapter(name)
  assert adapter.PACKAGE == targets.builtin()[name]["package"]
  assert adapter.version()
  exported = set().union(*(_exported(m) for m in _modules(adapter)))
  cands = adapter.candidates()
  covered = {e for c in cands for e in c.notes["exports"]}
  missing = exported - covered - set(adapter.UNMAPPED)
  assert not missing, f"{name} exports surrogates that are neither checked nor unmapped: {sorted(missing)}"
  assert all(reason.strip() for reason in adapter.UNMAPPED.values())
  assert not covered & set(adapter.UNMAPPED), "a name is both checked and unmapped"


@pytest.mark.parametrize("name", LIBRARIES)
def test_candidates_are_well_formed(name):
  adapter = _adapter(name)
  cands = adapter.candidates()
  assert cands
  labels = [c.label for c in cands]
  assert len(labels) == len(set(labels)), "labels must be unique"
  for c in cands:
    c.reference()  # the reference surrogate exists at these parameters
    assert c.notes["library"] == adapter.PACKAGE and c.notes["version"] == adapter.version()
    assert c.notes["call"].startswith(adapter.MODULE)
    assert c.scale > 0
    if c.backend == "numpy":
      assert c.forward is not None and c.vjp is not None and c.fn is None
    elif c.backend == "torch":
      assert c.forward is not None and c.vjp is not None and callable(c.fn)
    else:
      assert c.fn is not None


@pytest.mark.parametrize("name", LIBRARIES)
def test_gradient_is_reference_times_scale_at_ordinary_points(name):
  adapter = _adapter(name)
  wrong = []
  for c in adapter.candidates():
    ref = c.reference()
    xs = _points(ref)
    key = f"{c.notes['library']}.{c.notes['exports'][0]}"
    if any(all(c.params.get(k) == v for k, v in free.items()) for free in DEFECT_FREE.get(key, ())):
      key = ""  # the documented gradient at this parameter set
    if KNOWN_DEFECTS.get(key):
      with pytest.raises(KNOWN_DEFECTS[key]):
        _gradient(c, xs)
      continue
    expected = c.scale * np.asarray(ref.surrogate_grad(jnp.asarray(xs)), np.float64)
    got = _gradient(c, xs)
    agrees = np.allclose(got, expected, rtol=1e-7, atol=1e-9 * c.scale * ref.peak())
    if key in KNOWN_DEFECTS:
      assert not agrees, f"{c.label} now has its documented gradient: remove it from KNOWN_DEFECTS"
    elif not agrees:
      wrong.append(f"{c.label}: x={xs.tolist()} expected {expected.tolist()} got {got.tolist()}")
  assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_torch_round_trip_keeps_values_and_dtype(dtype):
  pytest.importorskip("torch", reason="torch is not installed (only the torch adapters need it)")
  from verification.core import torch_bridge

  np_dtype = jnp.dtype(dtype)
  x = np.array([-2.5, -0.0, 0.0, 0.375, 3.0], dtype=np_dtype)
  back = torch_bridge.to_numpy(torch_bridge.to_torch(x))
  assert back.dtype == np_dtype
  np.testing.assert_array_equal(back.astype(np.float64), x.astype(np.float64))
  assert np.signbit(back.astype(np.float64)[1])
  spike = lambda t: (t >= 0).to(t) * (1.0 + 0.0 * t)
  fields = torch_bridge.torch_fields(spike)
  assert fields["backend"] == "torch" and fields["fn"] is spike
  assert fields["forward"](x).dtype == np_dtype and fields["vjp"](x, np.ones_like(x)).dtype == np_dtype


@pytest.mark.parametrize(
    ("alias", "params", "g"),
    [
        ("heavi_circ", {"alpha": 0.5}, lambda x: 0.5**3 / (x * x + 0.25) ** 1.5),
        ("sinabs_heaviside", {"window": 0.5, "threshold": 2.0}, lambda x: float(x >= -0.5) / 2.0),
        ("sinabs_periodic_exponential", {"grad_width": 0.5, "grad_scale": 3.0, "spike_threshold": 2.0},
         lambda x: 3.0 * (np.exp(-abs(x) / 0.5) if x < 0 else np.exp(-2 * abs(x - 2.0 * round(x / 2.0)) / 0.5))),
    ],
)
def test_new_aliases_have_their_libraries_formulas(alias, params, g):
  s = surrogates.get(alias, **params)
  xs = np.array([-1.3, -0.5, -0.2, 0.0, 0.05, 0.4, 1.7, 2.2, 3.1])
  np.testing.assert_allclose(np.asarray(s.surrogate_grad(jnp.asarray(xs))), [g(x) for x in xs], rtol=1e-13,
                             atol=1e-15)
