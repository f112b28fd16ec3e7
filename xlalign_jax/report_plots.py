"""PNG plots: of one win-rate grid (one method x judge), a heatmap and per-target bar charts; of
the PPO runs, their training curves; of several grids (`xlalign compare`), a forest plot.

matplotlib's object API with the Agg canvas (no pyplot), so plotting changes no global backend or
state of a program that imports this.
"""
import itertools
import math
from typing import Dict, Sequence

import numpy as np
from matplotlib.figure import Figure

from xlalign_jax.report import REFERENCE_NAMES, grid_axes, method_name

_DPI = 130
_REFERENCE_COLORS = ("tab:green", "tab:purple", "tab:brown")


def _grid_values(rows: Sequence[dict], sources, targets) -> np.ndarray:
  """[3, S, T] win rate, CI low, CI high in %, NaN where a cell is missing."""
  values = np.full((3, len(sources), len(targets)), np.nan)
  for r in rows:
    i, j = sources.index(r["source"]), targets.index(r["target"])
    values[:, i, j] = [100 * float(r[k]) for k in ("win_rate", "ci_low", "ci_high")]
  return values


def heatmap(rows: Sequence[dict], title: str, path: str):
  """Source x target win rates, 50% white, each cell labelled `win [low, high]`."""
  sources, targets = grid_axes(rows)
  win, low, high = _grid_values(rows, sources, targets)
  span = max(10.0, float(np.nanmax(np.abs(win - 50), initial=0.0)))
  fig = Figure(figsize=(max(5.0, 2.2 + 1.5 * len(targets)), 1.8 + 0.8 * len(sources)),
               layout="constrained")
  ax = fig.add_subplot()
  image = ax.imshow(np.ma.masked_invalid(win), cmap="RdBu", vmin=50 - span, vmax=50 + span,
                    aspect="auto")
  for i in range(len(sources)):
    for j in range(len(targets)):
      if math.isnan(win[i, j]):
        text, dark = "–", False
      else:
        text, dark = f"{win[i, j]:.1f}\n[{low[i, j]:.1f}, {high[i, j]:.1f}]", abs(
            win[i, j] - 50) > 0.6 * span
      ax.text(j, i, text, ha="center", va="center", fontsize=9,
              color="white" if dark else "black")
  ax.set_xticks(range(len(targets)), targets)
  ax.set_yticks(range(len(sources)), sources)
  ax.set_xlabel("target language (policy)")
  ax.set_ylabel("source language (reward model)")
  ax.set_title(title, fontsize=10)
  fig.colorbar(image, ax=ax, label="win rate (%)", shrink=0.9)
  fig.savefig(path, dpi=_DPI)


def bars(rows: Sequence[dict], title: str, path: str, references: Sequence[dict] = ()):
  """One panel per target: a bar per source with its 95% CI whisker, the 50% line, and a dotted
  line at each of `references`' win rates for that target (report.py's "references" rows of the
  same judge: outputs no reward model chose)."""
  bars_figure(rows, title, references).savefig(path, dpi=_DPI)


def bars_figure(rows: Sequence[dict], title: str, references: Sequence[dict] = ()) -> Figure:
  """`bars`' figure, not yet saved."""
  sources, targets = grid_axes(rows)
  win, low, high = _grid_values(rows, sources, targets)
  # One colour per reference in every panel, also where a panel lacks one of them.
  colors = dict(zip(sorted({r["reference"] for r in references}),
                    itertools.cycle(_REFERENCE_COLORS)))
  cols = min(3, len(targets))
  nrows = math.ceil(len(targets) / cols)
  fig = Figure(figsize=(max(5.0, 0.6 + (0.8 + 0.55 * len(sources)) * cols), 0.9 + 2.8 * nrows),
               layout="constrained")
  axes = fig.subplots(nrows, cols, squeeze=False, sharey=True)
  for j, target in enumerate(targets):
    ax = axes.flat[j]
    have = [i for i in range(len(sources)) if not math.isnan(win[i, j])]
    heights = win[have, j]
    ax.bar(range(len(have)), heights,
           yerr=np.stack([heights - low[have, j], high[have, j] - heights]), capsize=4,
           color=["tab:orange" if sources[i] == target else "tab:blue" for i in have])
    ax.axhline(50, color="gray", linestyle="--", linewidth=1)
    for ref in sorted((r for r in references if r["target"] == target),
                      key=lambda r: r["reference"]):
      if math.isfinite(ref["win_rate"]):
        ax.axhline(100 * ref["win_rate"], color=colors[ref["reference"]], linestyle=":",
                   linewidth=1.5,
                   label=REFERENCE_NAMES.get(ref["reference"], ref["reference"]))
    ax.set_xticks(range(len(have)), [sources[i] for i in have])
    ax.set_ylim(0, 100)
    ax.set_title(f"target: {target}", fontsize=10)
    ax.set_xlabel("source language")
    if j % cols == 0:
      ax.set_ylabel("win rate vs SFT (%)")
  for ax in axes.flat[len(targets):]:
    ax.set_visible(False)
  legend = {}  # one entry per reference, below the panels
  for ax in axes.flat:
    for handle, label in zip(*ax.get_legend_handles_labels()):
      legend.setdefault(label, handle)
  if legend:
    fig.legend(list(legend.values()), list(legend), loc="outside lower center",
               ncols=min(len(legend), cols), fontsize=8)
  note = "orange: monolingual source = target; whiskers: 95% CI"
  if legend:
    note += ";\ndotted: without a reward model"
  fig.suptitle(f"{title}\n({note})", fontsize=10)
  return fig


def ppo_curves(rows: Sequence[dict], labels: Dict[str, str], path: str):
  """One panel per metric of `labels` ({metric: axis label}) against the PPO step, a line per run
  that logged it (report.py's "ppo_training" rows, with their "curves")."""
  ppo_curves_figure(rows, labels).savefig(path, dpi=_DPI)


def ppo_curves_figure(rows: Sequence[dict], labels: Dict[str, str]) -> Figure:
  """`ppo_curves`' figure, not yet saved."""
  fig = Figure(figsize=(3.2 * len(labels), 3.4), layout="constrained")
  axes = fig.subplots(1, len(labels), squeeze=False)[0]
  for ax, (metric, label) in zip(axes, labels.items()):
    for r in rows:
      ax.plot(r["curves"]["step"], r["curves"].get(metric, [math.nan] * len(r["curves"]["step"])),
              linewidth=1.2, label=f"{r['source']} → {r['target']}")
    ax.set_xlabel("PPO step")
    ax.set_title(label, fontsize=10)
  fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center",
             ncols=min(len(rows), 4), fontsize=8, title="RM → policy", title_fontsize=8)
  fig.suptitle("PPO training: what each run optimized", fontsize=10)
  return fig


def forest(comparison: dict, path: str):
  """`xlalign compare`'s plot: a line per (method, source, target) cell, a point per run with
  its 95% interval, the 50% line."""
  rows, labels = comparison["winrates"], comparison["runs"]
  fig = Figure(figsize=(7.5, 1.2 + 0.32 * len(rows) * max(1, len(labels) / 2)),
               layout="constrained")
  ax = fig.subplots()
  step = 0.7 / max(1, len(labels))
  for k, label in enumerate(labels):
    ys, xs, lows, highs = [], [], [], []
    for i, row in enumerate(rows):
      r = row["runs"].get(label)
      if r and math.isfinite(r["win_rate"]):
        ys.append(i + (k - (len(labels) - 1) / 2) * step)
        xs.append(100 * r["win_rate"])
        lows.append(100 * (r["win_rate"] - r["ci_low"]))
        highs.append(100 * (r["ci_high"] - r["win_rate"]))
    ax.errorbar(xs, ys, xerr=[lows, highs], fmt="o", capsize=3, markersize=4, label=label)
  ax.axvline(50, color="gray", linestyle="--", linewidth=1)
  ax.set_yticks(range(len(rows)), [f"{method_name(r['method'])} {r['source']} → {r['target']}"
                                   for r in rows])
  ax.invert_yaxis()
  ax.set_xlim(0, 100)
  ax.set_xlabel(f"win rate vs SFT (%), judge {comparison['judge']}; whiskers: 95% CI")
  fig.legend(loc="outside lower center", fontsize=8)  # below the axes: it hides no cell
  fig.savefig(path, dpi=_DPI)
