import warnings

import numpy as np
import pytest

from globalrep import stats
from globalrep.stats import (
    bootstrap_ci,
    bootstrap_cis,
    bootstrap_statistic,
    mean_minus_median,
    paired_difference,
    paired_differences,
    spearman_change,
)


def test_bootstrap_ci_contains_the_mean_and_shrinks_with_more_items():
    rng = np.random.default_rng(1)
    small = rng.normal(0.6, 0.1, size=20)
    large = rng.normal(0.6, 0.1, size=2000)
    for values in (small, large):
        mean, low, high = bootstrap_ci(values)
        assert mean == pytest.approx(values.mean())
        assert low < mean < high
    widths = [bootstrap_ci(values)[2] - bootstrap_ci(values)[1] for values in (small, large)]
    assert widths[1] < widths[0] / 5  # ~1/sqrt(100) of the width


def test_bootstrap_ci_is_seeded():
    values = np.random.default_rng(2).random(30)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    _, low50, high50 = bootstrap_ci(values, confidence=0.5)
    _, low95, high95 = bootstrap_ci(values)
    assert low95 < low50 < high50 < high95


def test_bootstrap_ci_degenerate_inputs_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bootstrap_ci([0.7, 0.7, 0.7]) == pytest.approx((0.7, 0.7, 0.7))
        assert bootstrap_ci([0.3]) == (0.3, 0.3, 0.3)
        assert all(np.isnan(bootstrap_ci([])))
        assert paired_difference([0.2], [0.5]) == pytest.approx((0.3, 0.3, 0.3, 1.0))
        assert paired_difference([0.2, 0.4], [0.2, 0.4])[3] == 1.0


def test_paired_difference_detects_a_real_shift():
    rng = np.random.default_rng(4)
    before = rng.uniform(0.3, 0.9, size=60)  # items differ a lot; the shift is small but consistent
    after = before + 0.03 + rng.normal(0, 0.02, size=60)
    delta, low, high, p_value = paired_difference(before, after)
    assert delta == pytest.approx(np.mean(after - before))
    assert 0 < low < delta < high
    assert p_value < 0.05


def test_paired_difference_finds_no_shift_in_noise():
    rng = np.random.default_rng(5)
    before = rng.uniform(0.3, 0.9, size=60)
    after = before + rng.normal(0, 0.02, size=60)
    delta, low, high, p_value = paired_difference(before, after)
    assert low < 0 < high
    assert p_value > 0.05


def test_sign_flip_test_is_exact_for_few_items():
    # Five positive differences: only "all +" and "all −" are as extreme, so p = 2 / 2**5.
    _, _, _, p_value = paired_difference(np.zeros(5), np.array([0.1, 0.2, 0.3, 0.4, 0.5]))
    assert p_value == pytest.approx(2 / 32)


def test_paired_difference_needs_equal_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        paired_difference([1.0, 2.0], [1.0])


@pytest.mark.parametrize("max_resampled", [stats.MAX_RESAMPLED_VALUES, 2000 * 12 * 2])  # one call; two rows a call
def test_many_samples_at_once_get_exactly_what_each_gets_alone(monkeypatch, max_resampled):
    # Samples of one size share a scipy call; a sample's CI and p-value must not depend on which
    # others it shares it with (not even in the last digit: tables are compared byte for byte).
    monkeypatch.setattr(stats, "MAX_RESAMPLED_VALUES", max_resampled)
    rng = np.random.default_rng(6)
    samples = [rng.normal(size=n) for n in (12, 5, 12, 12, 40, 12, 5, 1, 0)]
    samples += [rng.integers(0, 2, size=12).astype(float), np.full(12, 0.5), np.round(rng.normal(size=12), 1)]
    alone = [bootstrap_ci(values) for values in samples]
    np.testing.assert_array_equal(bootstrap_cis(samples), alone)
    pairs = [(values, values + np.round(rng.normal(0.1, 0.3, size=values.size), 2)) for values in samples]
    np.testing.assert_array_equal(paired_differences(pairs), [paired_difference(*pair) for pair in pairs])
    np.testing.assert_array_equal(bootstrap_cis(samples[::-1]), alone[::-1])


def _scipy_alone(values: np.ndarray) -> tuple[float, float, float]:
    """One sample's CI and sign-flip p-value from plain scipy calls with ``np.mean``, as the
    tables computed them one group at a time."""
    from scipy import stats as scipy_stats

    interval = scipy_stats.bootstrap((values,), np.mean, vectorized=True, n_resamples=2000, method="percentile",
                                     rng=np.random.default_rng(0)).confidence_interval  # fmt: skip
    test = scipy_stats.permutation_test((values,), np.mean, permutation_type="samples", vectorized=True,
                                        n_resamples=2000, rng=np.random.default_rng(0))  # fmt: skip
    return float(interval.low), float(interval.high), float(test.pvalue)


def test_batched_numbers_equal_plain_scipy_calls_to_the_last_digit(monkeypatch):
    monkeypatch.setattr(stats, "ANALYTIC_MIN_ITEMS", 10**9)  # every sample through the sign-flip test
    # Long samples are where numpy's pairwise and item-order sums round differently, and few
    # distinct values make sign-flip statistics that tie the observed one up to that rounding
    # (this draw holds such a tie); tables must not change by a digit because groups are batched.
    rng = np.random.default_rng(1)
    diffs = [rng.choice([-0.3, -0.1, 0.0, 0.1, 0.2, 0.7], size=n) for n in (9, 17, 40, 100, 245) * 4]
    batched = paired_differences([(np.zeros(diff.size), diff) for diff in diffs])
    for diff, (_, low, high, p_value) in zip(diffs, batched):
        assert (low, high, p_value) == _scipy_alone(diff)


def test_bootstrap_statistic_of_independent_samples_is_seeded_and_tests_against_zero():
    rng = np.random.default_rng(3)
    english, others = rng.normal(1.0, 1, 60), [rng.normal(0.0, 1, 40) for _ in range(3)]
    first = bootstrap_statistic([english, *others], mean_minus_median, paired=False)
    assert first == bootstrap_statistic([english, *others], mean_minus_median, paired=False)  # seeded
    value, low, high, p_value = first
    assert value == pytest.approx(english.mean() - np.median([o.mean() for o in others]))
    assert 0 < low < value < high and p_value < 0.01
    _, low, high, p_value = bootstrap_statistic([others[0], *others[1:]], mean_minus_median, paired=False)
    assert low < 0 < high and p_value > 0.05


def test_bootstrap_statistic_resamples_pairs_together_and_handles_too_few():
    countries = np.arange(15, dtype=float)
    before, after = countries[::-1].copy(), countries.copy()  # correlation -1, then +1
    value, low, high, p_value = bootstrap_statistic([before, after, countries], spearman_change, paired=True)
    assert value == pytest.approx(2.0) and low == high == pytest.approx(2.0)  # paired: every resample keeps the order
    assert p_value == pytest.approx(2 / 2001)
    assert np.isnan(bootstrap_statistic([[1.0], [2.0]], mean_minus_median, paired=False)[1])
