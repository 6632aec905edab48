"""The report's overview of the findings: chain steps × statistics, coloured by effect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from globalrep.figures import save_figure, set_title, style
from globalrep.figures.notice import plot_notice
from globalrep.findings import CHANGE, GAP, MD3_LABELS, NO_CHANGE, STATISTICS, statistic_name, with_text

TESTED_KINDS = (GAP, CHANGE)  # statistics with a value, a CI and a q: the figure's columns


def short_label(statistic: str) -> str:
    """A row label: ``md3_gap_change:en_in:generated_correct`` -> "MD3 US−Indian generated"."""
    name, *params = statistic.split(":")
    if name == "md3_gap_change":
        return f"MD3 US−{MD3_LABELS.get(params[0], params[0])} {params[1].replace('_correct', '')}"
    if name == "english_vs_median_change":
        return f"{params[0]} English − median"
    if name == "us_minus_rest_change":
        return "GlobalOpinionQA US − rest"
    if name == "gallup_correlation_change":
        return f"AskReddit ρ {params[0]}"
    return statistic


def overview_matrix(findings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(values, scaled, significant)``: tested statistics (rows) × steps (columns, in the
    table's order); ``scaled`` divides each statistic by its largest absolute value (statistics
    differ in units), so colour shows direction and relative size within a statistic."""
    findings = with_text(findings)
    kinds = findings["statistic"].map(lambda s: STATISTICS[statistic_name(s)].kind)
    tested = findings[findings["chain"].astype(bool) & kinds.isin(TESTED_KINDS)]
    tested = tested.assign(
        step=tested["chain"] + ":\n" + tested["from_model"] + " →\n" + tested["to_model"],
        significant=tested["verdict"] != NO_CHANGE,
    )
    rows, columns = list(dict.fromkeys(tested["statistic"])), list(dict.fromkeys(tested["step"]))
    values = tested.pivot(index="statistic", columns="step", values="value").reindex(index=rows, columns=columns)
    significant = (
        tested.pivot(index="statistic", columns="step", values="significant")
        .reindex(index=rows, columns=columns)
        .fillna(False)
        .astype(bool)
    )
    largest = values.abs().max(axis=1).replace(0, 1)  # a statistic that never moved stays white
    return values, values.div(largest, axis=0), significant


def plot_findings_overview(findings: pd.DataFrame, out_prefix: str | Path) -> list[Path]:
    """Heatmap of the tested findings: red where the gap widened (or the correlation rose), blue
    where it narrowed, each cell annotated with its value; a star and a black frame mark q < 0.05."""
    values, scaled, significant = overview_matrix(findings)
    if values.empty:
        return plot_notice("Findings", "No chain step has a tested finding in this run.", out_prefix)
    annotations = values.map(lambda v: "" if pd.isna(v) else f"{v:+.2f}") + significant.map(lambda s: "*" if s else "")
    with style():
        fig = Figure(figsize=(3.4 + 1.0 * values.shape[1], 1.8 + 0.42 * values.shape[0]), layout="constrained")
        ax = fig.add_subplot()
        sns.heatmap(
            scaled,
            ax=ax,
            vmin=-1,
            vmax=1,
            center=0,
            cmap="vlag",
            annot=annotations.to_numpy(),
            fmt="",
            annot_kws={"fontsize": 8},
            linewidths=0.5,
            linecolor="white",
            cbar_kws={"label": "change, scaled per row\n(red: gap widened / ρ rose)", "shrink": 0.8},
            xticklabels=list(values.columns),
            yticklabels=[short_label(statistic) for statistic in values.index],
        )
        for (i, j), flag in np.ndenumerate(significant.to_numpy()):
            if flag:
                ax.add_patch(Rectangle((j, i), 1, 1, fill=False, edgecolor="black", linewidth=1.6))
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.xaxis.tick_top()
        ax.tick_params(axis="x", labelsize=7, labelrotation=0)
        ax.tick_params(axis="y", labelsize=7, labelrotation=0)
        ax.grid(False)
        set_title(fig, "Findings per chain step (* and frame: q < 0.05)")
        return save_figure(fig, out_prefix)
