import numpy as np
import pandas as pd
import pytest

from globalrep.tables import deltas_table, group_table, read_table, reference_differences_table

# The table formats as ../shared/DESIGN.md fixes them, stated here on purpose rather than imported
# from globalrep.tables, so that a change of the code's column lists fails these tests.
GROUP_COLUMNS = ["model", "group", "metric", "value", "ci_low", "ci_high", "n"]
DELTA_COLUMNS = ["chain", "from_model", "to_model", "group", "metric", "delta", "ci_low", "ci_high", "p_value", "q_value"]  # fmt: skip


def long_scores(values: dict[tuple[str, str], list[float]], metric="accuracy") -> pd.DataFrame:
    """{(model, group): per-item values} → long scores with item ids i0, i1, …"""
    rows = [
        (model, f"i{i}", group, metric, value)
        for (model, group), items in values.items()
        for i, value in enumerate(items)
    ]
    return pd.DataFrame(rows, columns=["model", "item_id", "group", "metric", "value"])


def test_group_table_means_counts_and_columns():
    scores = long_scores({("b", "en"): [1.0, 0.0, 1.0, 1.0], ("a", "en"): [0.2, np.nan, 0.4], ("a", "fr"): [0.5]})
    table = group_table(scores)
    assert list(table.columns) == GROUP_COLUMNS
    assert table[["model", "group"]].values.tolist() == [["a", "en"], ["a", "fr"], ["b", "en"]]
    assert table["value"].tolist() == pytest.approx([0.3, 0.5, 0.75])
    assert table["n"].tolist() == [2, 1, 4]  # the NaN item is not counted
    assert (table["ci_low"] <= table["value"]).all() and (table["value"] <= table["ci_high"]).all()


def test_group_table_does_not_depend_on_row_order():
    rng = np.random.default_rng(0)
    scores = long_scores({("a", "en"): list(rng.random(40)), ("a", "fr"): list(rng.random(40))})
    shuffled = scores.sample(frac=1, random_state=1)
    pd.testing.assert_frame_equal(group_table(scores), group_table(shuffled))


def test_deltas_pair_on_item_id_even_when_rows_are_shuffled():
    rng = np.random.default_rng(0)
    before = rng.uniform(0, 1, size=50)  # large spread between items, tiny consistent gain
    scores = long_scores({("base", "en"): list(before), ("sft", "en"): list(before + 0.01)})
    scores = pd.concat([scores, pd.DataFrame([("sft", "only-sft", "en", "accuracy", 5.0)], columns=scores.columns)])
    shuffled = scores.sample(frac=1, random_state=3)
    deltas = deltas_table(shuffled, {"chain": ["base", "sft"]})
    assert list(deltas.columns) == DELTA_COLUMNS
    assert len(deltas) == 1
    row = deltas.iloc[0]
    assert (row["chain"], row["from_model"], row["to_model"], row["group"], row["metric"]) == (
        "chain",
        "base",
        "sft",
        "en",
        "accuracy",
    )
    # Paired on item_id: the item only sft has is left out, and every pair moved by exactly 0.01.
    assert row["delta"] == pytest.approx(0.01)
    assert row["ci_low"] == pytest.approx(0.01) and row["ci_high"] == pytest.approx(0.01)
    assert row["p_value"] < 0.05
    pd.testing.assert_frame_equal(deltas, deltas_table(scores, {"chain": ["base", "sft"]}))


def test_deltas_follow_chains_and_skip_absent_models():
    scores = long_scores(
        {(m, g): [v, v + 0.1, v + 0.2] for m, v in (("base", 0.1), ("pt", 0.4), ("other", 0.3)) for g in ("fr", "en")}
    )
    chains = {"z-chain": ["base", "sft", "pt"], "a-chain": ["other", "base"], "lonely": ["pt", "missing"]}
    deltas = deltas_table(scores, chains)
    assert deltas[["chain", "from_model", "to_model", "group"]].values.tolist() == [
        ["z-chain", "base", "pt", "en"],
        ["z-chain", "base", "pt", "fr"],
        ["a-chain", "other", "base", "en"],
        ["a-chain", "other", "base", "fr"],
    ]
    assert deltas["delta"].tolist() == pytest.approx([0.3, 0.3, -0.2, -0.2])


def test_empty_scores_give_empty_tables_with_the_columns():
    empty = pd.DataFrame(columns=["model", "item_id", "group", "metric", "value"])
    assert list(group_table(empty).columns) == GROUP_COLUMNS and group_table(empty).empty
    assert list(deltas_table(empty, {"c": ["a", "b"]}).columns) == DELTA_COLUMNS


def test_tables_round_trip_through_csv_keeping_group_codes(tmp_path):
    scores = long_scores({("a", "NA"): [0.5, 0.7], ("b", "NA"): [0.4, 0.8]})  # "NA": Namibia, not missing
    path = tmp_path / "deltas.csv"
    deltas_table(scores, {"c": ["a", "b"]}).to_csv(path, index=False)
    back = read_table(path)
    assert back["group"].tolist() == ["NA"]
    assert back["delta"].tolist() == pytest.approx([0.0])


def test_changes_from_base_compare_every_later_model_with_the_chains_first():
    # base 0.1/0.2/0.3; sft +0.3 on every item; pt +0.1 on every item: from base, pt is +0.1 (the
    # consecutive sft -> pt change is -0.2).
    scores = long_scores(
        {("base", "en"): [0.1, 0.2, 0.3], ("sft", "en"): [0.4, 0.5, 0.6], ("pt", "en"): [0.2, 0.3, 0.4]}
    )
    chains = {"c": ["base", "sft", "pt"], "headless": ["missing", "pt"]}
    from_base = deltas_table(scores, chains, from_base=True)
    assert list(from_base.columns) == DELTA_COLUMNS
    assert from_base[["chain", "from_model", "to_model"]].values.tolist() == [["c", "base", "sft"], ["c", "base", "pt"]]
    assert from_base["delta"].tolist() == pytest.approx([0.3, 0.1])
    assert deltas_table(scores, chains)["delta"].tolist() == pytest.approx([0.3, -0.2])


def test_reference_differences_are_paired_per_item_and_signed_group_minus_reference():
    # Item i0: US 0.9, China 0.6 -> -0.3; i1: US 0.5, China 0.4 -> -0.1; i2 only China asked.
    scores = pd.DataFrame(
        [("m", "i0", "US", "similarity", 0.9), ("m", "i1", "US", "similarity", 0.5),
         ("m", "i0", "China", "similarity", 0.6), ("m", "i1", "China", "similarity", 0.4),
         ("m", "i2", "China", "similarity", 0.0), ("other", "i0", "China", "similarity", 0.1)],
        columns=["model", "item_id", "group", "metric", "value"],
    )  # fmt: skip
    table = reference_differences_table(scores.sample(frac=1, random_state=0), "US", "minus_us")
    assert list(table.columns) == [*GROUP_COLUMNS[:6], "p_value", "q_value", "n"]
    assert table[["model", "group", "metric", "n"]].values.tolist() == [["m", "China", "similarity_minus_us", 2]]
    row = table.iloc[0]
    assert row["value"] == pytest.approx(-0.2)  # mean of the paired differences, not of unpaired means
    assert row["ci_low"] == pytest.approx(-0.3) and row["ci_high"] == pytest.approx(-0.1)  # two items: min, max
