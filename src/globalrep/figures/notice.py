"""A figure that says why a task has nothing to plot (e.g. the paper published no outputs for it),
so that a run still has a figure in that place instead of failing or leaving it out."""

from __future__ import annotations

import textwrap
from pathlib import Path

from matplotlib.figure import Figure

from globalrep.figures import save_figure, style


def plot_notice(title: str, text: str, out_prefix: str | Path) -> list[Path]:
    """``title`` and ``text`` on an empty panel, as ``{out_prefix}.pdf`` and ``.png``."""
    with style():
        fig = Figure(figsize=(7, 2.5))
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.set_title(title, loc="left", fontweight="bold")
        ax.text(0.0, 0.85, textwrap.fill(text, 90), va="top", ha="left", transform=ax.transAxes, wrap=True)
        return save_figure(fig, out_prefix)
