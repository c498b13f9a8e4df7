"""PNG figures: per surrogate g, P and the gradient error; per benchmark op the throughput.

Figures are drawn with the Agg canvas and saved without a software tag or timestamp, so the same
inputs give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullLocator

from reports.data import Table, column_title
from verification import numerics

matplotlib.use("Agg")

STYLE = {"svg.hashsalt": "surrogate-harness", "font.size": 9, "axes.titlesize": 9, "figure.dpi": 80}
DPI = 80
ERROR_FLOOR = 1e-18  # an exact match is drawn here on the log axis


def save(fig: Figure, path: Path) -> None:
  """Writes a PNG with no metadata that changes from run to run."""
  path.parent.mkdir(parents=True, exist_ok=True)
  FigureCanvasAgg(fig)
  fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})


# ---------------------------------------------------------------------------------------------
# Surrogates
# ---------------------------------------------------------------------------------------------


def plot_range(s) -> tuple[float, float]:
  """±6 widths (a period each side for periodic surrogates), widened to show every kink."""
  half = s.period() if s.periodic else 6 * s.length_scale()
  kinks = list(s.kinks())
  margin = 2 * s.length_scale()
  return min([-half, *(k - margin for k in kinks)]), max([half, *(k + margin for k in kinks)])


def in_float64(fn, x: np.ndarray, block: int = 512) -> np.ndarray:
  """fn on x in float64, padded to a multiple of ``block`` so every call has one of few shapes."""
  n = len(x)
  padded = np.resize(np.asarray(x, np.float64), -(-n // block) * block)
  return np.asarray(fn(jnp.asarray(padded, jnp.float64)), np.float64)[:n]


def curves(s, n: int = 401) -> dict[str, np.ndarray]:
  """g and P on a grid; |g - Richardson(P)| and its error estimate at the derivative check's points."""
  lo, hi = plot_range(s)
  x = np.linspace(lo, hi, n)
  width = s.length_scale()
  h = numerics.fd_step(width)
  span = max(abs(lo), abs(hi)) / width
  xs = numerics.sample_points(width, s.kinks(), 8 * h, n=n // 2, span=span)
  xs = xs[(xs >= lo) & (xs <= hi)]
  fd, estimate = numerics.richardson(lambda v: in_float64(s.surrogate_fun, v), xs, h)
  g_xs = in_float64(s.surrogate_grad, xs)
  return {"x": x, "g": in_float64(s.surrogate_grad, x), "P": in_float64(s.surrogate_fun, x), "xs": xs,
          "error": np.maximum(np.abs(g_xs - fd), ERROR_FLOOR), "estimate": np.maximum(estimate, ERROR_FLOOR),
          "mismatch": s.primitive_rtol() * np.abs(g_xs), "h": np.array(h)}


def call_text(s) -> str:
  return f"{s.name}({', '.join(f'{k}={v!r}' for k, v in s.params.items())})"


def surrogate_figure(instances: Sequence) -> Figure:
  """One row per parameter set: g(x), P(x), and the gradient error against finite differences."""
  jax.config.update("jax_enable_x64", True)  # the curves and differences are evaluated in float64
  with matplotlib.rc_context(STYLE):
    height = 2.5 * len(instances) + 0.3
    fig = Figure(figsize=(12, height))
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.5 / height, top=1 - 0.35 / height, wspace=0.22, hspace=0.55)
    axes = fig.subplots(len(instances), 3, squeeze=False)
    for row, s in zip(axes, instances, strict=True):
      c = curves(s)
      for ax, key, title in ((row[0], "g", "g(x)"), (row[1], "P", "P(x)")):
        ax.plot(c["x"], c[key], color="C0", lw=1.4)
        for k in s.kinks():
          ax.axvline(k, color="0.6", lw=0.8, ls=":")
        ax.set_title(f"{title}   {call_text(s)}")
        ax.grid(alpha=0.3)
      ax = row[2]
      ax.semilogy(c["xs"], c["error"], ".", ms=3, color="C3")
      ax.semilogy(c["xs"], c["estimate"], "-", lw=0.8, color="0.4")
      if c["mismatch"].any():  # a declared difference between P' and g (S2NN's epsilon)
        ax.semilogy(c["xs"], np.maximum(c["mismatch"], ERROR_FLOOR), "--", lw=0.8, color="C1")
      ax.set_ylim(min(c["error"].min(), c["estimate"].min()) / 4, None)
      ax.yaxis.set_major_locator(LogLocator(numticks=5))
      ax.yaxis.set_minor_locator(NullLocator())
      ax.set_title(f"|g − Richardson(P)|, float64, h = 2^{round(math.log2(float(c['h'])))}")
      ax.grid(alpha=0.3)
      for a in row:
        a.set_xlabel("x")
  return fig


def plot_surrogate(instances: Sequence, path: Path) -> None:
  save(surrogate_figure(instances), path)


# ---------------------------------------------------------------------------------------------
# Throughput
# ---------------------------------------------------------------------------------------------


def _heatmap(ax, shade: np.ndarray, shown: np.ndarray, fmt: str, norm, cmap_name: str, rows: list[str],
             cols: list[str]) -> None:
  """Cells coloured by ``shade`` and labelled with ``shown`` (white on dark cells); missing values blank."""
  cmap = matplotlib.colormaps[cmap_name]
  ax.imshow(np.ma.masked_invalid(shade), aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
  ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
  ax.set_yticks(range(len(rows)), rows)
  for (i, j), v in np.ndenumerate(shown):
    if math.isfinite(v):
      r, g, b, _ = cmap(norm(shade[i, j]))
      colour = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"
      ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=7, color=colour)


def throughput_figure(t: Table, device: str) -> Figure:
  """Two heatmaps, rows × (dtype, size): GB/s and the time ratio to the baseline (last row: the baseline)."""
  cols = [column_title(c) for c in t.columns]
  rows = [*t.rows, "baseline"]
  gbps = np.array([[t.gbps.get((r, c), np.nan) for c in t.columns] for r in t.rows]
                  + [[t.baseline_gbps.get(c, np.nan) for c in t.columns]])
  ratio = np.array([[t.ratio.get((r, c), np.nan) for c in t.columns] for r in t.rows] + [[1.0] * len(t.columns)])
  positive = gbps[np.isfinite(gbps) & (gbps > 0)]
  low, high = (positive.min(), positive.max()) if positive.size else (1.0, 10.0)
  gnorm = LogNorm(low, max(high, low * 1.01), clip=True)
  log_ratio = np.log2(np.where(ratio > 0, ratio, np.nan))
  with matplotlib.rc_context(STYLE):
    height = 0.24 * len(rows) + 1.4
    fig = Figure(figsize=(12, height))
    fig.subplots_adjust(left=0.17, right=0.99, bottom=0.9 / height, top=1 - 0.35 / height, wspace=0.04)
    left, right = fig.subplots(1, 2, sharey=True)
    _heatmap(left, gbps, gbps, ".3g", gnorm, "YlGnBu", rows, cols)
    left.set_title(f"{t.op}: GB/s ({device})")
    _heatmap(right, log_ratio, ratio, ".2f", Normalize(-2, 2, clip=True), "RdYlGn_r", rows, cols)
    right.tick_params(labelleft=False)
    right.set_title(f"{t.op}: time ratio to the baseline ({t.baseline}); below 1 is faster")
  return fig


def plot_throughput(t: Table, device: str, path: Path) -> None:
  save(throughput_figure(t, device), path)
