"""Benchmark options: parsing of the command-line values into a :class:`BenchConfig`."""

from __future__ import annotations

import dataclasses
import re

from benchmarks._ops import NAMES as OPS

DEVICES = ("cpu", "gpu", "tpu")
#: JAX_PLATFORMS for each --device (the host CPU stays available next to an accelerator).
PLATFORMS = {"cpu": "cpu", "gpu": "cuda,cpu", "tpu": "tpu,cpu"}
DTYPES = ("float32", "bfloat16")
#: log2 of the element counts: the defaults and the full sweep, per device.
DEFAULT_SIZES = {"cpu": (10, 16, 24), "gpu": (10, 16, 22, 26), "tpu": (10, 16, 22, 26)}
ALL_SIZES = {"cpu": tuple(range(10, 25)), "gpu": tuple(range(10, 27)), "tpu": tuple(range(10, 27))}


@dataclasses.dataclass(frozen=True)
class BenchConfig:
  """Everything a benchmark run is parameterised by."""

  device: str = "cpu"
  sizes: tuple[int, ...] = DEFAULT_SIZES["cpu"]
  dtypes: tuple[str, ...] = DTYPES
  ops: tuple[str, ...] = OPS
  only: tuple[str, ...] = ()
  peers: bool = False
  rounds: int = 0
  max_time: float = 0.3
  compare: str | None = None
  threshold: float = 0.05
  out_dir: str = "reports"
  #: The layer benchmark (Linear + LIF) instead of the kernels: neurons, time steps, batch.
  layer: bool = False
  layer_neurons: tuple[int, ...] = (1024,)
  layer_steps: tuple[int, ...] = (100, 500)
  layer_batch: int = 16


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


def build_config(get) -> BenchConfig:
  """Builds the configuration from ``get(option_name)`` (pytest's ``config.getoption``)."""
  device = get("bench_device")
  return BenchConfig(
      device=device,
      sizes=parse_exponents(get("bench_sizes"), DEFAULT_SIZES[device], ALL_SIZES[device]),
      dtypes=parse_list(get("bench_dtypes"), DTYPES, "dtypes"),
      ops=parse_list(get("bench_ops"), OPS, "ops"),
      only=tuple(p.strip() for p in (get("bench_only") or "").split(",") if p.strip()),
      peers=bool(get("bench_peers")),
      rounds=int(get("bench_rounds")),
      max_time=float(get("bench_max_time")),
      compare=get("bench_compare"),
      threshold=parse_threshold(get("bench_threshold")),
      out_dir=get("bench_out"),
      layer=bool(get("bench_layer")),
      layer_neurons=parse_ints(get("bench_layer_neurons"), BenchConfig.layer_neurons),
      layer_steps=parse_ints(get("bench_layer_steps"), BenchConfig.layer_steps),
      layer_batch=int(get("bench_layer_batch")),
  )


def parse_ints(text: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
  """'100,500' -> (100, 500); the default when empty."""
  if not text:
    return default
  return tuple(int(p) for p in text.split(",") if p.strip())
