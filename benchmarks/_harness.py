"""Benchmark cases and the measurement method.

The method, and why (each point removes a bias an A/A control showed):

- **The device is timed, not the host.** JAX dispatches asynchronously: a call returns once the
  kernel is enqueued. A timed *batch* enqueues ``N`` calls back to back and waits once, on the last
  output (:func:`time_batch`); the time per call is ``total / N``. ``N`` is chosen so that a batch
  lasts at least :data:`MIN_BATCH_S` of its platform (:func:`calibrate`), so the one wait and the
  first call's dispatch are a small part of it. What a caller pays on top of the device, one call
  and then a wait, is measured separately and reported as the *host overhead*
  (:func:`host_overhead`: a single call's time minus the per-call time of the batches).
- **Nothing is allocated in the timed call.** Each kernel is compiled ahead of time as
  ``step(out, *inputs) -> outputs`` with ``out`` donated, so XLA writes into the buffers of the
  previous call; each kernel is chained on its own output buffers (the allocator's choice of a fresh
  output otherwise changes a memory-bound kernel's time several-fold).
- **Cold caches on the CPU.** Where the working set of a pair is smaller than twice the last-level
  cache, a scrub (a donated buffer of twice the LLC, read and written) runs before every timed
  batch, so neither member of a pair finds the other's inputs in cache.
- **Paired, randomised rounds.** Every round times a batch of the case and a batch of its
  comparator (the same-bytes baseline for the reference, the reference for a peer) back to back, in
  a random order; the ratio of a round is ``t / t_comparator``, and the report gives the median and
  the IQR of these ratios. Two kernels are told apart when their IQRs do not overlap; the A/A
  control's IQR is the resolution of its group (:data:`RESOLUTION`).
- **An A/A control per group** (operation, dtype, size): the baseline against a separately compiled
  copy of itself, measured the same way. Its median ratio must lie within :data:`AA_BAND` or the run
  is reported as not trustworthy.
- **The device's copy bandwidth, measured in the run** (:func:`copy_bandwidth`): a kernel that
  reads one array and writes another (``-x``, which XLA cannot elide) at the group's dtype and size,
  timed the same way; every kernel's *share* is its bytes moved / time / that bandwidth.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import platform
import statistics
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import surrogates
from benchmarks import _ops, _peers
from benchmarks._options import BenchConfig

REFERENCE = "surrogates"
CONTROL = "control"
AA_NAME = "A/A"
#: The A/A control's median ratio must lie in this band for the run to be trustworthy.
AA_BAND = (0.97, 1.03)
CONFIG = pytest.StashKey[BenchConfig]()
#: Least duration of a timed batch, per platform. On an accelerator a wait costs tens of µs and a call's
#: dispatch about as much, so a batch of at least 2 ms holds them to about 1-2% of it (and the host overhead is
#: measured and reported apart). On the CPU the device is the host: a wait returns within a few µs (the host
#: overhead the run reports), and 200 µs keeps each round's calls few where the cache is scrubbed before it.
MIN_BATCH_S = {"cpu": 200e-6}
MIN_BATCH_S_ACCELERATOR = 2e-3
MAX_REPEAT = 1000
#: Single calls (one call, then a wait) timed for the host overhead.
SINGLES = 5
#: Batches timed for the copy bandwidth of a group.
COPY_ROUNDS = 30
#: The copy kernel: reads one array, writes one.
COPY_TEXT = "-x"
#: The difference two kernels' ratios must have to be told apart: a group whose A/A IQR is at most this wide
#: separates two kernels this far apart (their IQRs, each about as wide, do not overlap).
RESOLUTION = 0.05


@dataclasses.dataclass(frozen=True)
class Case:
  """One benchmark: an operation on one spike function at one dtype and size.

  ``spike`` is timed against ``comparator``: for the reference (``library == 'surrogates'``) and the
  A/A control, ``comparator`` is None and the op's baseline kernel is the comparator (for the
  control, ``spike`` is None and the baseline is timed against a copy of itself); for a peer it is
  the reference surrogate the peer implements (with the peer's scale).
  """

  op: str
  name: str
  library: str
  dtype: str
  log2_size: int
  spike: Callable | None
  comparator: Callable | None = None

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
  """pytest params of every case of the run: per group the A/A control, then the reference and peers
  (and a skipped param for each peer library that is unavailable)."""
  names = selected_names(cfg.only)
  peer_list: list[_peers.Peer] = []
  if cfg.peers:
    for library in _peers.LIBRARIES:
      found, reason = _peers.peers(library, names)
      peer_list += found
      if reason:
        yield pytest.param(None, id=f"peer-{library}", marks=pytest.mark.skip(reason=reason))
  for op in cfg.ops:
    for dtype in cfg.dtypes:
      for log2 in cfg.sizes:
        control = Case(op, AA_NAME, CONTROL, dtype, log2, None)
        yield pytest.param(control, id=control.id)
        for name in names:
          case = Case(op, name, REFERENCE, dtype, log2, surrogates.REGISTRY[name]())
          yield pytest.param(case, id=case.id)
          for p in (p for p in peer_list if p.name == name):
            case = Case(op, name, p.library, dtype, log2, p.spike, p.reference)
            yield pytest.param(case, id=case.id)


def device(cfg: BenchConfig) -> jax.Device:
  """The first device of the requested platform."""
  return jax.devices(cfg.device)[0]


def time_batch(call: Callable[[], Any], wait: Callable[[], Any], n: int,
               clock: Callable[[], float] = time.perf_counter) -> tuple[float, float]:
  """Enqueues ``n`` calls back to back and waits once: (seconds in all, seconds until the last was enqueued)."""
  start = clock()
  for _ in range(n):
    call()
  enqueued = clock()
  wait()
  return clock() - start, enqueued - start


def per_call(total_s: float, n: int) -> float:
  """Seconds per call of a batch of ``n`` calls that took ``total_s``."""
  return total_s / n


def host_overhead(single_s: float, per_call_s: float) -> float:
  """What one call followed by a wait costs beyond the device's time per call (dispatch, the wait, the
  device idle meanwhile): a single call's time minus the per-call time of back-to-back batches."""
  return single_s - per_call_s


def min_batch_s(platform: str) -> float:
  return MIN_BATCH_S.get(platform, MIN_BATCH_S_ACCELERATOR)


class Chained:
  """A kernel compiled ahead of time to write into its own donated output buffers.

  Each call passes the previous call's outputs back as the buffers to write, so the timed call
  allocates nothing; ``keep_unused`` keeps the (otherwise unread) donated argument in the signature.
  Calling it runs one batch: ``repeat`` calls back to back, then one wait on the last output.
  """

  def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
    shapes = jax.eval_shape(fn, *args)
    dev = next(iter(args[0].devices()))
    self.out = jax.tree.map(lambda s: jax.device_put(jnp.zeros(s.shape, s.dtype), dev), shapes)
    start = time.perf_counter()
    step = jax.jit(lambda out, *a: fn(*a), donate_argnums=0, keep_unused=True)
    self.compiled = step.lower(self.out, *args).compile()
    self.compile_s = time.perf_counter() - start
    self.args = args
    self.repeat = 1

  def call(self) -> None:
    """Enqueues one call (JAX returns before the device has run it)."""
    self.out = self.compiled(self.out, *self.args)

  def wait(self) -> None:
    jax.block_until_ready(self.out)

  def __call__(self) -> None:
    for _ in range(self.repeat):
      self.call()
    self.wait()

  def timed(self) -> float:
    """Seconds for one batch (``repeat`` calls, one wait)."""
    return time_batch(self.call, self.wait, self.repeat)[0]

  def enqueue_share(self) -> tuple[float, float]:
    """(seconds per call, seconds per call until the batch was enqueued) of one batch."""
    total, enqueued = time_batch(self.call, self.wait, self.repeat)
    return per_call(total, self.repeat), per_call(enqueued, self.repeat)


def calibrate(kernels: tuple[Any, ...], target_s: float, max_repeat: int = MAX_REPEAT) -> int:
  """The calls per batch for ``kernels`` (each with ``repeat`` and ``timed()``): enough that a batch of the
  fastest lasts ``target_s``; sets ``repeat`` on every kernel. A batch costs a fixed overhead (the first
  dispatch, the wait) plus its calls, so the cost of a call is the slope between a single call and a batch
  (a single call's time alone, host overhead included, would make the batches short)."""
  def fastest(n: int) -> float:
    for k in kernels:
      k.repeat = n
    return min(k.timed() for k in kernels)

  def calls(cost: float) -> int:
    return max(1, min(max_repeat, math.ceil(target_s / max(cost, 1e-9))))

  single = cost = fastest(1)
  n = 1
  for _ in range(2):
    bigger = calls(cost)
    if bigger <= n:
      break
    total = fastest(bigger)
    slope = (total - single) / (bigger - 1)
    cost, n = (slope if slope > 0 else total / bigger), bigger
  n = calls(cost)
  for k in kernels:
    k.repeat = n
  return n


def singles(kernel: Chained, scrub: Callable[[], None] | None, count: int = SINGLES) -> float:
  """Median seconds of one call followed by a wait (the cache scrubbed before each where ``scrub``)."""
  repeat, kernel.repeat, times = kernel.repeat, 1, []
  for _ in range(count):
    if scrub is not None:
      scrub()
    times.append(kernel.timed())
  kernel.repeat = repeat
  return statistics.median(times)


_COPY: dict[tuple[str, str, int], dict[str, Any]] = {}


def copy_bandwidth(dev: jax.Device, dtype: str, log2_size: int, rounds: int = COPY_ROUNDS) -> dict[str, Any]:
  """The device's copy bandwidth at ``dtype`` and 2^log2_size elements, measured once per run (then
  cached): ``-x`` (one array read, one written) in batches as the cases are timed, the median of
  ``rounds`` batches. Returns ``copy_gbps``, ``copy_median_s``, ``copy_bytes`` and ``copy_calls_per_batch``."""
  key = (str(dev), dtype, log2_size)
  if key not in _COPY:
    n = 2**log2_size
    x = jax.device_put(_ops.cast(np.random.default_rng(1).uniform(-4.0, 4.0, n), dtype), dev)
    copy = Chained(lambda x: -x, (x,))
    nbytes = 2 * n * jnp.dtype(dtype).itemsize
    scrub = scrubber(dev) if dev.platform == "cpu" and nbytes < 2 * llc_bytes() else None
    copy()
    repeat = calibrate((copy,), min_batch_s(dev.platform))
    times = []
    for _ in range(rounds):
      if scrub is not None:
        scrub()
      times.append(per_call(copy.timed(), repeat))
    median = statistics.median(times)
    _COPY[key] = {"copy_gbps": nbytes / median / 1e9, "copy_median_s": median, "copy_bytes": nbytes,
                  "copy_calls_per_batch": repeat}
  return _COPY[key]


def share(nbytes: int, seconds: float, copy_gbps: float) -> float:
  """A kernel's share of the copy bandwidth: bytes moved / time / copy bandwidth."""
  return nbytes / seconds / 1e9 / copy_gbps


@functools.cache
def llc_bytes() -> int:
  """Size of the largest CPU cache (sysfs), 32 MiB when it cannot be read."""
  sizes = []
  for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
    text = f.read_text().strip().upper()
    mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
    sizes.append(int(text.rstrip("KMG")) * mult)
  return max(sizes, default=32 * 2**20)


class Scrubber:
  """Evicts the last-level cache: reads a buffer of twice its size and writes another (donated) one."""

  def __init__(self, dev: jax.Device) -> None:
    buf = jax.device_put(jnp.zeros(2 * llc_bytes() // 4, jnp.float32), dev)
    self.step = Chained(lambda b: b + 1.0, (buf,))

  def __call__(self) -> None:
    self.step()


@functools.cache
def scrubber(dev: jax.Device) -> Scrubber:
  return Scrubber(dev)


#: The fewest rounds by default, for every case. Rounds are not independent: the machine's speed
#: drifts over fractions of a second, and a kernel with more arithmetic per byte drifts differently
#: from its baseline. Measured on the 2-vCPU machine of the committed report (ReluGrad's VJP against
#: ``ct * x``, float32, 2^24, 1,800 paired rounds with one executable and one set of buffers): the
#: median of a block of 30 consecutive rounds ranged over 0.90–1.16 (sd 0.045; the A/A control's
#: 0.95–1.05, sd 0.018, so 30 rounds could fail the A/A band); of 150 rounds, sd 0.019 (A/A 0.005);
#: of 300, sd 0.012 (A/A 0.002). Where the cache is scrubbed a round's spread is about ±0.12 (IQR),
#: and the median of n rounds moves by about 1.25·σ/√n: 0.017 at 150.
MIN_ROUNDS, MAX_ROUNDS = 150, 300


def choose_rounds(seconds_per_round: float, max_time: float, fixed: int = 0) -> int:
  """``fixed`` if given, else enough rounds to fill ``max_time``, between :data:`MIN_ROUNDS` and
  :data:`MAX_ROUNDS`."""
  if fixed > 0:
    return fixed
  return int(min(MAX_ROUNDS, max(MIN_ROUNDS, math.ceil(max_time / max(seconds_per_round, 1e-9)))))


def quartiles(values: list[float]) -> tuple[float, float, float]:
  """(first quartile, median, third quartile); all three equal for a single value."""
  if len(values) < 2:
    return (values[0],) * 3
  q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
  return q1, q2, q3


def paired_rounds(benchmark: Any, timed: Chained, other: Chained, rounds: int, scrub: Callable[[], None] | None,
                  seed: int = 0) -> tuple[list[float], list[float]]:
  """Times ``rounds`` pairs through ``benchmark.pedantic`` (which records ``timed``'s times); in each
  round the comparator runs right before or right after ``timed``, at random. Returns both lists."""
  rng = np.random.default_rng(seed)
  scrub = scrub or (lambda: None)
  other_times: list[float] = []
  pending = False  # the comparator of the last round still has to run (it comes after)

  def flush() -> None:
    nonlocal pending
    if pending:
      scrub()
      other_times.append(other.timed())
      pending = False

  def setup() -> None:
    nonlocal pending
    flush()
    scrub()
    if rng.random() < 0.5:
      other_times.append(other.timed())
      scrub()
    else:
      pending = True

  benchmark.pedantic(timed, setup=setup, rounds=rounds)
  flush()
  return list(benchmark.stats.stats.data), other_times


def run_case(benchmark: Any, case: Case, cfg: BenchConfig) -> dict[str, Any]:
  """Measures ``case`` (see the module docstring); returns the extra_info it records."""
  op = _ops.BY_NAME[case.op]
  dev = device(cfg)
  n = 2**case.log2_size
  scale = case.spike.length_scale() if isinstance(case.spike, surrogates.Surrogate) else 1.0
  args = tuple(jax.device_put(a, dev) for a in op.make_inputs(n, case.dtype, scale))
  if case.library == CONTROL:
    timed, other = Chained(op.baseline, args), Chained(op.baseline, args)
  else:
    timed = Chained(op.kernel(case.spike), args)
    other = Chained(op.baseline if case.comparator is None else op.kernel(case.comparator), args)
  nbytes = op.bytes_moved(n, case.dtype)
  scrub = scrubber(dev) if dev.platform == "cpu" and nbytes < 2 * llc_bytes() else None
  for f in (timed, other, timed, other):
    f()
  repeat = calibrate((timed, other), min_batch_s(dev.platform))
  start = time.perf_counter()
  for f in (scrub, timed, scrub, other):
    if f is not None:
      f()
  rounds = choose_rounds(time.perf_counter() - start, cfg.max_time, cfg.rounds)
  benchmark.group = f"{case.op}-{case.dtype}-2^{case.log2_size}"
  times, other_times = paired_rounds(benchmark, timed, other, rounds, scrub)
  ratios = [t / o for t, o in zip(times, other_times, strict=True)]
  q1, ratio, q3 = quartiles(ratios)
  median, other_median = per_call(statistics.median(times), repeat), per_call(statistics.median(other_times), repeat)
  single = singles(timed, scrub)
  enqueued = statistics.median(timed.enqueue_share()[1] for _ in range(3))
  copy = copy_bandwidth(dev, case.dtype, case.log2_size)
  info: dict[str, Any] = {
      "surrogate": case.name,
      "library": case.library,
      "op": case.op,
      "dtype": case.dtype,
      "size": n,
      "log2_size": case.log2_size,
      "bytes": nbytes,
      "gbps": nbytes / median / 1e9,
      "median_s": median,
      "compile_s": timed.compile_s,
      "rounds": rounds,
      "calls_per_round": repeat,
      "timing": "batch",
      "single_call_s": single,
      "host_overhead_s": host_overhead(single, median),
      "enqueue_s": enqueued,
      # the host could not enqueue calls faster than the device ran them: the batch times the dispatch
      "dispatch_bound": dev.platform != "cpu" and enqueued >= 0.9 * median,
      "scrubbed": scrub is not None,
      "ratio": ratio,
      "ratio_q1": q1,
      "ratio_q3": q3,
      "ratio_iqr": q3 - q1,
      "comparator_median_s": other_median,
      "comparator_gbps": nbytes / other_median / 1e9,
      "comparator": op.baseline_text if case.comparator is None else "reference",
      **copy,
      "copy_share": share(nbytes, median, copy["copy_gbps"]),
      "comparator_copy_share": share(nbytes, other_median, copy["copy_gbps"]),
      **device_info(dev),
  }
  if isinstance(case.spike, surrogates.Surrogate):
    arithmetic, transcendental = _ops.arithmetic_class(case.spike)
    info.update(params=dict(case.spike.params), arithmetic=arithmetic, transcendental_ops=list(transcendental),
                smoothness=str(case.spike.smoothness))
  benchmark.extra_info.update(info)
  return info


#: For the estimate printed before a run: bandwidth assumed per platform (GB/s) and seconds per case beyond its
#: rounds (two compilations, calibration, single calls, the copy bandwidth), from the runs in
#: benchmarks/README.md. On an accelerator the host also draws the inputs and copies them over, about
#: 2.6 s per GB the case moves (the H200 run: 1.5 s a case at 2^24, 3.1 s at 2^26, float32 VJP).
ESTIMATE_GBPS = {"cpu": 25.0}
ESTIMATE_GBPS_ACCELERATOR = 2000.0
ESTIMATE_FIXED_S = {"cpu": 0.6}
ESTIMATE_FIXED_S_ACCELERATOR = 0.4
ESTIMATE_SETUP_S_PER_GB_ACCELERATOR = 2.6


def estimate_s(case: Case, cfg: BenchConfig) -> float:
  """Rough seconds to measure ``case`` (for the estimate printed before the run)."""
  platform = "cpu" if cfg.device == "cpu" else "accelerator"
  gbps = ESTIMATE_GBPS.get(platform, ESTIMATE_GBPS_ACCELERATOR)
  nbytes = _ops.BY_NAME[case.op].bytes_moved(2**case.log2_size, case.dtype)
  round_s = 2 * max(min_batch_s(cfg.device), nbytes / gbps / 1e9)
  if platform == "cpu" and nbytes < 2 * llc_bytes():
    round_s += 2 * 4 * llc_bytes() / gbps / 1e9  # two scrubs a round, each reading and writing 2 x LLC
  rounds = choose_rounds(round_s, cfg.max_time, cfg.rounds)
  setup = 0.0 if platform == "cpu" else ESTIMATE_SETUP_S_PER_GB_ACCELERATOR * nbytes / 1e9
  return rounds * round_s + ESTIMATE_FIXED_S.get(platform, ESTIMATE_FIXED_S_ACCELERATOR) + setup


def device_info(dev: jax.Device) -> dict[str, str]:
  """Platform and kind of the device the run uses."""
  return {"device": dev.platform, "device_kind": dev.device_kind}


def versions() -> dict[str, str | None]:
  """Versions of Python, JAX and the libraries benchmarked."""
  from importlib import metadata

  out: dict[str, str | None] = {
      "python": platform.python_version(), "jax": jax.__version__, "surrogates": surrogates.__version__,
  }
  for dist in ("jaxlib", "numpy", "pytest-benchmark"):
    try:
      out[dist] = metadata.version(dist)
    except metadata.PackageNotFoundError:
      out[dist] = None
  out.update(_peers.versions())
  return out


class Recorder:
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
  case = Case(op, name, REFERENCE, dtype, int(log2), surrogates.REGISTRY[name]())
  longer = dataclasses.replace(cfg, max_time=cfg.max_time * factor, rounds=cfg.rounds and cfg.rounds * int(factor))
  return run_case(Recorder(), case, longer)
