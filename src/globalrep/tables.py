"""The two table shapes every task produces: per-group aggregates and per-chain deltas.

Both read long per-item scores (``model, item_id, group, metric, value``). Items whose value
is NaN (undefined for that item) are left out of means, CIs and counts. Rows are put in
item order first, so the bootstrap draws, and thus the tables, do not depend on input order.
"""

from __future__ import annotations

import os

import pandas as pd

from globalrep.stats import adjusted_p_values, bootstrap_cis, paired_differences, unpaired_difference

GROUP_COLUMNS = ["model", "group", "metric", "value", "ci_low", "ci_high", "n"]
DELTA_COLUMNS = [
    "chain",
    "from_model",
    "to_model",
    "group",
    "metric",
    "delta",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
]
REFERENCE_DIFFERENCE_COLUMNS = [*GROUP_COLUMNS[:6], "p_value", "q_value", "n"]
GAP_COLUMNS = [
    "model",
    "reference",
    "group",
    "metric",
    "gap",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "n_reference",
    "n_group",
]
GAP_CHANGE_COLUMNS = [
    "chain", "from_model", "to_model", "reference", "group", "metric", "change", "ci_low", "ci_high", "p_value", "q_value",
]  # fmt: skip

# A family of tests is the rows of a table that share these columns (those the table has): one
# comparison of one metric (a chain step, a base -> model, a model vs the reference) across its
# groups. q-values correct for the number of groups tested within it.
FAMILY_COLUMNS = ("chain", "from_model", "to_model", "model", "reference", "metric", "method")


def with_q_values(table: pd.DataFrame, correction: str = "bh") -> pd.DataFrame:
    """``table`` with its ``q_value`` column (put after ``p_value``) set to the ``p_value``s
    corrected within each family (:data:`FAMILY_COLUMNS`) by ``correction`` (``bh``, ``holm`` or
    ``none``; :func:`~globalrep.stats.adjusted_p_values`). NaN p-values are left out of their
    family and keep a NaN q-value."""
    table = table.drop(columns="q_value", errors="ignore")
    family = [column for column in FAMILY_COLUMNS if column in table.columns]
    families = table.groupby(family, sort=False, dropna=False) if family else [((), table)]
    q_values = pd.Series(float("nan"), index=table.index)
    for _, rows in families if len(table) else []:
        q_values[rows.index] = adjusted_p_values(rows["p_value"].to_numpy(dtype=float), correction)
    table.insert(table.columns.get_loc("p_value") + 1, "q_value", q_values)
    return table


def _tested(rows: list[tuple], columns: list[str], correction: str) -> pd.DataFrame:
    """``rows`` (every column but ``q_value``) as a table with its q-values."""
    return with_q_values(pd.DataFrame(rows, columns=[c for c in columns if c != "q_value"]), correction)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read either table back; only empty cells are missing (a group code such as ``NA`` stays text)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def _valid(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.dropna(subset=["value"]).sort_values(["model", "group", "metric", "item_id"], kind="stable")


def group_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean per (model, group, metric) over items with a 95% bootstrap CI, sorted by those keys."""
    keys, samples = [], []
    for key, frame in _valid(scores).groupby(["model", "group", "metric"], sort=True):
        keys.append(key)
        samples.append(frame["value"].to_numpy())
    rows = [(*key, *interval, len(sample)) for key, sample, interval in zip(keys, samples, bootstrap_cis(samples))]
    return _with_group_names(pd.DataFrame(rows, columns=GROUP_COLUMNS), scores)


def _with_group_names(table: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """A readable ``group_name`` column after ``group`` when the scores carry one (a language's
    name beside its code, say); the table is unchanged otherwise."""
    if "group_name" not in scores.columns:
        return table
    names = scores.drop_duplicates("group").set_index("group")["group_name"]
    table.insert(table.columns.get_loc("group") + 1, "group_name", table["group"].map(names))
    return table


def deltas_table(
    scores: pd.DataFrame, chains: dict[str, list[str]], from_base: bool = False, correction: str = "bh"
) -> pd.DataFrame:
    """Paired change between consecutive models of every chain, per (group, metric); with
    ``from_base``, from the chain's first model (its base) to each later one instead. Its
    q-values correct within one step (or base -> model) and metric across the groups.

    Models of a chain that have no scores are skipped, so a chain ``base → sft → pt`` without
    ``sft`` compares ``base → pt``; a chain whose base has no scores has no changes from base.
    Pairs are matched on ``item_id``; rows keep chain order, then group and metric sorted.
    """
    keys, pairs = [], []
    for chain, from_model, to_model, paired in _chain_pairs(scores, chains, from_base):
        for (group, metric), frame in paired.groupby(["group", "metric"], sort=True):
            keys.append((chain, from_model, to_model, group, metric))
            pairs.append((frame["value_from"].to_numpy(), frame["value_to"].to_numpy()))
    rows = [(*key, *difference) for key, difference in zip(keys, paired_differences(pairs))]
    return _tested(rows, DELTA_COLUMNS, correction)


def _chain_pairs(scores: pd.DataFrame, chains: dict[str, list[str]], from_base: bool = False):
    """``(chain, from_model, to_model, paired)`` for consecutive models of every chain that have
    scores (with ``from_base``: the chain's first model and each later one); ``paired`` matches
    items (``group, metric, item_id``) with ``value_from``, ``value_to``."""
    valid = _valid(scores)
    present = set(valid["model"])
    keys = ["group", "metric", "item_id"]
    for chain, models in chains.items():
        members = [model for model in models if model in present]
        if from_base:
            steps = [(models[0], member) for member in members[1:]] if models and models[0] in present else []
        else:
            steps = list(zip(members, members[1:]))
        for from_model, to_model in steps:
            before = valid.loc[valid["model"] == from_model, [*keys, "value"]]
            after = valid.loc[valid["model"] == to_model, [*keys, "value"]]
            yield (
                chain,
                from_model,
                to_model,
                before.merge(after, on=keys, suffixes=("_from", "_to"), validate="one_to_one"),
            )


def reference_differences_table(
    scores: pd.DataFrame, reference: str, metric_suffix: str, correction: str = "bh"
) -> pd.DataFrame:
    """Per model and metric, each group's score minus ``reference``'s on the same items (paired
    over ``item_id``; items either lacks are left out): the mean difference with its 95%
    bootstrap CI and paired test's p (q within one model and metric across the groups), in the
    ``{task}.csv`` shape with metric ``{metric}_{metric_suffix}``. Negative means the reference
    group scores higher. Models without the reference group are left out."""
    valid = _valid(scores)
    keys, pairs = [], []
    for (model, metric), frame in valid.groupby(["model", "metric"], sort=True):
        wide = frame.pivot(index="item_id", columns="group", values="value")
        if reference not in wide.columns:
            continue
        for group in wide.columns.drop(reference):
            keys.append((model, group, f"{metric}_{metric_suffix}"))
            both = wide[[reference, group]].dropna()
            pairs.append((both[reference].to_numpy(), both[group].to_numpy()))
    rows = [(*key, *difference, len(pair[0])) for key, pair, difference in zip(keys, pairs, paired_differences(pairs))]
    return _tested(rows, REFERENCE_DIFFERENCE_COLUMNS, correction)


def gaps_table(scores: pd.DataFrame, reference: str, correction: str = "bh") -> pd.DataFrame:
    """Per model and metric, how far each group trails ``reference``: ``mean(reference) -
    mean(group)`` over their own items (different items: an unpaired bootstrap CI and a
    permutation p-value; q within one model and metric across the groups). Models without the
    reference group are left out."""
    valid = _valid(scores)
    rows = []
    for (model, metric), frame in valid.groupby(["model", "metric"], sort=True):
        values = {group: part["value"].to_numpy() for group, part in frame.groupby("group", sort=True)}
        if reference not in values:
            continue
        for group, other in values.items():
            if group != reference:
                gap, low, high, p_value = unpaired_difference(values[reference], other)
                rows.append(
                    (model, reference, group, metric, gap, low, high, p_value, len(values[reference]), len(other))
                )
    return _tested(rows, GAP_COLUMNS, correction)


def gap_changes_table(
    scores: pd.DataFrame, reference: str, chains: dict[str, list[str]], correction: str = "bh"
) -> pd.DataFrame:
    """How each gap of :func:`gaps_table` changes between consecutive models of every chain.

    The change ``gap(to) - gap(from)`` is the mean per-item change on the reference group minus
    that on the other group: items are paired across models within a group, independent across
    groups, so its CI resamples the two groups' per-item changes separately. Chain members
    without scores are skipped, as in :func:`deltas_table`. q within one step and metric across
    the groups.
    """
    rows = []
    for chain, from_model, to_model, paired in _chain_pairs(scores, chains):
        paired["change"] = paired["value_to"] - paired["value_from"]
        for metric, frame in paired.groupby("metric", sort=True):
            changes = {group: part["change"].to_numpy() for group, part in frame.groupby("group", sort=True)}
            for group, other in changes.items():
                if reference in changes and group != reference:
                    change, low, high, p_value = unpaired_difference(changes[reference], other)
                    rows.append((chain, from_model, to_model, reference, group, metric, change, low, high, p_value))
    return _tested(rows, GAP_CHANGE_COLUMNS, correction)
