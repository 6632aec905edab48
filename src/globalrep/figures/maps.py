"""World choropleths drawn straight from Natural Earth polygons (plain lon/lat), offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.collections import PatchCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path as PolygonPath

from globalrep.figures import save_figure, style

MISSING_COLOR = "#d9d9d9"
# Antarctica would take a fifth of the map and never has a value worth reading.
LATITUDES = (-58.0, 84.0)


def country_patch(rings: list[np.ndarray]) -> PathPatch | None:
    """All rings of one country as one compound path; holes (reversed rings) stay holes."""
    rings = [ring for ring in rings if len(ring) >= 3]
    if not rings:
        return None
    codes = []
    for ring in rings:
        codes += [PolygonPath.MOVETO] + [PolygonPath.LINETO] * (len(ring) - 2) + [PolygonPath.CLOSEPOLY]
    return PathPatch(PolygonPath(np.concatenate(rings), codes))


def plot_world_map(
    countries: pd.DataFrame,
    values: pd.Series,
    out_prefix: str | Path,
    title: str,
    label: str,
    cmap: str = "viridis",
) -> list[Path]:
    """A choropleth of ``values`` (indexed by country name) over ``countries`` (``name`` and
    ``rings``, as :func:`globalrep.countries.load_countries` gives them), with a labelled colour
    bar; countries without a value are grey and hatched. Writes PDF + PNG."""
    values = values[values.notna()]
    colored, colored_values, missing = [], [], []
    for country in countries.itertuples(index=False):
        patch = country_patch(country.rings)
        if patch is None:
            continue
        if country.name in values.index:
            colored.append(patch)
            colored_values.append(float(values[country.name]))
        else:
            missing.append(patch)
    with style():
        fig = Figure(figsize=(11, 5.6), layout="constrained")
        ax = fig.add_subplot()
        ax.add_collection(
            PatchCollection(missing, facecolor=MISSING_COLOR, edgecolor="#9a9a9a", hatch="////", linewidth=0.2)
        )
        if colored:
            low, high = min(colored_values), max(colored_values)
            norm = Normalize(low, high if high > low else low + 1)  # one value: still a valid bar
            filled = PatchCollection(colored, cmap=cmap, norm=norm, edgecolor="white", linewidth=0.3)
            filled.set_array(np.asarray(colored_values))
            ax.add_collection(filled)
            bar = fig.colorbar(filled, ax=ax, orientation="horizontal", shrink=0.6, pad=0.02, aspect=40)
            bar.set_label(label)
        ax.set_xlim(-180, 180)
        ax.set_ylim(*LATITUDES)
        ax.set_aspect("equal")
        ax.set_axis_off()
        if missing:
            ax.legend(
                handles=[Patch(facecolor=MISSING_COLOR, edgecolor="#9a9a9a", hatch="////", label="no value")],
                loc="lower left",
                fontsize="small",
                frameon=False,
            )
        ax.set_title(title)
        return save_figure(fig, out_prefix)


def plot_model_maps(
    table: pd.DataFrame,
    metric: str,
    countries: pd.DataFrame,
    out_stem: str | Path,
    title: str,
    label: str,
    cmap: str,
) -> list[Path]:
    """One map per model of ``metric`` in a table of the ``{task}.csv`` shape (groups = country
    names), written as ``{out_stem}_{model}``; ``{model}`` in ``title`` becomes the model."""
    written = []
    for model, rows in table[table["metric"] == metric].groupby("model", sort=False):
        written += plot_world_map(
            countries,
            rows.set_index("group")["value"],
            f"{out_stem}_{model}",
            title=title.replace("{model}", model),
            label=label,
            cmap=cmap,
        )
    return written
