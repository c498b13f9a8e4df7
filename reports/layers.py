"""``python -m reports.layers``: which configuration each library's LIF layer implements, measured.

For every layer candidate of the installed libraries (``layer_candidates()`` of the adapters in
``verification/targets/``), the layer is run against the reference LIF (:func:`surrogates.lif.lif_scan`)
in the configuration its documentation states, and, where that does not reproduce it, in the
configurations one setting away (then two, among the settings that change the forward), until the
ones that reproduce the layer are found. "Reproduce" means, on every problem below, spikes equal,
membrane and the VJP of a random projection (in the input, the initial membrane and every parameter
the layer passes a gradient to) within the tolerance:

* ``main``: the option's parameters, T = 20, batch 3 x 5 neurons, the library's default surrogate
  mirrored by its reference surrogate;
* ``theta``: θ = 2 (θ = 1 hides a 1/θ), T = 20, another seed;
* ``tie``: a first step that lands exactly on the threshold (v0 = 0, x = θ/gain), then no input: H(0);
  only where the gain is a power of two (then x·gain is exact in every op order; 0.1·10 is not).

Where the layer accepts a custom surrogate (``with_surrogate``), every problem runs with the asymmetric
probe g(u) = exp(-u²)(1 + 0.3u) (``PROBES["asym"]`` of :mod:`verification.core.layer`) on both sides, so a
sign, a scale κ (1, 1/θ, 1/(θ - v_reset)) or a pre/post-reset evaluation shows without any catalogue
mapping; the configuration found is then checked once more with the library's own surrogate against its
mirror. The reference runs with the settings as integer codes (:class:`surrogates.lif.DynamicConfig`), so
one compiled program serves the whole search.

Tolerance: ``|Δ| ≤ rtol·max(1, max|ref|)`` per array with ``rtol = 1000·T·ε`` of the dtype the
spikes are computed in (ε of float64, or float32 for a layer whose spikes are float32: its spike-path
gradients are float32). Rounding of a T-step recurrence with per-step gain ≤ 1 is ~T·ε; a wiring
difference is O(1), orders of magnitude above it.

Also measured per option: the per-step reset gain ``max |∂v_1/∂v_0|`` of the library itself (one step,
v0 spread around θ so that the reset acts), the reference's over the main problem, and, where a
custom surrogate is accepted, the frozen-pattern check (g ≡ 0: the layer's VJP in x against central
differences of its own hard forward, the spike pattern unchanged at x ± h).

Writes ``results/layers/<library>.json`` per library measured (``--library``, repeatable; each in the
environment where it is installed) and a standalone reproducer per finding (``results/layers/repro/``:
one per layer and set of differing settings, run here, its exit status recorded in the JSON); with
``--render``, a Markdown page per library layer and the cross-library table ``results/layers/index.md``
from every JSON there. Exit status: 0 written; 1 a library could not be measured (named on stderr).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import itertools
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path("results/layers")
#: The settings that change the forward (searched in pairs); the others change the gradient only.
FORWARD_FIELDS = ("synapse", "leak", "beta_map", "gain", "fire_from", "spike_forward", "reset", "reset_when",
                  "membrane_out")
#: The settings searched two at a time when no single change reproduces the forward.
PAIR_FIELDS = ("fire_from", "spike_forward", "reset", "reset_when", "membrane_out", "leak", "gain")
GRADIENT_FIELDS = ("reset_grad", "surrogate_arg", "theta_grad")
PROBE = {"alpha": 0.2, "beta": 0.7}
T_MAIN = 20


def _jax():
  import jax

  jax.config.update("jax_enable_x64", True)
  return jax


@dataclasses.dataclass
class Problem:
  name: str
  x: np.ndarray
  v0: np.ndarray
  params: dict[str, float]
  ct_s: np.ndarray
  ct_v: np.ndarray


def _gain_value(cfg, params: dict[str, float]) -> tuple[float, float]:
  from surrogates._lif_config import Gain
  from surrogates.lif import decay

  beta = float(decay(params["beta"], cfg.beta_map, params["dt"]))
  gain = {Gain.ONE: 1.0, Gain.PARAM: params["gain"], Gain.ONE_MINUS_BETA: 1.0 - beta}.get(cfg.gain)
  if gain is None:  # PARAM_ONE_MINUS_BETA
    gain = params["gain"] * (1.0 - beta)
  return beta, gain


def problems(cand, ev, probe: str, seed: int = 0) -> list[Problem]:
  """The main, θ and tie problems of a candidate (inputs scaled so that the layer fires 5-60% of steps)."""
  out = []
  for name, over, s in (("main", {}, seed), ("theta", {"theta": 2.0}, seed + 1)):
    params = {k: float(v) for k, v in {**cand.params._asdict(), **over}.items()}
    beta, gain = _gain_value(cand.config, params)
    theta = params["theta"]
    rng = np.random.default_rng(s)
    mu = theta * max(1.0 - beta, 0.05) / max(abs(gain), 1e-6)
    z = rng.normal(0.0, 1.0, (T_MAIN, 3, 5))
    v0 = theta * rng.uniform(-0.5, 0.9, (3, 5))
    for _ in range(8):
      x = mu * (1.0 + 1.5 * z)
      spikes, _, _ = ev.forward(probe, x, v0, np.zeros_like(v0), params)
      rate = float(np.mean(spikes != 0))
      if 0.05 <= rate <= 0.6:
        break
      mu *= 2.0 if rate < 0.05 else 0.5
    out.append(Problem(name, x, v0, params, rng.normal(size=x.shape), rng.normal(size=x.shape)))
  params = {k: float(v) for k, v in cand.params._asdict().items()}
  beta, gain = _gain_value(cand.config, params)
  if gain > 0 and np.log2(gain) == round(np.log2(gain)):  # x·gain is exact only for a power of two: a true tie
    x = np.zeros((T_MAIN, 3, 5))
    x[0] = params["theta"] / gain
    out.append(Problem("tie", x, np.zeros((3, 5)), params, np.zeros_like(x), np.zeros_like(x)))
  return out


class Reference:
  """The reference's forward and VJP on the stacked problems (parameters per neuron), one compiled program per
  surrogate for every configuration (the settings are traced integer codes)."""

  def __init__(self):
    jax = _jax()
    from surrogates.lif import LIFParams, LIFState, lif_scan

    self.LIFParams = LIFParams

    def fwd(surrogate, codes, x, v0, p):
      s, v, _ = lif_scan(x, LIFState(v=v0), p, codes, surrogate)
      return s, v

    def vjp(surrogate, codes, x, v0, p, ct_s, ct_v):
      (s, v), pull = jax.vjp(lambda x, v0, p: fwd(surrogate, codes, x, v0, p), x, v0, p)
      return s, v, pull((ct_s, ct_v))

    self.fwd = jax.jit(fwd, static_argnums=(0,))
    self.vjp = jax.jit(vjp, static_argnums=(0,))

  def params(self, probs: list[Problem]):
    """Per-neuron parameter arrays [rows, neurons] for the stacked problems."""
    return self.LIFParams(**{k: np.concatenate([np.full(p.v0.shape, float(p.params[k])) for p in probs])
                             for k in self.LIFParams._fields})

  def run(self, config, surrogate, probs: list[Problem], gradients: bool):
    from surrogates.lif import config_codes

    codes = config_codes(config)
    x = np.concatenate([p.x for p in probs], axis=1)
    v0 = np.concatenate([p.v0 for p in probs])
    p = self.params(probs)
    if not gradients:
      s, v = self.fwd(surrogate, codes, x, v0, p)
      return np.asarray(s), np.asarray(v), None
    ct_s = np.concatenate([q.ct_s for q in probs], axis=1)
    ct_v = np.concatenate([q.ct_v for q in probs], axis=1)
    s, v, (gx, gv, gp) = self.vjp(surrogate, codes, x, v0, p, ct_s, ct_v)
    return np.asarray(s), np.asarray(v), {"x": np.asarray(gx), "v": np.asarray(gv),
                                          **{k: np.asarray(g) for k, g in gp._asdict().items()}}


_ASYM: Any = None


def _surrogate(cand, probe: bool):
  """The reference side's surrogate: the asymmetric probe's spike function, or the candidate's mirror."""
  global _ASYM
  if not probe:
    return cand.surrogate
  if _ASYM is None:
    import jax.numpy as jnp

    from surrogates._core import make_spike_function
    from verification.core.layer import PROBES

    _ASYM = make_spike_function(lambda u: PROBES["asym"](u, jnp))
  return _ASYM


def _rtol(cand, t: int) -> float:
  return 1000.0 * t * float(np.finfo(getattr(np, cand.dtype)).eps)


def _close(got: np.ndarray, want: np.ndarray, rtol: float) -> tuple[bool, float]:
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  if got.shape != want.shape:
    try:
      got = np.broadcast_to(got, want.shape) if got.size == 1 else got.reshape(want.shape)
    except ValueError:
      return False, float("inf")
  err = float(np.max(np.abs(got - want))) if want.size else 0.0
  if not np.all(np.isfinite(got)):
    return False, float("inf")
  return err <= rtol * max(1.0, float(np.max(np.abs(want))) if want.size else 1.0), err


@dataclasses.dataclass
class LibraryRun:
  """A candidate's outputs on the stacked problems (computed once, compared against many configurations)."""
  probe: bool
  spikes: np.ndarray
  membrane: np.ndarray
  grads: dict[str, np.ndarray]  # x, v stacked; a parameter: one value per problem


def library_run(ev, probs: list[Problem], probe: bool) -> LibraryRun:
  name = "asym" if probe else "own"
  fw = [ev.forward(name, p.x, p.v0, np.zeros_like(p.v0), p.params)[:2] for p in probs]
  gr = [ev.vjp(name, p.x, p.v0, np.zeros_like(p.v0), p.params, p.ct_s, p.ct_v) for p in probs]
  grads = {k: np.concatenate([q.get(k, np.zeros_like(p.x if k == "x" else p.v0)) for q, p in zip(gr, probs,
                                                                                                  strict=True)],
                             axis=1 if k == "x" else 0) for k in ("x", "v")}
  for k in sorted({k for q in gr for k in q} - {"x", "v", "i"}):
    grads[k] = np.array([float(np.sum(q.get(k, 0.0))) for q in gr])
  return LibraryRun(probe, np.concatenate([s for s, _ in fw], axis=1), np.concatenate([v for _, v in fw], axis=1),
                    grads)


def compare(ref: Reference, cand, probs, lib: LibraryRun, config, gradients: bool = True) -> dict[str, Any]:
  """Whether ``config`` reproduces the layer on the stacked problems: spikes, membrane, gradients."""
  s, v, grads = ref.run(config, _surrogate(cand, lib.probe), probs, gradients)
  rtol = _rtol(cand, T_MAIN)
  mismatched = int(np.sum(np.asarray(lib.spikes, np.float64) != np.asarray(s, np.float64)))
  ok_v, err_v = _close(lib.membrane, v, rtol)
  out: dict[str, Any] = {"forward": mismatched == 0 and ok_v, "gradient": False,
                         "errors": {"spikes differing": mismatched, "membrane": err_v}}
  if not gradients or not out["forward"]:
    return out
  ok_all = True
  rows = np.cumsum([0] + [p.v0.shape[0] for p in probs])
  for name, g in lib.grads.items():
    want = grads[name]
    if name not in ("x", "v"):  # per problem: the reference's per-neuron gradient summed over its rows
      want = np.array([float(np.sum(want[a:b])) for a, b in itertools.pairwise(rows)])
    ok, err = _close(g, want, rtol)
    out["errors"][f"d{name}"] = err
    ok_all &= ok
  out["gradient"] = ok_all
  return out


def _changed(config, changes: dict[str, Any]):
  return dataclasses.replace(config, **changes)


def _alternatives(config, field: str):
  current = getattr(config, field)
  return [v for v in type(current) if v != current]


def search(ref: Reference, cand, probs, lib: LibraryRun, hints: list[dict[str, Any]]) -> dict[str, Any]:
  """The documented configuration's verdict and, where it fails, the configurations that reproduce the layer:
  the changes found for the layer's other options first, then one setting away, then two."""
  doc = cand.config
  verdict = compare(ref, cand, probs, lib, doc)
  found: dict[str, Any] = {"documented": verdict, "matches": [], "searched": 1}
  if verdict["gradient"]:
    found["matches"] = [{}]
    return found

  def gradient_matches(base: dict[str, Any]) -> list[dict[str, Any]]:
    found["searched"] += 1
    if compare(ref, cand, probs, lib, _changed(doc, base))["gradient"]:
      return [base]
    extras = [{f: v} for f in GRADIENT_FIELDS for v in _alternatives(doc, f)]
    extras += [{f1: v1, f2: v2} for f1, f2 in itertools.combinations(GRADIENT_FIELDS, 2)
               for v1 in _alternatives(doc, f1) for v2 in _alternatives(doc, f2)]
    out = []
    for extra in extras:
      if set(extra) & set(base):
        continue
      found["searched"] += 1
      if compare(ref, cand, probs, lib, _changed(doc, {**base, **extra}))["gradient"]:
        out.append({**base, **extra})
    return out

  def forward_ok(changes: dict[str, Any]) -> bool:
    found["searched"] += 1
    return compare(ref, cand, probs, lib, _changed(doc, changes), gradients=False)["forward"]

  if verdict["forward"]:  # settings found for the layer's other options may agree in the forward here too
    levels = [[{}], [h for h in hints if all(getattr(doc, k) != v for k, v in h.items())]]
  else:
    levels = [[h for h in hints if all(getattr(doc, k) != v for k, v in h.items())]]
    levels.append([{f: v} for f in FORWARD_FIELDS for v in _alternatives(doc, f)])
    levels.append([{f1: v1, f2: v2} for f1, f2 in itertools.combinations(PAIR_FIELDS, 2)
                   for v1 in _alternatives(doc, f1) for v2 in _alternatives(doc, f2)])
  for level in levels:
    forward = [c for c in level if c == {} or forward_ok(c)]
    for base in forward:
      found["matches"] += gradient_matches(base)
    found["forward_matches"] = [_names(m) for m in forward]
    if found["matches"] or (forward and level is not levels[0]):
      break
  return found


def _names(changes: dict[str, Any]) -> dict[str, str]:
  return {k: v.value for k, v in changes.items()}


def library_gain(cand, ev) -> float:
  """max |∂v_1/∂v_0| of the library over one step from v0 spread around θ (every neuron independent)."""
  params = cand.params._asdict()
  v0 = params["theta"] * np.linspace(0.4, 1.6, 15).reshape(3, 5)
  x = np.zeros((1, 3, 5))
  g = ev.vjp("own", x, v0, np.zeros_like(v0), params, np.zeros_like(x), np.ones_like(x))
  return float(np.max(np.abs(g["v"]))) if "v" in g else 0.0


def reference_gain(ref: Reference, cand, config, prob: Problem) -> float:
  from surrogates.lif import LIFState, reset_gain

  gains = reset_gain(prob.x, LIFState(v=prob.v0), ref.params([prob]), config, cand.surrogate)
  return float(np.max(np.abs(np.asarray(gains))))


def frozen_pattern(ev, prob: Problem, dtype: str) -> dict[str, Any]:
  """g ≡ 0: the layer's VJP in x against central differences of its own forward, spike pattern frozen.

  With the pattern frozen every layer here is affine in x (leak, gain, subtract or value resets), so the
  differences' truncation error vanishes and only rounding is left, ε·|L|/h: h = 1e-6, tolerance 1e-6 in
  float64 (≈1e-10 expected); h = 1e-2, tolerance 1e-3 in float32 (≈1e-5 expected)."""
  h, tol = (1e-6, 1e-6) if dtype == "float64" else (1e-2, 1e-3)
  d = np.random.default_rng(7).normal(size=prob.x.shape)
  i0 = np.zeros_like(prob.v0)

  def loss(x):
    s, v, _ = ev.forward("zero", x, prob.v0, i0, prob.params)
    return s, float(np.sum(s * prob.ct_s) + np.sum(v * prob.ct_v))

  s_plus, l_plus = loss(prob.x + h * d)
  s_minus, l_minus = loss(prob.x - h * d)
  if not np.array_equal(s_plus, s_minus):
    return {"skipped": "the spike pattern changes within ±h"}
  g = ev.vjp("zero", prob.x, prob.v0, i0, prob.params, prob.ct_s, prob.ct_v).get("x", np.zeros_like(prob.x))
  fd = (l_plus - l_minus) / (2 * h)
  ad = float(np.sum(g * d))
  err = abs(ad - fd) / max(1.0, abs(fd))
  return {"autodiff": ad, "finite_differences": fd, "relative_error": err, "h": h, "pass": bool(err <= tol)}


def _config_dict(config) -> dict[str, str]:
  return config.settings()


def measure_candidate(ref: Reference, cand, hints: list[dict[str, Any]]) -> dict[str, Any]:
  from verification.core.layer import LayerEvaluator

  ev = LayerEvaluator(cand)
  notes = dict(cand.notes)
  record: dict[str, Any] = {
      "label": cand.label, "library": notes.get("library"), "layer": notes.get("layer"),
      "option": notes.get("option", {}), "documented": _config_dict(cand.config), "cites": dict(cand.citations),
      "params": {k: float(v) for k, v in cand.params._asdict().items()}, "surrogate": repr(cand.surrogate),
      "learnable_documented": sorted(cand.learnable), "dtype": cand.dtype, "note": notes.get("note", ""),
  }
  start = time.perf_counter()
  try:
    probe = cand.with_surrogate is not None
    probs = problems(cand, ev, "asym" if probe else "own")
    lib = library_run(ev, probs, probe)
    found = search(ref, cand, probs, lib, hints)
    record["searched_with"] = "the asymmetric probe g(u) = exp(-u²)(1 + 0.3u)" if probe else \
        f"the mirrored surrogate {cand.surrogate!r}"
    record["documented_verdict"] = {k: bool(found["documented"][k]) for k in ("forward", "gradient")}
    record["documented_errors"] = found["documented"]["errors"]
    record["matches"] = [_names(m) for m in found["matches"]]
    record["forward_matches"] = found.get("forward_matches", [])
    record["searched"] = found["searched"]
    best = min(found["matches"], key=len) if found["matches"] else None
    implemented = _changed(cand.config, best) if best is not None else None
    record["implemented"] = _config_dict(implemented) if implemented is not None else None
    record["differs"] = {k: [getattr(cand.config, k).value, v.value] for k, v in (best or {}).items()}
    if best:
      hints.append(best)
    own = lib
    if probe:  # the library's own surrogate against its mirror, in the configuration found (or documented)
      own = library_run(ev, probs, False)
      check = compare(ref, cand, probs, own, implemented or cand.config)
      record["own_surrogate"] = {"pass": bool(check["gradient"]), "forward": bool(check["forward"]),
                                 "errors": check["errors"]}
      record["frozen_pattern"] = frozen_pattern(ev, probs[0], cand.dtype)
    record["gain_library"] = library_gain(cand, ev)
    record["gain_reference"] = reference_gain(ref, cand, implemented or cand.config, probs[0])
    # with its own surrogate the layer reports its module's parameters (``gradients``); a probe run sees only
    # the tensors passed in
    record["gradient_to"] = sorted(k for k, g in own.grads.items() if k not in ("x", "v") and np.any(g != 0))
    record["problems"] = {p.name: {"T": int(p.x.shape[0]), "theta": p.params["theta"]} for p in probs}
    record["firing_rate"] = float(np.mean(lib.spikes != 0))
  except Exception as exc:  # a layer that cannot be run is a result, not a crash of the measurement
    record["error"] = f"{type(exc).__name__}: {exc}"
    record["traceback"] = traceback.format_exc(limit=6)
  record["seconds"] = round(time.perf_counter() - start, 1)
  return record


def measure(library: str, only: list[str] | None = None) -> dict[str, Any]:
  from verification.targets import load

  module = load(library)
  ref = Reference()
  cands = module.layer_candidates()
  if only:
    cands = [c for c in cands if any(o in c.label for o in only)]
  layers = []
  hints: dict[str, list[dict[str, Any]]] = {}
  for cand in cands:
    rec = measure_candidate(ref, cand, hints.setdefault(cand.name, []))
    print(f"{rec['label']}: {_summary(rec)} ({rec['seconds']} s)", file=sys.stderr, flush=True)
    layers.append(rec)
  return {"library": module.PACKAGE, "version": module.version(), "layers": layers,
          "not_run": dict(getattr(module, "LAYERS_NOT_RUN", {}))}


def _summary(rec: dict[str, Any]) -> str:
  if "error" in rec:
    return f"error: {rec['error']}"
  if rec["documented_verdict"]["gradient"]:
    return "implements the documented configuration"
  if not rec["matches"]:
    return "matches no configuration searched"
  return "implements " + ", ".join(f"{k}={v[1]} (documented {v[0]})" for k, v in rec["differs"].items())


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m reports.layers", description=__doc__.splitlines()[0])
  parser.add_argument("--library", action="append", default=[], help="measure this library (repeatable)")
  parser.add_argument("--only", action="append", default=[], help="only the options whose label contains this")
  parser.add_argument("--render", action="store_true", help="write the Markdown pages")
  parser.add_argument("--reproducers-only", action="store_true",
                      help="rewrite the reproducers from the library's JSON, measuring nothing")
  parser.add_argument("--out", default=str(OUT))
  args = parser.parse_args(argv)
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  status = 0
  for library in args.library:
    path = out / f"{library}.json"
    try:
      data = json.loads(path.read_text()) if args.reproducers_only else measure(library, args.only)
    except Exception as exc:
      print(f"{library}: not measured: {type(exc).__name__}: {exc}", file=sys.stderr)
      status = 1
      continue
    if args.only and path.exists():  # a partial run updates the options it measured
      old = json.loads(path.read_text())
      fresh = {rec["label"] for rec in data["layers"]}
      data["layers"] = [r for r in old["layers"] if r["label"] not in fresh] + data["layers"]
    from verification.targets import load

    write_reproducers(load(library), data, out)
    data = {"generated_by": f"python -m reports.layers --library {library}",
            **{k: v for k, v in data.items() if k != "generated_by"}}
    path.write_text(json.dumps(data, indent=1, sort_keys=False, default=str) + "\n")
  if args.render:
    render = importlib.import_module("reports.layer_pages")
    render.write(out)
  return status



REPRO = '''"""{title}

{finding}

Documented: {documented}
The script runs the layer on a fixed input (T = {T}, one row of 5 neurons) and compares its spikes, membrane and
the gradient dL/dx of L = sum(A * spikes) + sum(B * membrane) with the values of the DOCUMENTED configuration,
computed by surrogate-harness's reference LIF (surrogates.lif.lif_scan, mirrored surrogate {surrogate}) and
written below. Exit status: 1 while the layer differs from its documentation, 0 once it follows it.
"""

import sys

import numpy as np

{snippet}
X = {x}
V0 = {v0}
A = {a}
B = {b}
WANT_SPIKES = {s}
WANT_MEMBRANE = {m}
WANT_DX = {dx}
RTOL = 1000 * {T} * {finfo}(DTYPE).eps  # rounding of a {T}-step recurrence is ~T·eps; a wiring difference is O(1)

{gradient}
bad = []
for name, got, want in (("spikes", spikes, WANT_SPIKES), ("membrane", membrane, WANT_MEMBRANE), ("dL/dx", dx, WANT_DX)):
  got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
  err = float(np.abs(got - want).max())
  tol = 0.0 if name == "spikes" else float(RTOL) * max(1.0, float(np.abs(want).max()))
  print(f"{{name}}: max |got - documented| = {{err:.3g}} (tolerance {{tol:.3g}})")
  if err > tol:
    bad.append(name)
print("differs from the documented configuration in: " + ", ".join(bad) if bad else "follows the documentation")
sys.exit(1 if bad else 0)
'''


#: The reproducer's forward and dL/dx, by the layer's framework.
GRADIENT = {
    "torch": """x = torch.tensor(X, dtype=DTYPE, requires_grad=True)
spikes, membrane = run(x, torch.tensor(V0, dtype=DTYPE))
loss = (spikes * torch.tensor(A, dtype=spikes.dtype)).sum() + (membrane * torch.tensor(B, dtype=membrane.dtype)).sum()
(dx,) = torch.autograd.grad(loss, x)
spikes, membrane, dx = (t.detach().numpy() for t in (spikes, membrane, dx))""",
    "jax": """def loss(x):
  spikes, membrane = run(x, jnp.asarray(V0, dtype=DTYPE))
  return jnp.sum(spikes * jnp.asarray(A)) + jnp.sum(membrane * jnp.asarray(B)), (spikes, membrane)


dx, (spikes, membrane) = jax.grad(loss, has_aux=True)(jnp.asarray(X, dtype=DTYPE))""",
}


def _finding_text(rec: dict[str, Any]) -> str:
  if not rec.get("matches"):
    return "Matches no configuration one or two settings from the documented one (" + _summary(rec) + ")."
  return "Measured: " + "; ".join(f"{k} is {v[1]}, documented {v[0]}" for k, v in rec["differs"].items()) + "."


def generated_by(library: str) -> str:
  """A reproducer's first line: the command that regenerates it."""
  return f"Generated by `python -m reports.layers --library {library}`; do not edit."


def write_reproducers(module, library: dict[str, Any], out: Path) -> list[Path]:
  """One standalone script per finding (grouped by cause: the layer and the settings that differ, or "no
  setting"), at the group's first option; each is run here and its exit status recorded."""
  import subprocess

  from verification.core.layer import LayerEvaluator

  if not hasattr(module, "layer_snippet"):
    return []
  cands = {c.label: c for c in module.layer_candidates()}
  groups: dict[tuple, dict[str, Any]] = {}
  for rec in library["layers"]:
    if "error" in rec or rec["documented_verdict"]["gradient"]:
      continue
    key = (rec["layer"], tuple(sorted((k, tuple(v)) for k, v in rec["differs"].items())) if rec["matches"] else "none")
    groups.setdefault(key, rec)
  (out / "repro").mkdir(parents=True, exist_ok=True)
  written = []
  ref = Reference()
  for n, rec in enumerate(groups.values(), 1):
    cand = cands[rec["label"]]
    ev = LayerEvaluator(cand)
    prob = problems(cand, ev, "own")[0]
    row = Problem("repro", prob.x[:, :1], prob.v0[:1], prob.params, prob.ct_s[:, :1], prob.ct_v[:, :1])
    s, m, grads = ref.run(cand.config, cand.surrogate, [row], True)
    option = {k: ast.literal_eval(v) for k, v in cand.notes.get("option", {}).items()}  # the adapter's reprs
    documented = "; ".join(f"{k} = {rec['documented'][k]} ({rec['cites'].get(k, '')})"
                           for k in (rec["differs"] or {"reset_grad": 0, "surrogate_arg": 0}))
    text = REPRO.format(
        title=f"{rec['label']} ({library['library']} {library['version']}): documented against implemented.",
        finding=_finding_text(rec), documented=documented, T=row.x.shape[0], surrogate=repr(cand.surrogate),
        snippet=module.layer_snippet(rec["layer"], option), x=row.x.tolist(), v0=row.v0.tolist(),
        a=row.ct_s.tolist(), b=row.ct_v.tolist(), s=np.asarray(s).tolist(), m=np.asarray(m).tolist(),
        dx=np.asarray(grads["x"]).tolist(), gradient=GRADIENT[cand.backend],
        finfo="torch.finfo" if cand.backend == "torch" else "jnp.finfo")
    path = out / "repro" / f"{library['library']}_{n:03d}.py"
    path.write_text(f"# {generated_by(library['library'])}\n" + text)
    code = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300).returncode
    rec["reproducer"] = {"path": str(path), "exit": code}
    written.append(path)
  return written


if __name__ == "__main__":
  sys.exit(main())
