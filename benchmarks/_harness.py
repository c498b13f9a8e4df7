"""Benchmark cases and their measurement: AOT compile, device inputs, interleaved comparator."""

from __future__ import annotations

import dataclasses
import math
import platform
import statistics
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import jax
import pytest

import surrogates
from benchmarks import _kernels, _peers
from benchmarks._options import BenchConfig
from surrogates import Surrogate

REFERENCE = "surrogates"
CONFIG = pytest.StashKey[BenchConfig]()
SKIPPED = pytest.StashKey[list]()


@dataclasses.dataclass(frozen=True)
class Case:
  """One benchmark: an operation on one spike function at one dtype and size.

  For the reference (``library == 'surrogates'``) the comparator is the baseline kernel; for a
  peer it is the reference surrogate the peer implements.
  """

  op: str
  name: str
  library: str
  dtype: str
  log2_size: int
  reference: Surrogate
  spike: Callable | None = None

  @property
  def id(self) -> str:
    who = self.name if self.library == REFERENCE else f"{self.library}:{self.name}"
    return f"{self.op}-{who}-{self.dtype}-2^{self.log2_size}"

  def __str__(self) -> str:
    return self.id


def selected_names(only: tuple[str, ...]) -> list[str]:
  """Registry names matching ``--only`` (class or snake_case names, any case); all when empty."""
  if not only:
    return list(surrogates.REGISTRY)
  wanted = {o.lower().replace("_", "") for o in only}
  names = [n for n in surrogates.REGISTRY if n.lower() in wanted]
  unknown = wanted - {n.lower() for n in names}
  if unknown:
    raise pytest.UsageError(f"--only: unknown surrogates {sorted(unknown)}; known: {', '.join(surrogates.REGISTRY)}")
  return names


def cases(cfg: BenchConfig) -> Iterator[Any]:
  """pytest params of every case of the run, peers (and peers that are unavailable) included."""
  names = selected_names(cfg.only)
  peer_pairs: list[_peers.Pair] = []
  if cfg.peers:
    for library in _peers.LIBRARIES:
      found, reason = _peers.pairs(library, names)
      peer_pairs += found
      if reason:
        yield pytest.param(None, id=f"peer-{library}", marks=pytest.mark.skip(reason=reason))
  for op in cfg.ops:
    for dtype in cfg.dtypes:
      for log2 in cfg.lif_sizes if op == "lif" else cfg.sizes:
        for name in names:
          reference = surrogates.REGISTRY[name]()
          case = Case(op, name, REFERENCE, dtype, log2, reference, reference)
          yield pytest.param(case, id=case.id)
          for pair in (p for p in peer_pairs if p.name == name):
            case = Case(op, name, pair.library, dtype, log2, pair.reference, pair.peer)
            yield pytest.param(case, id=case.id)


def device(cfg: BenchConfig) -> jax.Device:
  """The first device of the requested platform."""
  return jax.devices(cfg.device)[0]


def compile_timed(fn: Callable[..., Any], args: tuple) -> tuple[Callable[..., Any], float]:
  """Compiles ``fn`` ahead of time for ``args``: (executable, seconds spent lowering and compiling)."""
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  return compiled, time.perf_counter() - start


_BASELINES: dict[tuple, tuple[Callable[..., Any], float]] = {}


def baseline_executable(op: str, args: tuple, lif_steps: int) -> tuple[Callable[..., Any], float]:
  """The compiled baseline kernel for ``op`` at these argument shapes (compiled once per run)."""
  key = (op, lif_steps, *((a.shape, str(a.dtype), str(a.sharding)) for a in args))
  if key not in _BASELINES:
    _BASELINES[key] = compile_timed(_kernels.baseline_kernel(op, lif_steps), args)
  return _BASELINES[key]


def call_timed(fn: Callable[..., Any], args: tuple) -> float:
  """Seconds for one call, waiting for the result."""
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - start


def choose_rounds(seconds_per_round: float, max_time: float, fixed: int = 0) -> int:
  """``fixed`` if given, else enough rounds to fill ``max_time``, between 10 and 200."""
  if fixed > 0:
    return fixed
  return int(min(200, max(10, math.ceil(max_time / max(seconds_per_round, 1e-9)))))


def paired_ratio(times: list[float], other_times: list[float]) -> float:
  """Median over rounds of ``t / t_other``, each pair timed back to back.

  Load from other processes comes in bursts longer than a round, so it scales both members of a
  pair alike: the paired median is steadier than the ratio of the two medians on a shared machine.
  """
  return statistics.median([t / o for t, o in zip(times, other_times, strict=False)])


def run_case(benchmark: Any, case: Case, cfg: BenchConfig) -> dict[str, Any]:
  """Times ``case`` with ``benchmark.pedantic``, the comparator interleaved round by round.

  Returns the extra_info it records: sizes, bytes, GB/s, medians, ratio (see :func:`paired_ratio`),
  compile times.
  """
  dev = device(cfg)
  n = 2**case.log2_size
  host = _kernels.make_inputs(case.op, n, case.dtype, case.reference.length_scale(), cfg.lif_steps)
  args = tuple(jax.device_put(a, dev) for a in host)
  jax.block_until_ready(args)
  timed, compile_s = compile_timed(_kernels.surrogate_kernel(case.op, case.spike, cfg.lif_steps), args)
  if case.library == REFERENCE:
    other, other_compile_s = baseline_executable(case.op, args, cfg.lif_steps)
  else:
    other, other_compile_s = compile_timed(_kernels.surrogate_kernel(case.op, case.reference, cfg.lif_steps), args)

  warm = [call_timed(f, args) for f in (timed, other, timed, other)]
  rounds = choose_rounds(sum(warm[2:]), cfg.max_time, cfg.rounds)
  other_times: list[float] = []
  benchmark.group = f"{case.op}-{case.dtype}-2^{case.log2_size}"
  benchmark.pedantic(
      lambda: jax.block_until_ready(timed(*args)),
      setup=lambda: other_times.append(call_timed(other, args)) and None,
      rounds=rounds,
  )
  times = list(benchmark.stats.stats.data) if benchmark.stats else [warm[2]]
  other_times = other_times or [warm[3]]
  median, other_median = statistics.median(times), statistics.median(other_times)
  paired = paired_ratio(times, other_times)
  nbytes = _kernels.bytes_moved(case.op, n, case.dtype, cfg.lif_steps)
  arithmetic, transcendental = _kernels.arithmetic_class(case.reference)
  info: dict[str, Any] = {
      "surrogate": case.name,
      "params": dict(case.reference.params),
      "library": case.library,
      "op": case.op,
      "dtype": case.dtype,
      "size": n * cfg.lif_steps if case.op == "lif" else n,
      "log2_size": case.log2_size,
      "bytes": nbytes,
      "gbps": nbytes / median / 1e9,
      "median_s": median,
      "compile_s": compile_s,
      "rounds": rounds,
      "arithmetic": arithmetic,
      "transcendental_ops": list(transcendental),
      "smoothness": str(case.reference.smoothness),
      **device_info(dev),
      "versions": versions(),
  }
  if case.op == "lif":
    info.update(neurons=n, lif_steps=cfg.lif_steps)
  if case.library == REFERENCE:
    info.update(
        baseline_median_s=other_median,
        baseline_compile_s=other_compile_s,
        baseline_gbps=nbytes / other_median / 1e9,
        ratio=paired,
        ratio_of_medians=median / other_median,
        ratio_of_mins=min(times) / min(other_times),
    )
  else:
    info.update(
        reference_median_s=other_median,
        reference_compile_s=other_compile_s,
        peer_ratio=paired,
        peer_ratio_of_medians=median / other_median,
        peer_ratio_of_mins=min(times) / min(other_times),
    )
  benchmark.extra_info.update(info)
  return info


def device_info(dev: jax.Device) -> dict[str, str]:
  """Platform and kind of the device the run uses."""
  return {"device": dev.platform, "device_kind": dev.device_kind}


def versions() -> dict[str, str | None]:
  """Versions of Python, JAX and the libraries benchmarked."""
  out = {"python": platform.python_version(), "jax": jax.__version__, "surrogates": surrogates.__version__}
  for dist in ("jaxlib", "numpy", "pytest-benchmark", *_peers.LIBRARIES):
    out[dist] = _peers.version(dist)
  return out


class _Recorder:
  """Stands in for pytest-benchmark's fixture when a case is measured again outside a test."""

  def __init__(self) -> None:
    self.extra_info: dict[str, Any] = {}
    self.group = ""
    self.stats: Any = None

  def pedantic(self, target: Callable[[], Any], setup: Callable[[], Any], rounds: int) -> None:
    data = []
    for _ in range(rounds):
      setup()
      start = time.perf_counter()
      target()
      data.append(time.perf_counter() - start)
    self.stats = types.SimpleNamespace(stats=types.SimpleNamespace(data=data))


def remeasure(key: list, cfg: BenchConfig, factor: float = 4.0) -> dict[str, Any]:
  """Measures a reference case again, by its report key, with ``factor`` times the timing budget."""
  op, _, name, dtype, log2 = key
  reference = surrogates.REGISTRY[name]()
  case = Case(op, name, REFERENCE, dtype, int(log2), reference, reference)
  longer = dataclasses.replace(cfg, max_time=cfg.max_time * factor, rounds=cfg.rounds and cfg.rounds * int(factor))
  return run_case(_Recorder(), case, longer)
