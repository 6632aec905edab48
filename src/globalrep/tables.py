"""The two table shapes every task produces: per-group aggregates and per-chain deltas.

Both read long per-item scores (``model, item_id, group, metric, value``). Items whose value
is NaN (undefined for that item) are left out of means, CIs and counts. Rows are put in
item order first, so the bootstrap draws, and thus the tables, do not depend on input order.
"""

from __future__ import annotations

import os

import pandas as pd

from globalrep.stats import bootstrap_ci, paired_difference

GROUP_COLUMNS = ["model", "group", "metric", "value", "ci_low", "ci_high", "n"]
DELTA_COLUMNS = ["chain", "from_model", "to_model", "group", "metric", "delta", "ci_low", "ci_high", "p_value"]


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read either table back; only empty cells are missing (a group code such as ``NA`` stays text)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def _valid(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.dropna(subset=["value"]).sort_values(["model", "group", "metric", "item_id"], kind="stable")


def group_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean per (model, group, metric) over items with a 95% bootstrap CI, sorted by those keys."""
    rows = []
    for (model, group, metric), frame in _valid(scores).groupby(["model", "group", "metric"], sort=True):
        value, low, high = bootstrap_ci(frame["value"].to_numpy())
        rows.append((model, group, metric, value, low, high, len(frame)))
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def deltas_table(scores: pd.DataFrame, chains: dict[str, list[str]]) -> pd.DataFrame:
    """Paired change between consecutive models of every chain, per (group, metric).

    Models of a chain that have no scores are skipped, so a chain ``base → sft → pt`` without
    ``sft`` compares ``base → pt``. Pairs are matched on ``item_id``; rows keep chain order,
    then group and metric sorted.
    """
    valid = _valid(scores)
    present = set(valid["model"])
    keys = ["group", "metric", "item_id"]
    rows = []
    for chain, models in chains.items():
        members = [model for model in models if model in present]
        for from_model, to_model in zip(members, members[1:]):
            before = valid.loc[valid["model"] == from_model, [*keys, "value"]]
            after = valid.loc[valid["model"] == to_model, [*keys, "value"]]
            paired = before.merge(after, on=keys, suffixes=("_from", "_to"), validate="one_to_one")
            for (group, metric), frame in paired.groupby(["group", "metric"], sort=True):
                delta, low, high, p_value = paired_difference(
                    frame["value_from"].to_numpy(), frame["value_to"].to_numpy()
                )
                rows.append((chain, from_model, to_model, group, metric, delta, low, high, p_value))
    return pd.DataFrame(rows, columns=DELTA_COLUMNS)
