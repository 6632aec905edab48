"""A task's SAE items and their dialect rewrites as one paired task.

The dialect stage writes ``{task}@sae.parquet`` (the task's own items) and one
``{task}@{dialect}.parquet`` per dialect (same ``item_id``s, rewritten text). Here they become the
task's items: group ``sae`` or the dialect code, ``pair_id`` = the SAE item's id, ``item_id`` =
``{pair_id}@{group}``. Scores then pair up on ``pair_id``: per dialect, the change from the SAE
version of the same item (``{metric}_vs_sae`` rows, whose bootstrap CI is the paired one), and a
comparison table with McNemar's exact test for 0/1 metrics.

Plain pandas and scipy: nothing here needs Multi-VALUE.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from globalrep.atomic import write_csv_atomic, write_parquet_atomic
from globalrep.errors import GlobalrepError
from globalrep.intermediates import read_parquet_output
from globalrep.stats import mcnemar_exact, paired_difference, paired_test_name

SAE = "sae"
VS_SAE = "_vs_sae"
COMPARISON_COLUMNS = [
    "model", "dialect", "metric", "n", "sae", "dialect_value", "delta", "ci_low", "ci_high",
    "dialect_better", "sae_better", "p_value", "test",
]  # fmt: skip
SUMMARY_COLUMNS = ["dialect", "rule", "items", "share"]
CHANGED, FAILED = "(any rule)", "(rewrite failed; SAE text kept)"

log = logging.getLogger(__name__)


def combine(sae: pd.DataFrame, rewrites: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """SAE items (group ``sae``) and each dialect's rewrite of them, paired by ``pair_id``."""
    expected = set(sae["item_id"])
    frames = [sae.assign(dialect_rules=[[] for _ in range(len(sae))], rewrite_failed=False, group=SAE)]
    for dialect, frame in rewrites.items():
        if set(frame["item_id"]) != expected or len(frame) != len(sae):
            raise GlobalrepError(
                f"the {dialect} rewrite does not hold the SAE items one for one "
                f"({len(frame)} rows for {len(sae)} items): a bug in globalrep's dialect stage, please report it "
                "with this job's log"
            )
        frames.append(frame.assign(group=dialect))
    items = pd.concat(frames, ignore_index=True)
    pair_id = items["item_id"].astype(str)
    return items.assign(pair_id=pair_id, item_id=pair_id + "@" + items["group"])


def rewrite_summary(rewrites: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per dialect: in how many items any rule fired, how many rewrites failed, and in how many
    items each rule fired (most frequent first): ``dialect, rule, items, share``."""
    rows = []
    for dialect, frame in rewrites.items():
        n = len(frame)
        counts = pd.Series([rule for rules in frame["dialect_rules"] for rule in rules], dtype=str).value_counts()
        counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
        changed = int((frame["dialect_rules"].map(len) > 0).sum())
        failed = int(frame["rewrite_failed"].sum())
        for rule, count in [(CHANGED, changed), (FAILED, failed), *counts.items()]:
            rows.append((dialect, rule, int(count), count / n if n else np.nan))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def combine_task_items(
    sae_path: str | os.PathLike, rewrite_paths: Mapping[str, str | os.PathLike], items_out: str | os.PathLike
) -> None:
    """The workflow step: the paired items of a dialect task."""
    sae = read_parquet_output(sae_path)
    rewrites = {dialect: read_parquet_output(path) for dialect, path in rewrite_paths.items()}
    items = combine(sae, rewrites)
    write_parquet_atomic(items, items_out)
    log.info("wrote %d items (%d SAE items x %d versions) to %s", len(items), len(sae), 1 + len(rewrites), items_out)


def summarize_rewrites(rewrite_paths: Mapping[str, str | os.PathLike], summary_out: str | os.PathLike) -> None:
    """The workflow step: how often each rule fired, per dialect (:func:`rewrite_summary`)."""
    rewrites = {dialect: read_parquet_output(path) for dialect, path in rewrite_paths.items()}
    summary = rewrite_summary(rewrites)
    write_csv_atomic(summary, summary_out)
    for dialect, frame in summary.groupby("dialect", sort=False):
        changed = frame.set_index("rule").loc[CHANGED]
        log.info(
            "%s: rules fired in %d of %d items (%.0f%%)",
            dialect, changed["items"], len(rewrites[dialect]), 100 * changed["share"],
        )  # fmt: skip


# ------------------------------------------------------------------------------------ scores


def _pairs(scores: pd.DataFrame) -> pd.DataFrame:
    """Each dialect score beside the SAE score of the same item, model and metric: columns
    ``model, metric, pair_id, group, item_id, value, sae_value``."""
    if "pair_id" not in scores.columns:
        raise GlobalrepError("dialect scores need a pair_id column (the SAE item each row rewrites)")
    valid = scores.dropna(subset=["value"])
    keys = ["model", "metric", "pair_id"]
    sae = valid.loc[valid["group"] == SAE, [*keys, "value"]].rename(columns={"value": "sae_value"})
    dialect = valid.loc[valid["group"] != SAE, [*keys, "group", "item_id", "value"]]
    return dialect.merge(sae, on=keys, validate="many_to_one").sort_values([*keys, "group"], kind="stable")


def paired_rows(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` plus, per dialect item, ``{metric}_vs_sae`` = its value minus the SAE version's
    (same model and item). Their mean over items, with the bootstrap CI of the standard tables,
    is the paired difference; along a chain their deltas are the change in the dialect gap."""
    pairs = _pairs(scores)
    differences = pairs.assign(metric=pairs["metric"] + VS_SAE, value=pairs["value"] - pairs["sae_value"])
    columns = ["model", "item_id", "group", "metric", "value", "pair_id"]
    return pd.concat([scores, differences[columns]], ignore_index=True)


def comparison_table(scores: pd.DataFrame) -> pd.DataFrame:
    """SAE vs each dialect on the same items, per model and metric: the mean of each, the paired
    difference (dialect − SAE) with its 95% bootstrap CI, the shares of pairs where either
    version scores higher, and a two-sided p-value: McNemar's exact test for 0/1 metrics, else
    the paired test of :func:`~globalrep.stats.paired_difference`. Rows derived by
    :func:`paired_rows` are ignored; the workflow adds the q-values per model and metric."""
    base = scores[~scores["metric"].str.endswith(VS_SAE)]
    rows = []
    for (model, metric, dialect), frame in _pairs(base).groupby(["model", "metric", "group"], sort=True):
        sae, other = frame["sae_value"].to_numpy(), frame["value"].to_numpy()
        delta, low, high, p_value = paired_difference(sae, other)
        test = paired_test_name(other - sae)
        if np.isin(np.concatenate([sae, other]), (0.0, 1.0)).all():
            _, _, p_value = mcnemar_exact(sae, other)
            test = "McNemar exact"
        rows.append((
            model, dialect, metric, len(frame), sae.mean(), other.mean(), delta, low, high,
            float(np.mean(other > sae)), float(np.mean(sae > other)), p_value, test,
        ))  # fmt: skip
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
