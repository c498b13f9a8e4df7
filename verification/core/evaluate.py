"""Evaluating a candidate: every quantity the checks need, robust to a candidate that misbehaves.

For a JAX candidate one jitted *bundle* per dtype computes, elementwise:
  H   = fn(x)                      the forward
  g   = d/dx fn (VJP, cotangent 1)  the gradient a user gets
  d2H = d/dx g                     the second derivative of the spike function
  P, dP                            surrogate_fun and its autodiff derivative (if given)
  sg                               surrogate_grad (if given)
Inputs are padded to a fixed length so each (candidate, dtype) compiles once. If the bundle fails
(a candidate without reverse-over-reverse, say), each quantity is evaluated on its own so the
others still get checked; the error is kept for the check that needs that quantity.

Parameters as arguments: a reference surrogate (``fn`` a registry :class:`surrogates.Surrogate`
whose ``surrogate_fun``/``surrogate_grad`` are its own) is rebuilt inside the jitted bundle as
``type(s)(**static, **params)`` with its real-valued parameters passed as (weakly typed) jit
arguments, so all parameter sets of one surrogate share one compiled bundle per dtype. Integer
parameters (SquarewaveFourierSeries' ``n``) stay static: they change the program. Where the
surrogate does not accept traced parameters, the bundle is compiled per parameter set as before.
The checks' other programs (the transformed VJPs, the shapes of the forward) are compiled the same
way through :meth:`Evaluator.program`. Compiled programs are kept per process (:data:`_SHARED`), and
the persistent compilation cache (:mod:`verification.core.cache`) keeps them across processes and runs.

Compiled programs kept: tracing, lowering and looking a program up in the compilation cache is most of what
checking a candidate costs once its compilation is cached. Where a worker checks the reference target, and in a
judge for the reference's own programs (``keep_programs``), each shared program's executable is saved once
compiled (``jax.experimental.serialize_executable``), keyed by what
builds it, the surrogate's class and static parameters, the abstract values of its arguments, the machine
and the keyed directory's code and JAX versions; a later run reads it back and calls it (:func:`kept`). Only
there: a registry surrogate anywhere else may come from a module that changed the class, and must be traced
as it is.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import surrogates
from verification.core import cache, torch_bridge
from verification.core.candidate import Candidate
from verification.core.errors import CandidateError, describe
from verification.core.tape import Tape, packed_against, recorded, unpacked_against

#: Inputs are evaluated in blocks of this many points (padded): every evaluation of a dtype, the
#: quadrature's few hundred nodes included, runs the same compiled bundle.
BLOCK = 1 << 12
#: g at up to this many points (the quadrature's tails: one 15-point rule of quad a call) is evaluated by a small
#: program computing g alone.
SMALL = 16
#: Evaluations kept per evaluator (:meth:`Evaluator.evaluate`).
RECENT = 8
QUANTITIES = ("H", "g", "d2H", "P", "dP", "sg")


def _elementwise_grad(f: Callable) -> Callable:
  return lambda v: jax.grad(lambda u: jnp.sum(f(u)))(v)


def _jax_quantity_fns(c: Candidate) -> dict[str, Callable]:
  fns: dict[str, Callable] = {"H": c.fn, "g": _elementwise_grad(c.fn)}
  fns["d2H"] = _elementwise_grad(fns["g"])
  if c.surrogate_fun is not None:
    fns["P"] = c.surrogate_fun
    fns["dP"] = _elementwise_grad(c.surrogate_fun)
  if c.surrogate_grad is not None:
    fns["sg"] = c.surrogate_grad
  return fns


def _shared_builder(c: Candidate) -> tuple[tuple, dict[str, float]] | None:
  """(key, traced parameters) when the candidate is a reference surrogate used as-is, else None.

  The key names the program: the surrogate's class, its static (integer) parameters and which of
  P and surrogate_grad the candidate exposes.
  """
  s = c.fn
  if c.backend != "jax" or not isinstance(s, surrogates.Surrogate) or type(s) not in REGISTERED:
    return None
  for name, given in (("surrogate_fun", c.surrogate_fun), ("surrogate_grad", c.surrogate_grad)):
    if given is not None and not (getattr(given, "__self__", None) is s
                                  and getattr(given, "__func__", None) is getattr(type(s), name)):
      return None
  static, traced = {}, {}
  specs = type(s).parameter_specs()
  for k, v in s.params.items():
    if k in specs and specs[k].static:
      static[k] = v
    else:
      try:  # a Python float is a weakly typed jit argument: it promotes like the constant it replaces
        traced[k] = float(v)
      except (TypeError, ValueError):
        return None
  key = (type(s), tuple(sorted(static.items())), c.surrogate_fun is not None, c.surrogate_grad is not None)
  return key, traced


REGISTERED = frozenset(surrogates.REGISTRY.values())
#: (key, build) -> the jitted ``(params, *args) -> build(rebuilt candidate, *args)``, or None where
#: tracing the parameters failed (that key then compiles per parameter set).
_SHARED: dict[tuple, Callable | None] = {}
#: A kept program (:func:`kept`: its name, the arguments' tree and abstract values) -> its compiled executable
#: (read back or compiled here), or None where compiling, loading or running it failed (the program is called as
#: it is).
_KEPT: dict[tuple, Callable | None] = {}
_SHARED_LOCK = threading.Lock()


def _rebuild(cls: type, params: dict) -> surrogates.Surrogate:
  """``cls(**params)`` with traced parameters.

  Where the constructor's validation rejects tracers (it validates concrete values; these were
  validated when the candidate was built), the fields are set without it. A surrogate whose code
  branches on a parameter in Python then raises while tracing (a tracer has no truth value), and the
  evaluator falls back to one program per parameter set: a traced parameter never silently changes
  the program.
  """
  try:
    return cls(**params)
  except Exception:
    s = object.__new__(cls)
    for k, v in params.items():
      object.__setattr__(s, k, v)
    return s


def _rebuilt(key: tuple, params: dict[str, float]) -> Candidate:
  """The candidate of ``key`` at (traced) ``params``: the surrogate and those of its own P and
  surrogate_grad that the original exposes."""
  cls, static, has_p, has_sg = key
  s = _rebuild(cls, {**dict(static), **params})
  return Candidate(name=s.name, params=s.params, fn=s, surrogate_fun=s.surrogate_fun if has_p else None,
                   surrogate_grad=s.surrogate_grad if has_sg else None)


def _named(f: Callable, like: Callable) -> Callable:
  """``f`` named as ``like`` (the name JAX's compilation logs and profiles show)."""
  f.__name__ = f.__qualname__ = getattr(like, "__name__", "program")
  return f


def _cyclic(x: np.ndarray, total: int) -> np.ndarray:
  """``x`` repeated to ``total`` elements (``np.resize``'s values, by doubling copies: ``np.resize`` joins one copy
  per repetition, 4,096 of them for a scalar padded to a block)."""
  out = np.empty(total, x.dtype)
  n = min(x.size, total)
  out[:n] = x[:n]
  while n < total:
    m = min(n, total - n)
    out[n:n + m] = out[:m]
    n += m
  return out


@functools.cache
def bundle(quantities: tuple[str, ...]) -> Callable[[Candidate, jax.Array], dict[str, jax.Array]]:
  """The program computing ``quantities`` of a candidate at x (one function per tuple: a stable key)."""

  def build(c: Candidate, v: jax.Array) -> dict[str, jax.Array]:
    fns = _jax_quantity_fns(c)
    return {q: fns[q](v) for q in quantities}

  build.__name__ = "bundle"
  build.program_name = f"{__name__}.bundle{quantities}"
  return build


def _program_name(build: Callable) -> str | None:
  """A name that identifies ``build`` across processes: its ``program_name``, else its module and qualified
  name; None for a lambda or a nested function (no such identity: not kept)."""
  name = getattr(build, "program_name", None)
  if name is None and "<" not in build.__qualname__:
    name = f"{build.__module__}.{build.__qualname__}"
  return name


@functools.cache
def _shared_name(key: tuple, build: Callable) -> str | None:
  """A name of the program ``build`` of the shared ``key`` (:func:`_shared_builder`) that identifies it across
  processes, or None where ``build`` has none (a lambda or a nested function without ``program_name``); made once
  per program and process (every call of a kept program asks for it)."""
  name = _program_name(build)
  if name is None:
    return None
  cls, static, has_p, has_sg = key
  return f"{name} of {cls.__module__}.{cls.__qualname__}{static!r} P={has_p} sg={has_sg}"


#: Programs this process read back from JAX's persistent compilation cache: such an executable does not serialise
#: whole on the CPU (read back in a later process, it fails with "Function ... not found"), so :func:`kept` saves
#: only what it compiled itself.
_CACHE_HITS = [0]


def _count_cache_hit(event: str, **_: Any) -> None:
  if event == "/jax/compilation_cache/cache_hits":
    _CACHE_HITS[0] += 1


jax.monitoring.register_event_listener(_count_cache_hit)


def _kept_program(fn: Callable) -> Callable:
  """``fn`` under a program name of its own: JAX's compilation cache holds the kept programs apart from the same
  programs compiled elsewhere (a plain run's), so a process that keeps one compiles it itself the first time."""
  def kept_program(*args: Any) -> Any:
    return fn(*args)

  return jax.jit(kept_program)


def _abstract(a: Any) -> tuple[tuple[int, ...], str, bool]:
  """An argument's shape, dtype and weak type (a NumPy array's read directly: the checks pass thousands)."""
  if type(a) is np.ndarray:
    return a.shape, a.dtype.name, False
  t = jax.typeof(a)
  return tuple(t.shape), str(t.dtype), bool(t.weak_type)


def kept(fn: Callable, name: str, *args: Any) -> Any:
  """``fn(*args)`` (``fn`` a ``jax.jit`` function whose program ``name`` identifies across processes, with
  the abstract values of ``args``), its program compiled once and the executable kept on disk
  (:func:`verification.core.cache.save_program`; see the module): a later run reads it back and calls it,
  neither tracing, lowering nor compiling. Where that cannot be done (compiled, serialised, read back or
  run), ``fn(*args)`` as it is. For the reference target's programs only: its candidates are the project's
  own surrogates."""
  leaves, tree = jax.tree_util.tree_flatten(args)
  k = (name, tree, tuple(map(_abstract, leaves)))
  if k not in _KEPT:  # (the key on disk is hashed once per program and process, not per call)
    try:
      saved_as = cache.program_key(name, str(tree), repr(list(k[2])))
      _KEPT[k] = cache.load_program(saved_as)
      if _KEPT[k] is None:
        hits = _CACHE_HITS[0]
        _KEPT[k] = _kept_program(fn).lower(*args).compile()
        if _CACHE_HITS[0] == hits:
          cache.save_program(saved_as, _KEPT[k])
    except Exception:
      _KEPT[k] = None  # (what ``fn`` makes of these arguments is the outcome)
  call = _KEPT[k]
  if call is not None:
    try:  # (waited for: an executable that fails, fails here)
      return jax.block_until_ready(call(*args))
    except Exception:
      _KEPT[k] = None
  return fn(*args)


def _kept_by_input(recent: dict[tuple, dict], x: np.ndarray, compute: Callable[[], dict]) -> dict:
  """``compute()``, the outputs at x, kept read-only in ``recent`` (the last :data:`RECENT`, by input) and
  found there again for the same x."""
  raw = x.tobytes()  # bytes, not values: -0.0 and NaN payloads are inputs of their own
  key = (x.dtype.name, x.shape, hash(raw))
  outs = recent.get(key)
  if outs is None or outs["__x__"] != raw:
    outs = compute()
    for v in outs.values():
      if isinstance(v, np.ndarray):
        v.setflags(write=False)
    outs["__x__"] = raw
    recent[key] = outs
    while len(recent) > RECENT:
      recent.pop(next(iter(recent)))
  return outs


class Evaluator:
  """Evaluates a candidate's quantities on NumPy arrays of any float dtype."""

  def __init__(self, candidate: Candidate, tape: Tape | None = None, *, saved: bool = False,
               keep_programs: bool = False):
    cached = cache.enable()
    self.candidate = candidate
    #: The reference's own evaluator (``saved``): its values are kept on disk across runs, under the key rules
    #: of the compilation cache (:func:`verification.core.cache.load_values`); the repr names the surrogate.
    self._saved_as = repr(candidate.fn) if saved and _shared_builder(candidate) is not None else None
    #: Records (in the worker) or replays (in the judge) the candidate's outputs; None: computes them.
    self.tape = tape
    self._shared = _shared_builder(candidate)
    #: Whether its shared programs are kept on disk across runs: a worker checking the reference target (see the
    #: module), whose candidates are the project's own surrogates.
    self.keeps_programs = keep_programs and cached is not None
    self._lock = threading.Lock()
    self._programs: dict[Callable, Callable] = {}
    #: The last few evaluations, by input (oldest first), and the last few computed a second time (:meth:`again`).
    self._recent: dict[tuple, dict] = {}
    self._recent_again: dict[tuple, dict] = {}
    #: (dtype, quantities) whose bundle raised: evaluated per quantity from then on.
    self._failed: set[tuple[str, tuple[str, ...]]] = set()
    #: (quantity, input dtype) -> what came back instead; the values are kept for the other checks.
    self.dtype_mismatches: dict[tuple[str, str], str] = {}
    if candidate.backend == "jax":
      self.fns = _jax_quantity_fns(candidate)
    else:
      # surrogate_grad and surrogate_fun may be torch or NumPy functions: both are called on arrays here.
      self.fns = {"H": candidate.forward, "g": lambda x: candidate.vjp(x, np.ones_like(x))}
      if candidate.surrogate_grad is not None:
        self.fns["sg"] = torch_bridge.numpy_callable(candidate.surrogate_grad)
      if candidate.surrogate_fun is not None:
        self.fns["P"] = torch_bridge.numpy_callable(candidate.surrogate_fun)

  @property
  def available(self) -> tuple[str, ...]:
    return tuple(q for q in QUANTITIES if q in self.fns)

  def unavailable_reason(self, quantity: str) -> str:
    if quantity in ("P", "dP"):
      return "the candidate provides no surrogate_fun"
    if quantity == "sg":
      return "the candidate provides no surrogate_grad"
    return "needs JAX transforms (the candidate is evaluated through torch autograd)"

  # ------------------------------------------------------------------------------------------
  def evaluate(self, x: np.ndarray, quantities: tuple[str, ...] | None = None, *, record: bool = True
               ) -> dict[str, np.ndarray | Exception]:
    """Quantities at x (a 1-d NumPy array of one float dtype); an Exception in place of a failure.
    ``record=False``: not on the tape (the reference target's candidate serving as its own reference in the
    worker: the judge computes those values itself)."""
    quantities = tuple(q for q in (quantities or self.available) if q in self.fns)
    x = np.asarray(x)
    if not record:
      return self._outputs(x, quantities)
    return self._noted(x.dtype, self._recorded_outputs(x, quantities))

  def _outputs(self, x: np.ndarray, quantities: tuple[str, ...]) -> dict[str, np.ndarray | Exception]:
    """The candidate's quantities at x (its code runs here)."""
    if self.candidate.backend == "jax":
      outs = self._bundle_at(x)
      return {q: outs[q] for q in quantities}
    return {q: self._guard(q, lambda f=self.fns[q]: f(np.asarray(x)), x) for q in quantities}

  #: :meth:`_outputs` on the candidate's record (:mod:`verification.core.tape`).
  _recorded_outputs = recorded(_outputs)

  def again(self, x: np.ndarray, quantity: str, first: np.ndarray) -> np.ndarray | Exception:
    """``quantity`` at x computed a second time, afresh (not from the evaluations kept), for a repeatability
    comparison with ``first`` (the first evaluation's output): bit-identical for a deterministic candidate.
    For a JAX candidate the second evaluation is of the whole bundle, kept as the first ones are: the repeats
    of g and surrogate_grad at the same x are one evaluation, as their first values were. On the record packed
    against ``first`` (a few bytes where they agree)."""
    out = self._again(np.asarray(x), quantity, np.asarray(first))
    if isinstance(out, Exception) or not isinstance(out, np.ndarray) or out.dtype != np.uint8:
      return out if isinstance(out, Exception) else CandidateError(f"{quantity} computed again gave no array")
    return unpacked_against(out, np.asarray(first))

  @recorded
  def _again(self, x: np.ndarray, quantity: str, first: np.ndarray) -> np.ndarray | Exception:
    if self.candidate.backend == "jax":  # the whole bundle a second time: one repeat serves each quantity at x
      out = _kept_by_input(self._recent_again, x, lambda: self._evaluate_jax(x, self.available))[quantity]
    else:
      out = self._outputs(x, (quantity,))[quantity]
    if isinstance(out, Exception):
      return out
    out = np.asarray(out)
    if out.dtype != first.dtype or out.shape != first.shape:
      return CandidateError(f"{quantity} computed again came back as {out.dtype} of shape {out.shape}, the first "
                            f"time as {first.dtype} of shape {first.shape}")
    return packed_against(out, first)

  def near(self, x: np.ndarray, quantity: str, first: np.ndarray) -> np.ndarray | Exception:
    """``quantity`` at x, inputs that differ in few elements from those ``first`` (``quantity``'s output there)
    was computed at (a 16-bit dtype's subnormals flushed to zero, say): the value :meth:`evaluate` gives, on
    the record packed against ``first`` (the elements that differ alone) where its dtype and shape are
    ``first``'s, else whole."""
    out = self._near(np.asarray(x), quantity, np.asarray(first))
    if isinstance(out, Exception):
      return out
    if not isinstance(out, dict) or set(out) not in ({"packed"}, {"whole"}):
      return CandidateError(f"{quantity} at the nearby inputs came back as {type(out).__name__}")
    if "whole" in out:
      return self._noted(np.asarray(x).dtype, {quantity: out["whole"]})[quantity]
    return unpacked_against(out["packed"], np.asarray(first))

  @recorded
  def _near(self, x: np.ndarray, quantity: str, first: np.ndarray) -> dict[str, Any] | Exception:
    out = self._outputs(x, (quantity,))[quantity]
    if isinstance(out, Exception):
      return out
    if out.dtype != first.dtype or out.shape != first.shape:
      return {"whole": out}
    return {"packed": packed_against(out, first)}

  def _bundle_at(self, x: np.ndarray) -> dict[str, Any]:
    """Always the whole bundle: one compilation per dtype serves every check, and the checks that ask for
    several quantities at the same inputs get them from one evaluation (kept read-only)."""
    return _kept_by_input(self._recent, x, lambda: self._saved_outputs(x) if self._saved_as is not None
                          else self._evaluate_jax(x, self.available))

  def _saved_outputs(self, x: np.ndarray) -> dict[str, Any]:
    """The reference's quantities at x: read back where a run saved them, else computed (and saved where every
    quantity is an array: a failure is computed again each time)."""
    key = cache.values_key(self._saved_as, x)
    outs = cache.load_values(key)
    if outs is None or set(outs) != set(self.available):
      outs = self._evaluate_jax(x, self.available)
      if all(isinstance(v, np.ndarray) for v in outs.values()):
        cache.save_values(key, outs)
    return outs

  def _noted(self, dtype: np.dtype, outs: dict[str, Any]) -> dict[str, Any]:
    """``outs``, with a quantity that came back in another dtype than the input's noted."""
    for q, v in outs.items():
      if isinstance(v, np.ndarray) and v.dtype != dtype:
        self.dtype_mismatches[(q, np.dtype(dtype).name)] = f"{q} returned dtype {v.dtype} for input dtype {dtype}"
    return outs

  def _guard(self, name: str, thunk: Callable[[], object], x: np.ndarray) -> np.ndarray | Exception:
    try:
      out = np.asarray(thunk())
    except Exception as exc:  # candidate code: any exception is a result
      return CandidateError(f"{name} raised {describe(exc)}")
    if out.shape != x.shape:
      return CandidateError(f"{name} returned shape {out.shape} for input shape {x.shape}")
    return out

  def program(self, build: Callable[..., Any]) -> Callable[..., Any]:
    """``build(candidate, *args)`` compiled (``jax.jit``): the programs of the checks.

    For a reference surrogate used as-is, one compilation per ``build`` (and argument shapes) is
    shared by all its parameter sets: the candidate is rebuilt inside at its parameters, passed as
    arguments. Otherwise one per evaluator, the candidate closed over. ``build`` is the cache key:
    a module-level function, not a fresh closure. Arguments are NumPy arrays or pytrees of them
    (``jnp.asarray`` on a NumPy array outside a trace would compile a copy for each new shape).
    """
    if self._shared is not None:
      key, params = self._shared
      with _SHARED_LOCK:
        if (key, build) not in _SHARED:
          _SHARED[(key, build)] = jax.jit(_named(lambda p, *args: build(_rebuilt(key, p), *args), build))
        shared = _SHARED[(key, build)]
      if shared is not None:
        call = self._call_kept if self.keeps_programs else self._call_shared
        return functools.partial(call, shared, key, build, params)
    with self._lock:
      if build not in self._programs:
        c = self.candidate
        self._programs[build] = jax.jit(_named(lambda *args: build(c, *args), build))
      return self._programs[build]

  def _call_shared(self, shared: Callable, key: tuple, build: Callable, params: dict[str, float], *args: Any) -> Any:
    """The shared program at this candidate's parameters. If it fails (the surrogate's code does not
    trace in its parameters), this key is compiled per parameter set from then on."""
    try:
      return shared(params, *args)
    except Exception:
      with _SHARED_LOCK:
        _SHARED[(key, build)] = None
      return self.program(build)(*args)

  def _call_kept(self, shared: Callable, key: tuple, build: Callable, params: dict[str, float], *args: Any) -> Any:
    """The shared program at this candidate's parameters, kept across runs (:func:`kept`); where ``build`` has
    no stable name, or the shared program fails, as :meth:`_call_shared` has it."""
    name = _shared_name(key, build)
    if name is None:
      return self._call_shared(shared, key, build, params, *args)
    try:
      return kept(shared, name, params, *args)
    except Exception:
      return self._call_shared(shared, key, build, params, *args)

  def _evaluate_jax(self, x: np.ndarray, quantities: tuple[str, ...], block: int = BLOCK) -> dict:
    n = x.size
    padded = _cyclic(x.reshape(-1), -(-max(n, 1) // block) * block) if n else np.zeros(block, x.dtype)
    chunks = padded.reshape(-1, block)

    def run(qs: tuple[str, ...]) -> dict[str, np.ndarray]:
      fn = self.program(bundle(qs))
      parts = [jax.device_get(fn(chunk)) for chunk in chunks]
      return {q: np.concatenate([np.asarray(p[q]).reshape(-1) for p in parts])[:n] for q in qs}

    outs: dict = {}
    if (x.dtype.name, quantities) not in self._failed:
      try:
        outs = run(quantities)
      except Exception:
        self._failed.add((x.dtype.name, quantities))  # not tried again for this dtype
    if not outs:
      for q in quantities:
        try:
          outs.update(run((q,)))
        except Exception as exc:
          outs[q] = CandidateError(f"{q} raised {describe(exc)}")
    return outs

  # ------------------------------------------------------------------------------------------
  @functools.cached_property
  def scalar_g(self) -> Callable[[float | np.ndarray], float | np.ndarray]:
    """The spike function's gradient at float64 points: a float at a float, an array at an array
    (vectorised: the quadrature evaluates all its nodes in one call)."""
    return self._pointwise("g")

  @functools.cached_property
  def scalar_p(self) -> Callable[[float | np.ndarray], float | np.ndarray] | None:
    """surrogate_fun at float64 points (as :attr:`scalar_g`), or None if the candidate has none."""
    return self._pointwise("P") if "P" in self.fns else None

  def _pointwise(self, q: str) -> Callable[[float | np.ndarray], float | np.ndarray]:
    def f(t: float | np.ndarray) -> float | np.ndarray:
      x = np.asarray(t, np.float64)
      flat = x.reshape(-1)
      if self.candidate.backend == "jax" and flat.size <= SMALL and q == "g":
        out = self._noted(flat.dtype, {"g": self._small_g(flat)})["g"]  # the tails' rules of quad
      else:  # the bundle every other evaluation uses
        out = self.evaluate(flat, (q,))[q]
      if isinstance(out, Exception):
        raise out
      out = np.asarray(out, np.float64)
      return float(out[0]) if x.ndim == 0 else out.reshape(x.shape)

    return f

  @recorded
  def _small_g(self, x: np.ndarray) -> np.ndarray | Exception:
    """g at a few points by a small program computing g alone."""
    return self._evaluate_jax(x, ("g",), block=SMALL)["g"]
