"""Language-axis figures: the paper's Figure 3 (per language, the base model's score and the change
each alignment stage brings), and the language make-up of SFT datasets."""

from __future__ import annotations

import textwrap
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from globalrep.figures import STAGE_COLORS, save_figure, set_title, style
from globalrep.figures.chains import plot_chain_groups

if TYPE_CHECKING:
    from globalrep.tasks.base import FigureContext

BASE_COLOR = "0.82"
# Gains and drops differ in fill, hatch and end marker, so they read apart without colour.
GAIN = {"hatch": "////", "marker": ">"}
DROP = {"hatch": "....", "marker": "<"}
NO_CHANGE_MARKER = "|"


def language_figures(
    table: pd.DataFrame,
    deltas: pd.DataFrame,
    context: FigureContext,
    out_prefix: Path,
    metric: str,
    title: str,
    change_limits: Sequence[float] | None = None,
    flagged: Collection[str] = (),
    footnote: str = "",
) -> list[Path]:
    """Every model's ``metric`` per language, per chain the stacked consecutive changes, and, given
    the ``from_base`` extra table (``context.extra_tables``), the paper's Figure 3: each aligned
    model's change from its chain's base model, on the value axis ``change_limits`` if given. In
    the two change figures, the ``flagged`` groups' labels end in † and ``footnote`` says why."""
    chains, models_stage = context.chains, context.models_stage
    caveat = Caveat(frozenset(flagged), footnote)
    paths = plot_chain_groups(table, chains, metric, f"{out_prefix}_models", title, models_stage)
    paths += plot_chain_changes(table, deltas, chains, metric, out_prefix, title, models_stage, caveat)
    from_base = context.extra_tables.get("from_base")
    if from_base is not None:
        paths += plot_changes_from_base(
            table, from_base, metric, f"{out_prefix}_from_base", title, models_stage, change_limits, caveat
        )
    return paths


@dataclass(frozen=True)
class Caveat:
    """Groups whose values the metric cannot be trusted for: their labels get a mark, and the
    figure a footnote saying why (when one of them is shown)."""

    groups: frozenset[str] = frozenset()
    footnote: str = ""
    MARK: ClassVar[str] = "†"

    def labels(self, groups: Iterable[str], names: Iterable[object]) -> list[str]:
        return [group_label(g, n) + (f" {self.MARK}" if g in self.groups else "") for g, n in zip(groups, names)]

    def annotate(self, fig: Figure, shown: Iterable[str]) -> None:
        if self.footnote and self.groups & set(shown):
            width = max(40, int(fig.get_figwidth() * 14))  # about 14 small characters per inch
            fig.supxlabel(textwrap.fill(self.footnote, width=width), fontsize="small", x=0.01, ha="left")


def group_label(group: str, name: object) -> str:
    """``German (deu_Latn)``; just the name where it is the code written out (``english``)."""
    if not isinstance(name, str) or not name or name == group:
        return group
    return name if name.casefold() == group.casefold() else f"{name} ({group})"


def plot_chain_changes(
    table: pd.DataFrame,
    deltas: pd.DataFrame,
    chains: dict[str, list[str]],
    metric: str,
    out_prefix: str | Path,
    title: str,
    models_stage: dict[str, str],
    caveat: Caveat = Caveat(),
) -> list[Path]:
    """One figure per chain (``{out_prefix}_chain-{chain}``): per language, a bar of the chain's
    first model's score and, on top of it, the change to each later model as a segment that starts
    where the previous model ended, with the change's 95% CI at its end. Languages are sorted by
    the first model's score, highest on top. ``table``/``deltas`` have the standard shapes."""
    data = table[table["metric"] == metric]
    changes = deltas[deltas["metric"] == metric]
    paths = []
    for chain, members in chains.items():
        members = [m for m in members if m in set(data["model"])]
        if len(members) < 2:
            continue
        base = by_score(data, members[0])
        steps = list(zip(members, members[1:]))
        with style():
            fig = Figure(figsize=(8.5, 1.6 + 0.34 * max(len(base), 3)), layout="constrained")
            ax = fig.subplots()
            handles = _draw_changes(ax, base, changes[changes["chain"] == chain], steps, models_stage)
            names = base["group_name"] if "group_name" in base.columns else base["group"]
            ax.set_yticks(np.arange(len(base)), caveat.labels(base["group"], names))
            ax.set_ylim(len(base) - 0.5, -0.5)  # first (highest) language on top
            if (data["value"] >= 0).all():
                ax.set_xlim(left=0)  # scores are not negative: CI lines past 0 are cut there
            ax.set_xlim(right=ax.get_xlim()[1] * 1.03)  # room for the end markers
            ax.set_xlabel(metric)
            ax.grid(False, axis="y")
            ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
            ax.set_title(f"{title}\nchain {chain}: {' → '.join(members)}")
            caveat.annotate(fig, base["group"])
            paths += save_figure(fig, f"{out_prefix}_chain-{chain}")
    return paths


def plot_changes_from_base(
    table: pd.DataFrame,
    from_base: pd.DataFrame,
    metric: str,
    out_prefix: str | Path,
    title: str,
    models_stage: dict[str, str],
    change_limits: Sequence[float] | None = None,
    caveat: Caveat = Caveat(),
) -> list[Path]:
    """One figure per chain (``{out_prefix}_chain-{chain}``), the paper's Figure 3: per language,
    one bar per aligned model of its paired change from the chain's base model, with its 95% CI,
    on the value axis ``change_limits`` (``[low, high]``; unset: fitted to the bars). Languages
    are sorted by the base model's score (highest on top). ``from_base`` has the deltas shape
    with ``from_model`` = the base, chains in its row order; ``table`` the ``{task}.csv`` shape
    (order and names)."""
    data = table[table["metric"] == metric]
    changes = from_base[from_base["metric"] == metric]
    paths = []
    for chain, steps in changes.groupby("chain", sort=False):
        base_model = steps["from_model"].iloc[0]
        base = by_score(data, base_model)
        targets = list(dict.fromkeys(steps["to_model"]))
        height = 0.8 / len(targets)
        y = np.arange(len(base))
        fallback = sns.color_palette("colorblind", len(targets))
        with style():
            fig = Figure(figsize=(8.5, 1.6 + 0.34 * max(len(base), 3) * max(len(targets) / 2, 1)), layout="constrained")
            ax = fig.subplots()
            for k, model in enumerate(targets):
                rows = steps[steps["to_model"] == model].set_index("group").reindex(base["group"])
                delta = rows["delta"].to_numpy(dtype=float)
                below = np.clip(delta - rows["ci_low"].to_numpy(dtype=float), 0, None)
                above = np.clip(rows["ci_high"].to_numpy(dtype=float) - delta, 0, None)
                stage = models_stage.get(model)
                ax.barh(
                    y - 0.4 + height * (k + 0.5),
                    delta,
                    height=height * 0.9,
                    xerr=[below, above],
                    color=STAGE_COLORS.get(stage, fallback[k]),
                    edgecolor="0.3",
                    linewidth=0.5,
                    capsize=2,
                    error_kw={"elinewidth": 0.7, "ecolor": "0.3"},
                    label=f"{model} ({stage})" if stage else model,
                )
            ax.axvline(0, color="0.2", linewidth=0.8)
            names = base["group_name"] if "group_name" in base.columns else base["group"]
            ax.set_yticks(y, caveat.labels(base["group"], names))
            ax.set_ylim(len(base) - 0.5, -0.5)
            if change_limits is not None:
                ax.set_xlim(*change_limits)
            ax.set_xlabel(f"change in {metric} from {base_model} (paired over items)")
            ax.grid(False, axis="y")
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
            ax.set_title(f"{title}\nchain {chain}: change from the base model {base_model}")
            caveat.annotate(fig, base["group"])
            paths += save_figure(fig, f"{out_prefix}_chain-{chain}")
    return paths


def by_score(data: pd.DataFrame, model: str) -> pd.DataFrame:
    """``model``'s rows, highest value first (ties by group code)."""
    return data[data["model"] == model].sort_values(["value", "group"], ascending=[False, True])


def _draw_changes(ax, base: pd.DataFrame, changes: pd.DataFrame, steps, models_stage) -> list:
    y = np.arange(len(base))
    ax.barh(y, base["value"], height=0.8, color=BASE_COLOR, edgecolor="0.5", linewidth=0.6)
    first = steps[0][0]
    stage = models_stage.get(first)
    handles = [Patch(facecolor=BASE_COLOR, edgecolor="0.5", label=f"{first} ({stage})" if stage else first)]
    fallback = sns.color_palette("colorblind", len(steps))
    height = 0.8 / len(steps)
    start = base["value"].to_numpy(dtype=float)
    for k, (from_model, to_model) in enumerate(steps):
        step = changes[(changes["from_model"] == from_model) & (changes["to_model"] == to_model)]
        step = step.set_index("group").reindex(base["group"])
        delta = step["delta"].to_numpy(dtype=float)
        color = STAGE_COLORS.get(models_stage.get(to_model), fallback[k])
        offset = y - 0.4 + height * (k + 0.5)
        end = start + delta
        # The change's 95% CI as a thin grey line behind its segment.
        below = np.clip(delta - step["ci_low"].to_numpy(dtype=float), 0, None)
        above = np.clip(step["ci_high"].to_numpy(dtype=float) - delta, 0, None)
        ax.errorbar(end, offset, xerr=[below, above], fmt="none", ecolor="0.45", elinewidth=0.6, capsize=1.5, zorder=1)
        for kind, chosen in ((GAIN, delta > 0), (DROP, delta < 0)):
            filled = kind is GAIN
            ax.barh(
                offset[chosen],
                delta[chosen],
                left=start[chosen],
                height=height * 0.8,
                facecolor=color if filled else "white",
                edgecolor=color if not filled else "black",
                hatch=kind["hatch"],
                linewidth=0.6,
                zorder=2,
            )
            ax.plot(
                end[chosen],
                offset[chosen],
                linestyle="none",
                marker=kind["marker"],
                color="black",
                markersize=4,
                zorder=3,
            )
        unchanged = delta == 0
        ax.plot(
            end[unchanged],
            offset[unchanged],
            linestyle="none",
            marker=NO_CHANGE_MARKER,
            color="black",
            markersize=7,
            zorder=3,
        )
        stage = models_stage.get(to_model)
        label = f"{from_model} → {to_model}" + (f" ({stage})" if stage else "")
        handles += [
            Patch(facecolor=color, edgecolor="black", hatch=GAIN["hatch"], label=f"{label}: gain ▶"),
            Patch(facecolor="white", edgecolor=color, hatch=DROP["hatch"], label=f"{label}: drop ◀"),
        ]
        start = np.where(np.isnan(end), start, end)  # a missing change leaves the next one where it was
    handles.append(
        Line2D(
            [],
            [],
            linestyle="none",
            marker=NO_CHANGE_MARKER,
            color="black",
            markersize=7,
            label="no change; grey line: 95% CI of the change",
        )
    )
    return handles


def plot_language_shares(table: pd.DataFrame, out_prefix: str | Path, title: str, top: int = 8) -> list[Path]:
    """Per dataset: the share of English, other-language and unknown messages, overall, per role
    and over agreed messages only (left), and its most frequent non-English languages (right).
    ``table`` has the standard shape with ``model`` = dataset, ``group`` = language code and metrics
    ``share``/``share_{role}``/``share_agreed``."""
    metrics = [m for m in ("share", "share_user", "share_assistant", "share_agreed") if m in set(table["metric"])]
    datasets = sorted(set(table["model"]))
    rows = [(d, m) for d in datasets for m in metrics]
    with style():
        fig = Figure(figsize=(12, 1.8 + 0.42 * max(len(rows), 4)), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=(1.3, 1))
        _draw_shares(left, table, rows)
        _draw_top_languages(right, table, datasets, top)
        set_title(fig, title)
        return save_figure(fig, out_prefix)


def _draw_shares(ax, table: pd.DataFrame, rows: list[tuple[str, str]]) -> None:
    parts = {"English": [], "other languages": [], "unknown": []}
    for dataset, metric in rows:
        shares = table[(table["model"] == dataset) & (table["metric"] == metric)].set_index("group")["value"]
        english, unknown = shares.get("en", 0.0), shares.get("unknown", 0.0)
        parts["English"].append(english)
        parts["unknown"].append(unknown)
        parts["other languages"].append(float(shares.sum() - english - unknown))
    y = np.arange(len(rows))
    left = np.zeros(len(rows))
    styles = {"English": ("0.85", ""), "other languages": ("#3a7ca5", "////"), "unknown": ("white", "xx")}
    for part, values in parts.items():
        color, hatch = styles[part]
        ax.barh(y, values, left=left, color=color, hatch=hatch, edgecolor="0.3", linewidth=0.6, label=part)
        left += np.asarray(values)
    for i, value in enumerate(parts["other languages"]):
        ax.annotate(f"non-English {value:.1f}%", (101, i), va="center", fontsize="small", annotation_clip=False)
    ax.set_yticks(y, [f"{d} · {m.replace('share_', '') if m != 'share' else 'all'}" for d, m in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel("messages (%)")
    ax.grid(False, axis="y")
    ax.legend(fontsize="small", loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3)


def _draw_top_languages(ax, table: pd.DataFrame, datasets: list[str], top: int) -> None:
    overall = table[(table["metric"] == "share") & ~table["group"].isin(["en", "unknown"])]
    leaders = overall.groupby("group")["value"].max().sort_values(ascending=False).index[:top]
    if not len(leaders):
        ax.text(0.5, 0.5, "no non-English messages", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    names = overall.drop_duplicates("group").set_index("group").get("group_name", pd.Series(dtype=str))
    y = np.arange(len(leaders))
    height = 0.8 / len(datasets)
    hatches = ("", "////", "....", "xx", "\\\\")
    palette = sns.color_palette("colorblind", len(datasets))
    for k, dataset in enumerate(datasets):
        values = overall[overall["model"] == dataset].set_index("group")["value"].reindex(leaders).fillna(0)
        ax.barh(
            y - 0.4 + height * (k + 0.5),
            values,
            height=height * 0.9,
            color=palette[k],
            hatch=hatches[k % len(hatches)],
            edgecolor="0.3",
            linewidth=0.5,
            label=dataset,
        )
    ax.set_yticks(y, [group_label(g, names.get(g)) for g in leaders])
    ax.set_ylim(len(leaders) - 0.5, -0.5)
    ax.set_xlabel("messages (%), all roles")
    ax.set_title(f"most frequent non-English languages (top {top})", fontsize="medium", pad=24)
    ax.grid(False, axis="y")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
