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
    """A column label: ``md3_gap_change:en_in:generated_correct`` -> "MD3 US−Indian\\ngenerated_correct"."""
    name, *params = statistic.split(":")
    if name == "md3_gap_change":
        return f"MD3 US−{MD3_LABELS.get(params[0], params[0])}\n{params[1]}"
    if name == "english_vs_median_change":
        return f"{params[0]}\nEnglish − median"
    if name == "us_minus_rest_change":
        return "GlobalOpinionQA\nUS − rest"
    if name == "gallup_correlation_change":
        return f"AskReddit ρ\n{params[0]}"
    return statistic


def overview_matrix(findings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(values, scaled, significant)``: steps (rows, in the table's order) × tested statistics
    (columns); ``scaled`` divides each column by its largest absolute value (statistics differ in
    units), so colour shows direction and relative size within a statistic."""
    findings = with_text(findings)
    tested = findings[
        findings["chain"].astype(bool)
        & findings["statistic"].map(lambda s: STATISTICS[statistic_name(s)].kind in TESTED_KINDS)
    ]
    step = tested["chain"] + ": " + tested["from_model"] + " → " + tested["to_model"]
    tested = tested.assign(step=step)
    rows, columns = list(dict.fromkeys(tested["step"])), list(dict.fromkeys(tested["statistic"]))
    values = tested.pivot(index="step", columns="statistic", values="value").reindex(index=rows, columns=columns)
    significant = (
        tested.assign(significant=tested["verdict"] != NO_CHANGE)
        .pivot(index="step", columns="statistic", values="significant")
        .reindex(index=rows, columns=columns)
        .fillna(False)
        .astype(bool)
    )
    largest = values.abs().max().replace(0, np.nan)
    return values, values / largest, significant


def plot_findings_overview(findings: pd.DataFrame, out_prefix: str | Path) -> list[Path]:
    """Heatmap of the tested findings: red where the gap widened (or the correlation rose), blue
    where it narrowed, each cell annotated with its value; a star and a black frame mark q < 0.05."""
    values, scaled, significant = overview_matrix(findings)
    if values.empty:
        return plot_notice("Findings", "No chain step has a tested finding in this run.", out_prefix)
    annotations = values.map(lambda v: "" if pd.isna(v) else f"{v:+.2f}") + significant.map(lambda s: "*" if s else "")
    with style():
        fig = Figure(figsize=(2.2 + 1.05 * values.shape[1], 1.6 + 0.45 * values.shape[0]), layout="constrained")
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
            cbar_kws={"label": "change, scaled per column\n(red: gap widened / ρ rose)", "shrink": 0.8},
            xticklabels=[short_label(c) for c in values.columns],
            yticklabels=list(values.index),
        )
        for (i, j), flag in np.ndenumerate(significant.to_numpy()):
            if flag:
                ax.add_patch(Rectangle((j, i), 1, 1, fill=False, edgecolor="black", linewidth=1.6))
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", labelsize=7, labelrotation=0)
        ax.tick_params(axis="y", labelsize=7, labelrotation=0)
        ax.grid(False)
        set_title(fig, "What each alignment step did (* and frame: q < 0.05)")
        return save_figure(fig, out_prefix)
