"""PNG figures: per surrogate, each candidate's g and P over the reference's; per benchmark op the throughput.

Drawn from the JSON alone (:class:`verification.results.Curve`, written by the verification run):
no jax here. Figures are drawn with the Agg canvas and saved without a software tag or timestamp,
so the same inputs give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullLocator

from verification.results import Curve

from .data import Table, column_title

matplotlib.use("Agg")

STYLE = {"svg.hashsalt": "surrogate-harness", "font.size": 9, "axes.titlesize": 9, "figure.dpi": 80}
DPI = 80
ERROR_FLOOR = 1e-18  # an exact match is drawn here on the log axis
#: |g − reference g| above this fraction of the reference's peak is shaded: at 80 dpi a panel is
#: ~150 pixels high, so 1e-3 of the peak is the smallest difference the g panel itself can show.
VISIBLE = 1e-3


def save(fig: Figure, path: Path) -> None:
  """Writes a PNG with no metadata that changes from run to run."""
  path.parent.mkdir(parents=True, exist_ok=True)
  FigureCanvasAgg(fig)
  fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})


# ---------------------------------------------------------------------------------------------
# Surrogates
# ---------------------------------------------------------------------------------------------


def values(seq: Sequence[float | None], n: int) -> np.ndarray | None:
  """A curve's values as float64 (None as NaN), or None where the run wrote none of the right length."""
  if len(seq) != n:
    return None
  return np.array([np.nan if v is None else v for v in seq], np.float64)


def difference(c: Curve) -> tuple[np.ndarray, np.ndarray] | None:
  """(|g − reference g| floored at :data:`ERROR_FLOOR`, where it exceeds :data:`VISIBLE` of the peak)."""
  g, ref = values(c.g, len(c.x)), values(c.reference_g, len(c.x))
  if g is None or ref is None:
    return None
  diff = np.abs(g - ref)
  peak = np.nanmax(np.abs(ref)) if np.isfinite(ref).any() else 0.0
  large = ~(diff <= VISIBLE * peak)  # NaN on either side counts as different
  return np.maximum(diff, ERROR_FLOOR), large  # NaN stays NaN: not drawn, but shaded


def shade(ax, x: np.ndarray, where: np.ndarray, failing: Sequence[float]) -> None:
  """Marks the failing region: shaded where ``where``, a red line at each failing input in view."""
  if where.any():
    ax.fill_between(x, 0, 1, where=where, transform=ax.get_xaxis_transform(), color="C3", alpha=0.15, lw=0)
  for w in failing:
    if x[0] <= w <= x[-1]:
      ax.axvline(w, color="C3", lw=0.9)


def surrogate_figure(rows: Sequence[tuple[str, Curve, Sequence[float]]]) -> Figure:
  """One row per candidate (label, its curve, its failing inputs): g, P, and |g − reference g|."""
  with matplotlib.rc_context(STYLE):
    height = 2.5 * len(rows) + 0.3
    fig = Figure(figsize=(12, height))
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.5 / height, top=1 - 0.35 / height, wspace=0.22, hspace=0.55)
    axes = fig.subplots(len(rows), 3, squeeze=False)
    for row, (label, c, failing) in zip(axes, rows, strict=True):
      x = np.array(c.x, np.float64)
      d = difference(c)
      large = d[1] if d is not None else np.zeros(len(x), bool)
      for ax, mine, ref, title in ((row[0], c.g, c.reference_g, "g(x)"), (row[1], c.P, c.reference_P, "P(x)")):
        theirs, ours = values(mine, len(x)), values(ref, len(x))
        if ours is not None:
          ax.plot(x, ours, color="0.3", lw=1.0, ls="--", label="reference")
        if theirs is not None:
          ax.plot(x, theirs, color="C0", lw=1.4, label="candidate")
        shade(ax, x, large, failing)
        ax.set_title(f"{title}   {label}")
        ax.grid(alpha=0.3)
      row[0].legend(loc="upper right", fontsize=7)
      ax = row[2]
      if d is not None:
        ax.semilogy(x, d[0], "-", lw=0.9, color="C3")
        ref = values(c.reference_g, len(x))
        if np.isfinite(ref).any() and np.nanmax(np.abs(ref)) > 0:  # the shading threshold
          ax.axhline(VISIBLE * np.nanmax(np.abs(ref)), color="0.4", lw=0.8, ls=":")
        ax.yaxis.set_major_locator(LogLocator(numticks=5))
        ax.yaxis.set_minor_locator(NullLocator())
        shade(ax, x, large, failing)
      ax.set_title("|g − reference g|, float64")
      ax.grid(alpha=0.3)
      for a in row:
        a.set_xlabel("x")
  return fig


def plot_surrogate(rows: Sequence[tuple[str, Curve, Sequence[float]]], path: Path) -> None:
  save(surrogate_figure(rows), path)


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
