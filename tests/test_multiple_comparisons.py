"""q-values: Benjamini-Hochberg (or Holm) within each family, and p-values fine enough for it.

Calibration on synthetic paired data of the shape that matters most: 122 groups (Belebele's
language variants) of 400 binary items.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from globalrep import stats
from globalrep.stats import adjusted_p_values, paired_p_values, paired_test_name
from globalrep.tables import deltas_table, with_q_values

GROUPS, ITEMS, SEEDS = 122, 400, range(5)


def binary_pairs(seed: int, shift: np.ndarray) -> list[np.ndarray]:
    """Per group, after − before of 0/1 outcomes on the same items: the before model is right
    60% of the time, the after one ``shift`` more often. Two checkpoints of one chain agree on
    most items, so for 70% of the items both models' outcomes come from one uniform draw."""
    rng = np.random.default_rng(seed)
    draw = rng.random((GROUPS, ITEMS))
    redrawn = np.where(rng.random((GROUPS, ITEMS)) < 0.7, draw, rng.random((GROUPS, ITEMS)))
    before = draw < 0.6
    after = redrawn < 0.6 + shift[:, None]
    return list(after.astype(float) - before.astype(float))


def test_no_true_change_flags_at_most_a_couple_of_groups_over_several_seeds():
    raw, corrected = 0, 0
    for seed in SEEDS:
        p_values = np.array(paired_p_values(binary_pairs(seed, np.zeros(GROUPS))))
        raw += int((p_values < 0.05).sum())
        corrected += int((adjusted_p_values(p_values) < 0.05).sum())
    assert raw >= len(SEEDS) * 2  # uncorrected, about 6 false findings a seed
    assert corrected <= 2


def test_a_true_change_of_ten_points_in_ten_groups_is_found_in_every_seed():
    shift = np.zeros(GROUPS)
    shift[:10] = 0.10
    for seed in SEEDS:
        q_values = adjusted_p_values(paired_p_values(binary_pairs(seed, shift)))
        found = q_values < 0.05
        assert found[:10].sum() >= 8, seed
        assert found[10:].sum() <= 2, seed


def test_binary_differences_get_the_exact_sign_test_whose_p_goes_below_what_122_groups_need():
    # 20 items gained, none lost, 380 unchanged: McNemar's exact p = 2 / 2**20, far below 0.05/122
    # (2,000 sign-flip resamples could not go below ~5e-4).
    diff = np.zeros(ITEMS)
    diff[:20] = 1.0
    assert paired_test_name(diff) == stats.BINOMIAL
    assert paired_p_values([diff]) == [pytest.approx(2 / 2**20)]
    diff[:3] = -1.0  # 17 gained, 3 lost
    assert paired_p_values([diff]) == [pytest.approx(scipy_stats.binomtest(17, 20).pvalue)]


def test_many_items_of_other_differences_get_a_paired_t_test_and_few_the_sign_flip_test():
    rng = np.random.default_rng(3)
    many = rng.normal(0.1, 1, size=stats.ANALYTIC_MIN_ITEMS)
    assert paired_test_name(many) == stats.T_TEST
    assert paired_p_values([many]) == [pytest.approx(scipy_stats.ttest_1samp(many, 0).pvalue)]
    assert paired_test_name(many[:-1]) == stats.PERMUTATION


def test_q_values_by_hand_with_ties_and_a_missing_p_value():
    # Five tested groups (the NaN one is left out of the family). BH: sorted p 0.001, 0.02,
    # 0.02, 0.04, 0.5 times 5/rank = 0.005, 0.05, 0.0333, 0.05, 0.5; then the running minimum
    # from the largest: 0.005, 0.0333, 0.0333, 0.05, 0.5. Ties share their q.
    p_values = [0.001, 0.02, 0.02, np.nan, 0.04, 0.5]
    np.testing.assert_allclose(adjusted_p_values(p_values), [0.005, 0.1 / 3, 0.1 / 3, np.nan, 0.05, 0.5])
    # Holm: sorted p times 5, 4, 3, 2, 1 = 0.005, 0.08, 0.06, 0.08, 0.5, kept non-decreasing.
    np.testing.assert_allclose(adjusted_p_values(p_values, "holm"), [0.005, 0.08, 0.08, np.nan, 0.08, 0.5])
    np.testing.assert_array_equal(adjusted_p_values(p_values, "none"), p_values)
    assert np.isnan(adjusted_p_values([np.nan, np.nan])).all()
    with pytest.raises(ValueError, match="unknown correction"):
        adjusted_p_values(p_values, "bonferroni")


def test_q_values_correct_within_each_family_of_a_table():
    # Two families (one per step); the NaN row is left out of its family.
    table = pd.DataFrame(
        {"chain": "c", "from_model": ["a", "a", "a", "b", "b"], "to_model": ["b", "b", "b", "c", "c"],
         "group": ["x", "y", "z", "x", "y"], "metric": "accuracy", "p_value": [0.01, 0.04, np.nan, 0.01, 0.5]}
    )  # fmt: skip
    corrected = with_q_values(table)
    assert list(corrected.columns) == [*table.columns, "q_value"]
    np.testing.assert_allclose(corrected["q_value"], [0.02, 0.04, np.nan, 0.02, 0.5])


def test_deltas_table_carries_q_values_of_its_families():
    rng = np.random.default_rng(0)
    rows = [
        (model, f"i{item}", group, "accuracy", float(rng.random() < 0.5 + (0.3 if model == "pt" and group == "g0" else 0)))
        for model in ("base", "sft", "pt") for group in ("g0", "g1", "g2") for item in range(60)
    ]  # fmt: skip
    scores = pd.DataFrame(rows, columns=["model", "item_id", "group", "metric", "value"])
    for correction in ("bh", "holm", "none"):
        deltas = deltas_table(scores, {"c": ["base", "sft", "pt"]}, correction=correction)
        for _, family in deltas.groupby(["from_model", "to_model"]):
            np.testing.assert_allclose(family["q_value"], adjusted_p_values(family["p_value"], correction))
