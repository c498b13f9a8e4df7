"""Benchmark options: parsing of the command-line values into a :class:`BenchConfig`."""

from __future__ import annotations

import dataclasses
import re

DEVICES = ("cpu", "gpu", "tpu")
#: JAX_PLATFORMS for each --device (the host CPU stays available next to an accelerator).
PLATFORMS = {"cpu": "cpu", "gpu": "cuda,cpu", "tpu": "tpu,cpu"}
OPS = ("fwd", "vjp", "jvp", "vmap_grad", "lif")
DTYPES = ("float32", "bfloat16")
#: log2 of the element counts: the defaults and the full sweep, per device.
DEFAULT_SIZES = {"cpu": (10, 16, 22), "gpu": (10, 16, 22, 26), "tpu": (10, 16, 22, 26)}
ALL_SIZES = {"cpu": tuple(range(10, 23)), "gpu": tuple(range(10, 27)), "tpu": tuple(range(10, 27))}
#: log2 of the neuron counts of the LIF layer (each unrolled over ``lif_steps`` time steps).
DEFAULT_LIF_SIZES = {"cpu": (10, 14), "gpu": (10, 14, 18), "tpu": (10, 14, 18)}
ALL_LIF_SIZES = {"cpu": tuple(range(10, 16)), "gpu": tuple(range(10, 20)), "tpu": tuple(range(10, 20))}


@dataclasses.dataclass(frozen=True)
class BenchConfig:
  """Everything a benchmark run is parameterised by."""

  device: str = "cpu"
  sizes: tuple[int, ...] = DEFAULT_SIZES["cpu"]
  lif_sizes: tuple[int, ...] = DEFAULT_LIF_SIZES["cpu"]
  lif_steps: int = 100
  dtypes: tuple[str, ...] = DTYPES
  ops: tuple[str, ...] = OPS
  only: tuple[str, ...] = ()
  peers: bool = False
  rounds: int = 0
  max_time: float = 0.15
  compare: str | None = None
  threshold: float = 0.25
  out_dir: str = "reports"


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
  """'0.25' or '25%' -> 0.25."""
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
      lif_sizes=parse_exponents(get("bench_lif_sizes"), DEFAULT_LIF_SIZES[device], ALL_LIF_SIZES[device]),
      lif_steps=int(get("bench_lif_steps")),
      dtypes=parse_list(get("bench_dtypes"), DTYPES, "dtypes"),
      ops=parse_list(get("bench_ops"), OPS, "ops"),
      only=tuple(p.strip() for p in (get("bench_only") or "").split(",") if p.strip()),
      peers=bool(get("bench_peers")),
      rounds=int(get("bench_rounds")),
      max_time=float(get("bench_max_time")),
      compare=get("bench_compare"),
      threshold=parse_threshold(get("bench_threshold")),
      out_dir=get("bench_out"),
  )
