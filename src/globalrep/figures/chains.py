"""The default figure of every task: per alignment chain, one metric per group for each model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from globalrep.figures import STAGE_COLORS, STAGE_MARKERS, save_figure, set_title, style

MARKERS = ("D", "v", "P", "X", "o", "s")  # for models without a known stage


def plot_chain_groups(
    table: pd.DataFrame,
    chains: dict[str, list[str]],
    metric: str,
    out_prefix: str | Path,
    title: str,
    models_stage: dict[str, str],
) -> list[Path]:
    """One panel per chain: groups on the x axis, sorted by the chain's last model, and one
    marker per model (chain order) with its 95% CI. ``table`` has the ``{task}.csv`` shape.

    Chains with no model in ``table`` are left out; with no chain left, one panel shows every
    model, so a task still gets its figure before chains are configured.
    """
    data = table[table["metric"] == metric]
    panels = chain_panels(set(data["model"]), chains)

    n_groups = max(data["group"].nunique(), 1)
    n_models = max((len(members) for members in panels.values()), default=1)
    ncols = 1 if n_groups > 10 else max(min(len(panels), 2), 1)
    nrows = max(math.ceil(len(panels) / ncols), 1)
    panel_width = min(max(4.0, 1.5 + n_groups * (0.25 + 0.12 * n_models)), 18.0) + 2.0  # + legend

    with style():
        fig = Figure(figsize=(panel_width * ncols, 3.6 * nrows + 0.5), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
        for ax, (name, members) in zip(axes, panels.items()):
            _draw_panel(ax, data[data["model"].isin(members)], members, models_stage)
            ax.set_title(name)
            ax.set_ylabel(metric)
        for ax in axes[max(len(panels), 1) :]:
            ax.set_visible(False)
        if not panels:
            axes[0].text(0.5, 0.5, f"no {metric} results yet", ha="center", va="center", transform=axes[0].transAxes)
        set_title(fig, title)
        return save_figure(fig, out_prefix)


def chain_panels(present: set[str], chains: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per chain its models that have results, in chain order; chains without any drop out, and
    with no chain left one panel ``all models`` holds every model (none when there are none)."""
    panels = {name: [m for m in models if m in present] for name, models in chains.items()}
    panels = {name: members for name, members in panels.items() if members}
    return panels or ({"all models": sorted(present)} if present else {})


def model_series(data: pd.DataFrame, order: list[str], members: list[str], models_stage: dict[str, str]):
    """Per model of a panel, in chain order: ``(index, stage, keyword arguments)`` for
    ``errorbar``/``bar``: ``x`` (the groups of ``order``, models side by side within 0.8 of a
    group), ``y``, ``yerr`` (the 95% CI), ``color`` (by stage), ``label``, ``capsize``."""
    step = 0.8 / len(members)
    fallback = sns.color_palette("colorblind", len(members))
    for i, model in enumerate(members):
        rows = data[data["model"] == model].set_index("group").reindex(order)
        # A percentile interval can sit just off the mean on tiny samples; never draw negative bars.
        below = np.clip(rows["value"] - rows["ci_low"], 0, None)
        above = np.clip(rows["ci_high"] - rows["value"], 0, None)
        stage = models_stage.get(model)
        yield (
            i,
            stage,
            {
                "x": np.arange(len(order)) + (i - (len(members) - 1) / 2) * step,
                "y": rows["value"],
                "yerr": [below, above],
                "color": STAGE_COLORS.get(stage, fallback[i]),
                "label": f"{model} ({stage})" if stage else model,
                "capsize": 3,
            },
        )


def _draw_panel(ax, data: pd.DataFrame, members: list[str], models_stage: dict[str, str]) -> None:
    last = data[data["model"] == members[-1]].sort_values(["value", "group"])
    order = list(last["group"]) + sorted(set(data["group"]) - set(last["group"]))
    x = np.arange(len(order))
    for i, stage, series in model_series(data, order, members, models_stage):
        ax.errorbar(**series, fmt=STAGE_MARKERS.get(stage, MARKERS[i % len(MARKERS)]), markersize=6)
    rotate = len(order) > 4 or max((len(str(g)) for g in order), default=0) > 10
    ax.set_xticks(x, order, rotation=40 if rotate else 0, ha="right" if rotate else "center")
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.grid(False, axis="x")  # a line through each group's middle model reads as a divider
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # never over the data
