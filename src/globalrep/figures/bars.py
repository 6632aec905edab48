"""Bars per alignment stage, groups side by side: the layout of the paper's Figure 2 (MD3)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from globalrep.figures import save_figure, set_title, style
from globalrep.figures.chains import chain_panels, model_series

MAX_COLUMNS = 3


def plot_chain_bars(
    table: pd.DataFrame,
    chains: dict[str, list[str]],
    metric: str,
    out_prefix: str | Path,
    title: str,
    models_stage: dict[str, str],
    group_labels: dict[str, str] | None = None,
) -> list[Path]:
    """One panel per chain: groups on the x axis (in ``group_labels`` order, then the rest
    sorted; labelled by it), one bar per model of the chain, coloured by stage, with its 95% CI.
    ``table`` has the ``{task}.csv`` shape."""
    group_labels = group_labels or {}
    data = table[table["metric"] == metric]
    panels = chain_panels(set(data["model"]), chains)
    present = set(data["group"])
    order = [g for g in group_labels if g in present] + sorted(present - set(group_labels))
    ncols = max(min(len(panels), MAX_COLUMNS), 1)
    nrows = max(math.ceil(len(panels) / ncols), 1)
    n_models = max((len(members) for members in panels.values()), default=1)
    width = 1.5 + max(len(order), 1) * (0.5 + 0.35 * n_models)

    with style():
        fig = Figure(figsize=(width * ncols, 3.4 * nrows + 0.6), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
        for ax, (name, members) in zip(axes, panels.items()):
            _draw_panel(ax, data, order, members, models_stage)
            ax.set_xticks(np.arange(len(order)), [group_labels.get(g, g) for g in order])
            ax.set_title(name)
        for ax in axes[max(len(panels), 1) :]:
            ax.set_visible(False)
        axes[0].set_ylabel(metric)
        if not panels:
            axes[0].text(0.5, 0.5, f"no {metric} results yet", ha="center", va="center", transform=axes[0].transAxes)
        set_title(fig, title)
        return save_figure(fig, out_prefix)


def _draw_panel(ax, data: pd.DataFrame, order: list[str], members: list[str], models_stage: dict[str, str]) -> None:
    for _, _, series in model_series(data, order, members, models_stage):
        ax.bar(series.pop("x"), series.pop("y"), width=0.8 / len(members), **series)
    ax.grid(False, axis="x")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.12))  # never over the bars
