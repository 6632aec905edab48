"""Figures, one module per figure family; the shared style and saving live here.

Figures are plain matplotlib ``Figure`` objects, never pyplot: no global state, no GUI backend
(PNG renders through Agg, PDF through matplotlib's PDF backend), nothing left open between calls.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import seaborn as sns
from matplotlib.figure import Figure

DPI = 150
STAGES = ("base", "sft", "pt")
# One colour per alignment stage, the same in every figure (the paper's palette).
STAGE_COLORS = dict(zip(STAGES, sns.color_palette("mako_r", len(STAGES))))
STAGE_MARKERS = dict(zip(STAGES, ("o", "s", "^")))
RC = {
    **sns.axes_style("whitegrid"),
    **sns.plotting_context("paper", font_scale=1.1),
    "pdf.fonttype": 42,  # TrueType in PDFs: text stays editable and searchable
    # Labels, titles and legends carry text from the data (country names, model names): shown as
    # written, never parsed as mathtext ("$x$"), which can fail on them.
    "text.parse_math": False,
}


@contextmanager
def style() -> Iterator[None]:
    """Build and save a figure inside this block so every figure looks the same."""
    with matplotlib.rc_context(RC):
        yield


def save_figure(fig: Figure, out_prefix: str | Path) -> list[Path]:
    """Write ``{out_prefix}.pdf`` and ``{out_prefix}.png`` (150 dpi); return both paths."""
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    pdf, png = (prefix.with_name(f"{prefix.name}.{suffix}") for suffix in ("pdf", "png"))
    fig.savefig(pdf, metadata={"CreationDate": None})  # no timestamp: same input, same bytes
    fig.savefig(png, dpi=DPI)
    return [pdf, png]


def set_title(fig: Figure, title: str) -> None:
    """The figure's title, wrapped to its width so that a long title on a narrow figure is not cut
    (about nine characters per inch at the title's size)."""
    fig.suptitle(textwrap.fill(title, width=max(20, int(fig.get_figwidth() * 9))))
