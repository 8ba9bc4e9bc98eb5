"""tune.png: J of each trial in order with the running best, and one panel per searched setting (value vs J)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from movseg_ros.plots import pyplot, save_figure
from movseg_ros.tuning.search import TuneResult
from movseg_ros.tuning.space import SearchSpace

PHASE_COLOURS = {"base": "tab:red", "random": "tab:blue", "refine": "tab:orange"}
PANELS_PER_ROW = 4


def plot_search(result: TuneResult, space: SearchSpace, path: Path) -> Path:
    """Write the search's figure to `path`; invalid trials are marked on the x axis of the first panel, and each
    setting's panel spans its searched range, the best value marked by a green line."""
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    rows = 1 + math.ceil(len(space.dimensions) / PANELS_PER_ROW)
    fig = plt.figure(figsize=(4 * PANELS_PER_ROW, 3.2 * rows))
    grid = fig.add_gridspec(rows, PANELS_PER_ROW)
    _trial_order(fig.add_subplot(grid[0, :]), result)
    valid = [t for t in result.trials if t.valid]
    for n, dim in enumerate(space.dimensions):
        ax = fig.add_subplot(grid[1 + n // PANELS_PER_ROW, n % PANELS_PER_ROW])
        shown = [t for t in valid if not dim.choices or t.settings[dim.name] in dim.choices]  # base may be off the list
        xs = [dim.choices.index(t.settings[dim.name]) if dim.choices else t.settings[dim.name] for t in shown]
        ax.scatter(xs, [t.search_j for t in shown], s=14, c=[PHASE_COLOURS[t.phase] for t in shown])
        best = result.best.settings[dim.name]
        if not dim.choices or best in dim.choices:
            ax.axvline(dim.choices.index(best) if dim.choices else best, color="tab:green", linewidth=1)
        if dim.choices:
            ax.set_xticks(range(len(dim.choices)), [str(c) for c in dim.choices])
            ax.set_xlim(-0.5, len(dim.choices) - 0.5)
        else:
            if dim.log:
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # labelled ticks inside short ranges
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
            margin = (dim.high / dim.low) ** 0.03 if dim.log else 0.03 * (dim.high - dim.low)
            ax.set_xlim(*((dim.low / margin, dim.high * margin) if dim.log else (dim.low - margin, dim.high + margin)))
        ax.set_title(dim.name, fontsize=9)
        ax.set_ylabel("search J", fontsize=8)
        ax.tick_params(labelsize=7)
    return save_figure(fig, path)


def _trial_order(ax: Any, result: TuneResult) -> None:
    """Search J by trial index, the running best, and the final check's held-aside J of the best."""
    valid = [t for t in result.trials if t.valid]
    ax.scatter([t.trial for t in valid], [t.search_j for t in valid], s=16,
               c=[PHASE_COLOURS[t.phase] for t in valid])
    running, best = [], -np.inf
    for t in result.trials:
        best = max(best, t.search_j) if t.valid else best  # type: ignore[type-var]
        running.append(best)
    ax.step([t.trial for t in result.trials], running, where="post", color="tab:green",
            label=f"best so far (trial {result.best.trial}: {result.best.search_j:.3f})")
    ax.axhline(result.best.heldout_j, color="tab:green", linestyle="--",
               label=f"best, held aside: {result.best.heldout_j:.3f}")
    ax.axhline(result.base.heldout_j, color="tab:red", linestyle=":",
               label=f"base, held aside: {result.base.heldout_j:.3f}")
    invalid = [t.trial for t in result.trials if not t.valid]
    if invalid:
        ax.scatter(invalid, np.zeros(len(invalid)), marker="x", color="grey",
                   label=f"invalid ({len(invalid)})")
    for phase, colour in PHASE_COLOURS.items():
        ax.scatter([], [], color=colour, s=16, label=phase)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel("search J (mean over search sequences)")
    ax.legend(fontsize=7, loc="lower right")
