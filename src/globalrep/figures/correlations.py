"""A heatmap of pairwise correlations (the ``a, b, spearman, p_value, n`` table shape)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from globalrep.figures import save_figure, style


def correlation_matrix(correlations: pd.DataFrame) -> pd.DataFrame:
    """The symmetric matrix of ``spearman`` over every name in ``a`` and ``b`` (first-seen
    order), 1 on the diagonal, NaN where a pair has no value."""
    names = list(dict.fromkeys([*correlations["a"], *correlations["b"]]))
    matrix = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for row in correlations.itertuples(index=False):
        matrix.loc[row.a, row.b] = matrix.loc[row.b, row.a] = row.spearman
    return matrix


def plot_correlation_heatmap(correlations: pd.DataFrame, out_prefix: str | Path, title: str) -> list[Path]:
    """Annotated heatmap of the correlations, diverging colours on [-1, 1], labelled colour bar."""
    matrix = correlation_matrix(correlations)
    side = 2.5 + 0.75 * len(matrix)
    with style():
        fig = Figure(figsize=(side + 1.5, side), layout="constrained")
        ax = fig.add_subplot()
        sns.heatmap(
            matrix,
            ax=ax,
            vmin=-1,
            vmax=1,
            cmap="vlag",
            annot=True,
            fmt=".2f",
            square=True,
            linewidths=0.5,
            cbar_kws={"label": "Spearman correlation"},
        )
        ax.tick_params(axis="x", labelrotation=40)
        for text in ax.get_xticklabels():
            text.set_horizontalalignment("right")
        ax.set_title(title)
        return save_figure(fig, out_prefix)
