"""The library layer adapters: each builds its layer candidates, declares a cited documented configuration,
runs with the initial membrane fed and no state carried, and (snntorch, spikingjelly: installed with the
tests) measures as recorded in ``results/layers/``. norse runs on the installed library where there is
one, else on the stand-in in ``tests/stubs`` (its 1.1.0 step functions and minimal cells): the stub proves
the adapter's code path, not the install.

The measured verdicts are the proof the measurement can fail: snntorch's Leaky is found to differ from its
documentation (the spike of the current membrane, the reset after the next leak; reset_delay=False attaches
the reset), spikingjelly's LIFNode is found to follow it (the correct twin). The reproducers are proven the
same way: the script written for a finding exits 1 against the installed library, and the same script
written with the configuration the layer implements exits 0.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from surrogates._lif_config import FireFrom, LIFConfig, ResetGrad, ResetWhen
from verification import targets
from verification.core.layer import LayerCandidate, LayerEvaluator

ROOT = Path(__file__).resolve().parents[1]
STUBS = Path(__file__).with_name("stubs")
if str(STUBS) not in sys.path:
  sys.path.append(str(STUBS))  # after the installed packages: an installed library wins (norse's cells are stubbed)
RESULTS = ROOT / "results" / "layers"
LAYER_LIBRARIES = ["snntorch", "spikingjelly", "norse", "rockpool", "spyx", "snnax", "brainpy"]


def _adapter(name: str):
  pytest.importorskip("torch", reason=f"torch is not installed, so {name} cannot be adapted")
  if importlib.util.find_spec(targets.builtin()[name]["package"]) is None:
    pytest.skip(f"{name} is not installed (python -m reports.layers measures it where it is)")
  module = targets.load(name)
  try:
    module.layer_candidates()
  except ImportError as exc:  # a library installed without the modules its layers need
    pytest.skip(f"{name}'s layers cannot be imported here: {exc}")
  return module


@pytest.mark.parametrize("name", LAYER_LIBRARIES)
def test_every_layer_option_is_a_cited_candidate(name):
  module = _adapter(name)
  cands = module.layer_candidates()
  assert cands and len({c.label for c in cands}) == len(cands)
  fields = {f.name for f in dataclasses.fields(LIFConfig)}
  for c in cands:
    assert isinstance(c, LayerCandidate) and isinstance(c.config, LIFConfig)
    assert fields <= set(c.citations), f"{c.label}: settings without a citation: {fields - set(c.citations)}"
    assert c.notes["library"] == module.PACKAGE and c.notes["version"] == module.version()
    for field, cite in c.citations.items():  # each cites the installed file by line, or says it is read from code
      assert cite.startswith(module.PACKAGE) or cite.startswith("not stated"), (c.label, field, cite)


@pytest.mark.parametrize("name", LAYER_LIBRARIES)
def test_runs_feed_the_initial_membrane_and_carry_nothing(name):
  module = _adapter(name)
  c = module.layer_candidates()[0]
  ev = LayerEvaluator(c)
  params = {k: float(v) for k, v in c.params._asdict().items()}
  x = np.random.default_rng(0).normal(0.5, 1.0, (4, 3, 5)) * params["theta"] / max(1e-3, 1 - 0.9)
  v0 = np.full((3, 5), 0.3 * params["theta"])
  first = ev.forward("own", x, v0, np.zeros_like(v0), params)[1]
  again = ev.forward("own", x, v0, np.zeros_like(v0), params)[1]
  np.testing.assert_array_equal(first, again)  # a fresh layer each run: no state leaks between runs
  other = ev.forward("own", x, v0 + 0.1 * params["theta"], np.zeros_like(v0), params)[1]
  assert not np.array_equal(first[0], other[0])  # the initial membrane is the one fed, not zeros
  grads = ev.vjp("own", x, v0, np.zeros_like(v0), params, np.ones_like(x), np.ones_like(x))
  assert np.any(grads["v"] != 0)  # and it receives a gradient


def _measure(name: str, label: str) -> dict:
  from reports import layers

  module = _adapter(name)
  cand = next(c for c in module.layer_candidates() if c.label == label)
  return layers.measure_candidate(layers.Reference(), cand, [])


def test_snntorch_leaky_measures_as_recorded():
  rec = _measure("snntorch", "snntorch.Leaky()")
  assert rec["differs"] == {"fire_from": ["previous", "current"], "reset_when": ["immediate", "next_after_leak"]}
  assert rec["own_surrogate"]["pass"] and rec["frozen_pattern"]["pass"]
  assert rec["gain_library"] == pytest.approx(0.8, rel=1e-6)  # β: the reset is detached
  recorded = json.loads((RESULTS / "snntorch.json").read_text())
  assert {r["label"]: r["differs"] for r in recorded["layers"]}["snntorch.Leaky()"] == rec["differs"]


def test_snntorch_reset_delay_false_attaches_the_reset():
  rec = _measure("snntorch", "snntorch.Leaky(reset_delay=False)")
  assert rec["differs"] == {"reset_grad": ["detached", "attached"]}


def test_spikingjelly_lifnode_follows_its_documentation():
  rec = _measure("spikingjelly", "spikingjelly.LIFNode(v_reset=-0.3)")
  assert rec["documented_verdict"] == {"forward": True, "gradient": True} and rec["differs"] == {}
  assert rec["frozen_pattern"]["pass"]


def test_a_reproducer_exits_1_on_the_finding_and_0_on_its_twin(tmp_path):
  from reports import layers

  module = _adapter("snntorch")
  label = "snntorch.Leaky(reset_delay=False)"
  cand = next(c for c in module.layer_candidates() if c.label == label)
  implemented = dataclasses.replace(cand.config, reset_grad=ResetGrad.ATTACHED)
  exits = {}
  for name, config in (("documented", cand.config), ("implemented", implemented)):
    shim = type(sys)("shim")
    shim.layer_candidates = lambda config=config: [dataclasses.replace(cand, config=config)]
    shim.layer_snippet = module.layer_snippet
    record = {"label": label, "layer": "Leaky", "documented_verdict": {"gradient": False}, "matches": [{}],
              "differs": {"reset_grad": ["detached", "attached"]}, "documented": {"reset_grad": "detached"},
              "cites": {}}
    library = {"library": "snntorch", "version": module.version(), "layers": [record]}
    (path,) = layers.write_reproducers(shim, library, tmp_path / name)
    exits[name] = subprocess.run([sys.executable, str(path)], capture_output=True, timeout=300).returncode
    assert record["reproducer"]["exit"] == exits[name]
  assert exits == {"documented": 1, "implemented": 0}


def test_the_recorded_tables_name_each_difference():
  data = json.loads((RESULTS / "norse.json").read_text())
  by_label = {r["label"]: r for r in data["layers"]}
  assert by_label["norse.LIFCell(alpha=1.0)"]["differs"] == {}
  assert by_label["norse.LIFRecurrentCell(alpha=1.0)"]["differs"] == {"reset_grad": ["attached", "detached"]}
  assert not by_label["norse.LIFCell()"]["matches"]  # SuperSpike's alpha ignored: no setting reproduces it
  index = (RESULTS / "index.md").read_text()
  assert "| snntorch 1.0.0 | Leaky | reset_delay=False | reset_grad | detached | attached |" in index
  for rec in (r for lib in ("snntorch", "norse") for r in json.loads((RESULTS / f"{lib}.json").read_text())["layers"]):
    if "reproducer" in rec:
      assert rec["reproducer"]["exit"] == 1 and (ROOT / rec["reproducer"]["path"]).exists()


def test_documented_settings_of_the_options():
  module = _adapter("snntorch")
  by_label = {c.label: c.config for c in module.layer_candidates()}
  assert by_label["snntorch.Leaky()"].fire_from is FireFrom.PREVIOUS  # "U[T] > U_thr ⇒ S[T+1] = 1"
  assert by_label["snntorch.Leaky(reset_delay=False)"].fire_from is FireFrom.CURRENT
  assert by_label["snntorch.Leaky()"].reset_when is ResetWhen.IMMEDIATE


def test_norse_recurrent_cell_detaches_the_reset_its_docstring_attaches():
  rec = _measure("norse", "norse.LIFRecurrentCell(method='triangle', alpha=0.25)")
  assert rec["differs"] == {"reset_grad": ["attached", "detached"]}
  twin = _measure("norse", "norse.LIFCell(method='triangle', alpha=0.25)")
  assert twin["differs"] == {} and twin["documented_verdict"]["gradient"]


def test_rockpool_liftorch_follows_its_documented_dynamics():
  rec = _measure("rockpool", "rockpool.LIFTorch()")
  assert rec["documented_verdict"] == {"forward": True, "gradient": True} and rec["differs"] == {}
  assert set(rec["gradient_to"]) == {"beta", "alpha_syn", "theta", "bias"}  # every rp.Parameter learns
  recorded = json.loads((RESULTS / "rockpool.json").read_text())
  assert {r["label"]: r["differs"] for r in recorded["layers"]}["rockpool.LIFTorch()"] == {}


def test_spyx_lif_fires_from_the_previous_membrane_as_its_code_reads():
  rec = _measure("spyx", "spyx.LIF(beta=0.8)")
  assert rec["documented_verdict"] == {"forward": True, "gradient": True} and rec["frozen_pattern"]["pass"]
  assert rec["documented"]["fire_from"] == "previous" and rec["gradient_to"] == ["beta", "theta"]
  assert set(rec["documented_errors"]) == {"spikes differing", "membrane", "dx", "dv", "dbeta", "dtheta"}


def _frozen(name: str, label: str) -> dict:
  """g ≡ 0: the layer's gradient against finite differences of its own hard forward (no reference involved)."""
  from reports import layers

  module = _adapter(name)
  cand = next(c for c in module.layer_candidates() if c.label == label)
  ev = LayerEvaluator(cand)
  return layers.frozen_pattern(ev, layers.problems(cand, ev, "asym")[0], cand.dtype)


def test_snnax_default_reset_gradient_disagrees_with_its_own_forward():
  # stop_gradient(v·S) removes the whole reset term from the graph: the gradient through a reset is 1, the
  # derivative of the forward v - v·S (pattern frozen) is 1 - S. The attached option is the correct twin.
  assert not _frozen("snnax", "snnax.LIF()")["pass"]
  assert _frozen("snnax", "snnax.LIF(stop_reset_grad=False)")["pass"]
  recorded = {r["label"]: r for r in json.loads((RESULTS / "snnax.json").read_text())["layers"]}
  assert not recorded["snnax.LIF()"]["matches"] and recorded["snnax.LIF(stop_reset_grad=False)"]["differs"] == {}
  assert recorded["snnax.LIF(decay_constants=(0.3, 0.3))"]["forward_matches"] == [{"beta_map": "clamp_half_1"}]


def test_brainpy_state_lif_subtracts_the_range_and_its_hard_reset_keeps_the_identity():
  recorded = {r["label"]: r for r in json.loads((RESULTS / "brainpy.json").read_text())["layers"]}
  assert recorded["brainpy.state.LIF(V_reset=-0.3)"]["differs"] == {"reset": ["subtract_theta", "subtract_range"]}
  assert recorded["brainpy.state.LIF(spk_reset='hard')"]["differs"] == {"reset_grad": ["detached", "hard_identity"]}
  # the hard reset's gradient (1 + surrogate term) is not the derivative of its own forward; the soft one's is
  assert not _frozen("brainpy", "brainpy.state.LIF(spk_reset='hard')")["pass"]
  assert _frozen("brainpy", "brainpy.state.LIF()")["pass"]
