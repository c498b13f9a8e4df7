"""Benchmark options: parsing of the command-line values into a :class:`BenchConfig`."""

from __future__ import annotations

import dataclasses
import re

from benchmarks._ops import NAMES as OPS
from verification.engine.runner import DEVICES as _DEVICE_PLATFORMS

#: JAX_PLATFORMS for each --device, as verification sets it for its workers (the host CPU stays available
#: next to an accelerator).
PLATFORMS = {device: platforms for device, platforms in _DEVICE_PLATFORMS.items() if platforms}
DEVICES = tuple(PLATFORMS)
DTYPES = ("float32", "bfloat16")
#: The grids (``--smoke``, the default, ``--full``): ops, dtypes and log2 element counts per device; an explicit
#: ``--ops``/``--dtypes``/``--sizes`` replaces that axis of the grid. The default is what the targets are judged
#: on, the VJP in float32 at a memory-bound size, and ends in a few minutes (README, Benchmarks): on the CPU 2^24
#: alone (a cache-resident size costs two scrubs of twice the LLC a round), on an accelerator 2^24 and 2^26, whose
#: calls are long next to the host's dispatch (about 10-20 µs a call).
GRIDS = ("smoke", "default", "full")
DEFAULT_OPS: tuple[str, ...] = ("vjp",)
DEFAULT_DTYPES: tuple[str, ...] = ("float32",)
DEFAULT_SIZES = {"cpu": (24,), "gpu": (24, 26), "tpu": (24, 26)}
FULL_SIZES = {"cpu": (10, 16, 24), "gpu": (10, 16, 22, 26), "tpu": (10, 16, 22, 26)}
ALL_SIZES = {"cpu": tuple(range(10, 25)), "gpu": tuple(range(10, 27)), "tpu": tuple(range(10, 27))}
#: ``--smoke``: one surrogate (unless ``--only``), the VJP, float32, one memory-bound size, the A/A control.
SMOKE_ONLY = ("Sigmoid",)
SMOKE_SIZES = {"cpu": (24,), "gpu": (26,), "tpu": (26,)}
#: ``--layer --smoke``: the shorter sequence only.
SMOKE_LAYER_STEPS = (100,)


@dataclasses.dataclass(frozen=True)
class BenchConfig:
  """Everything a benchmark run is parameterised by."""

  device: str = "cpu"
  sizes: tuple[int, ...] = DEFAULT_SIZES["cpu"]
  dtypes: tuple[str, ...] = DEFAULT_DTYPES
  ops: tuple[str, ...] = DEFAULT_OPS
  only: tuple[str, ...] = ()
  peers: bool = False
  rounds: int = 0
  max_time: float = 0.3
  compare: str | None = None
  threshold: float = 0.05
  out_dir: str = "results"
  #: The layer benchmark (Linear + LIF) instead of the kernels: neurons, time steps, batch.
  layer: bool = False
  layer_neurons: tuple[int, ...] = (1024,)
  layer_steps: tuple[int, ...] = (100, 500)
  layer_batch: int = 16
  #: Which grid was run ("smoke", "default" or "full") and the options that replaced an axis of it.
  grid: str = "default"
  explicit: tuple[str, ...] = ()

  def grid_text(self) -> str:
    """One line for the terminal and the report: the grid's name, what it holds, the options that changed it."""
    if self.layer:
      what = (f"layer: neurons {', '.join(map(str, self.layer_neurons))}; T {', '.join(map(str, self.layer_steps))};"
              f" batch {self.layer_batch}")
    else:
      what = (f"{', '.join(self.ops)}; {', '.join(self.dtypes)}; {', '.join(f'2^{s}' for s in self.sizes)};"
              f" {', '.join(self.only) if self.only else 'every surrogate'}")
    changed = f", changed by {' '.join(self.explicit)}" if self.explicit else ""
    return f"{self.grid} grid ({what}{changed})"


def parse_exponents(text: str | None, default: tuple[int, ...], full: tuple[int, ...]) -> tuple[int, ...]:
  """'10,16,22' | '10-22' | 'all' | '' -> sorted log2 sizes ('2^12' and '4096' are accepted too)."""
  if not text:
    return default
  if text.strip().lower() == "all":
    return full
  out: set[int] = set()
  for part in (p.strip() for p in text.split(",") if p.strip()):
    if re.fullmatch(r"\d+-\d+", part):
      lo, hi = (int(v) for v in part.split("-"))
      out.update(range(lo, hi + 1))
    else:
      out.add(_exponent(part))
  return tuple(sorted(out))


def _exponent(part: str) -> int:
  """'12' -> 12, '2^12' -> 12, '4096' -> 12 (numbers above 64 are element counts)."""
  if part.startswith("2^"):
    return int(part[2:])
  value = int(part)
  if value <= 64:
    return value
  if value & (value - 1):
    raise ValueError(f"size {value} is not a power of two")
  return value.bit_length() - 1


def parse_list(text: str | None, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
  """A comma-separated subset of ``allowed`` (all of it when empty)."""
  if not text:
    return allowed
  items = tuple(p.strip() for p in text.split(",") if p.strip())
  unknown = [i for i in items if i not in allowed]
  if unknown:
    raise ValueError(f"unknown {what} {unknown}; choose from {', '.join(allowed)}")
  return items


def parse_threshold(text: str | float) -> float:
  """'0.05' or '5%' -> 0.05."""
  text = str(text).strip()
  value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
  if not value > 0:
    raise ValueError(f"--threshold must be > 0, got {text!r}")
  return value


def grid_of(get) -> str:
  """"smoke", "full" or "default" from ``--smoke`` and ``--full`` (ValueError for both)."""
  smoke, full = bool(get("bench_smoke")), bool(get("bench_full"))
  if smoke and full:
    raise ValueError("--smoke and --full exclude each other")
  return "smoke" if smoke else "full" if full else "default"


def build_config(get) -> BenchConfig:
  """Builds the configuration from ``get(option_name)`` (pytest's ``config.getoption``): the grid of
  ``--smoke``/``--full`` (the default grid otherwise), each axis replaced by its explicit option."""
  device = get("bench_device")
  grid = grid_of(get)
  sizes = {"smoke": SMOKE_SIZES, "default": DEFAULT_SIZES, "full": FULL_SIZES}[grid][device]
  ops = OPS if grid == "full" else DEFAULT_OPS
  dtypes = DTYPES if grid == "full" else DEFAULT_DTYPES
  only = tuple(p.strip() for p in (get("bench_only") or "").split(",") if p.strip())
  if grid == "smoke" and not only:
    only = SMOKE_ONLY
  steps = SMOKE_LAYER_STEPS if grid == "smoke" else BenchConfig.layer_steps
  names = {"bench_sizes": "--sizes", "bench_dtypes": "--dtypes", "bench_ops": "--ops", "bench_only": "--only",
           "bench_layer_neurons": "--layer-neurons", "bench_layer_steps": "--layer-steps"}
  explicit = tuple(f"{flag} {get(dest)}" for dest, flag in names.items() if get(dest))
  return BenchConfig(
      device=device,
      sizes=parse_exponents(get("bench_sizes"), sizes, ALL_SIZES[device]),
      dtypes=parse_list(get("bench_dtypes"), DTYPES, "dtypes") if get("bench_dtypes") else dtypes,
      ops=parse_list(get("bench_ops"), OPS, "ops") if get("bench_ops") else ops,
      only=only,
      peers=bool(get("bench_peers")),
      rounds=int(get("bench_rounds")),
      max_time=float(get("bench_max_time")),
      compare=get("bench_compare"),
      threshold=parse_threshold(get("bench_threshold")),
      out_dir=get("bench_out"),
      layer=bool(get("bench_layer")),
      layer_neurons=parse_ints(get("bench_layer_neurons"), BenchConfig.layer_neurons),
      layer_steps=parse_ints(get("bench_layer_steps"), steps),
      layer_batch=int(get("bench_layer_batch")),
      grid=grid,
      explicit=explicit,
  )


def parse_ints(text: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
  """'100,500' -> (100, 500); the default when empty."""
  if not text:
    return default
  return tuple(int(p) for p in text.split(",") if p.strip())
