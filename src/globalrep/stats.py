"""Bootstrap confidence intervals and paired tests over items, seeded so tables are reproducible.

scipy.stats is imported where it is used: it takes about 2 s to import, and every job imports the
task registry, while only scoring jobs compute statistics.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np


def _mean_of_rows(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean along ``axis``, each row summed as numpy sums a contiguous row (pairwise).

    scipy hands the bootstrap statistic a strided view whose layout depends on how many samples
    share the call, and numpy's summation order follows the layout; a contiguous copy makes every
    sample's resampled means those of scipy's one-sample call, to the last digit.
    """
    return np.ascontiguousarray(np.moveaxis(x, axis, -1)).mean(axis=-1)


# Samples of one size are resampled in one scipy call (scipy's per-call checks cost more than the
# arithmetic on small samples); each call holds at most this many resampled values in memory.
MAX_RESAMPLED_VALUES = 20_000_000


def _by_size(samples: Sequence[np.ndarray], n_resamples: int) -> Iterator[tuple[list[int], np.ndarray]]:
    """``(indices, rows)``: the samples of each size stacked as rows, in chunks that keep
    ``rows x n_resamples x size`` under :data:`MAX_RESAMPLED_VALUES`."""
    sizes: dict[int, list[int]] = defaultdict(list)
    for index, values in enumerate(samples):
        sizes[values.size].append(index)
    for size, indices in sizes.items():
        per_call = max(1, MAX_RESAMPLED_VALUES // (n_resamples * size))
        for start in range(0, len(indices), per_call):
            chunk = indices[start : start + per_call]
            yield chunk, np.stack([samples[index] for index in chunk])


def bootstrap_cis(
    samples: Sequence[Sequence[float] | np.ndarray],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> list[tuple[float, float, float]]:
    """Mean of each sample and its percentile-bootstrap confidence interval: ``(mean, low, high)``.

    Every sample is resampled as if alone with a generator seeded ``seed`` (so a sample's interval
    does not depend on the others). Fewer than two values, or identical values, carry no spread to
    resample: the interval is ``(mean, mean)`` (NaN for no values) instead of scipy's
    degenerate-data warnings.
    """
    from scipy import stats

    samples = [np.asarray(values, dtype=float) for values in samples]
    results: list[tuple[float, float, float]] = []
    spread = []
    for values in samples:
        mean = float(values.mean()) if values.size else np.nan
        results.append((mean, mean, mean))
        if values.size >= 2 and np.ptp(values) > 0:
            spread.append(len(results) - 1)
    # Each call draws its resampling indices from a fresh generator with the same seed, so samples
    # of equal size resampled together get exactly the draws they would get alone.
    for chunk, rows in _by_size([samples[index] for index in spread], n_resamples):
        interval = stats.bootstrap(
            (rows,),
            _mean_of_rows,
            vectorized=True,
            axis=-1,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        ).confidence_interval
        for row, position in enumerate(chunk):
            index = spread[position]
            results[index] = (results[index][0], float(interval.low[row]), float(interval.high[row]))
    return results


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """:func:`bootstrap_cis` of one sample."""
    return bootstrap_cis([values], confidence, n_resamples, seed)[0]


# Differences that are not all of one size get a paired t-test from this many items on (see
# :func:`paired_test_name`); fewer keep the sign-flip permutation test.
ANALYTIC_MIN_ITEMS = 100

BINOMIAL, PERMUTATION, T_TEST = "exact sign test", "sign-flip permutation", "paired t-test"


def paired_test_name(differences: np.ndarray) -> str:
    """Which test gives the p-value of these per-item differences (:func:`paired_p_values`).

    Differences whose nonzero values are all of one size (0/1 outcomes) have an exact sign-flip
    distribution, the binomial: McNemar's exact test, as fine as the data allow, and cheap.
    Others are sign-flipped below :data:`ANALYTIC_MIN_ITEMS` items (every flip when ``2**n`` is
    at most the resamples) and get a paired t-test from there: Monte Carlo resampling cannot
    resolve the p-values a correction over 100+ groups needs (2,000 resamples stop at p ~ 5e-4)
    without costing minutes per table (bench/tables.py, BENCHMARKS.md).
    """
    nonzero = np.abs(differences[differences != 0])
    if nonzero.size == 0 or np.all(nonzero == nonzero[0]):
        return BINOMIAL
    if differences.size >= ANALYTIC_MIN_ITEMS:
        return T_TEST
    return PERMUTATION


def paired_differences(
    pairs: Sequence[tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> list[tuple[float, float, float, float]]:
    """Mean paired change ``after - before`` over items for each ``(before, after)`` pair:
    ``(delta, low, high, p_value)``.

    The interval bootstraps the per-item differences; the p-value is :func:`paired_p_values`'.
    As in :func:`bootstrap_cis`, each pair gets the result it would get alone.
    """
    diffs = []
    for before, after in pairs:
        before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
        if before.shape != after.shape:
            raise ValueError(f"paired samples differ in length: {before.shape} vs {after.shape}")
        diffs.append(after - before)
    intervals = bootstrap_cis(diffs, confidence, n_resamples, seed)
    return [(*interval, p_value) for interval, p_value in zip(intervals, paired_p_values(diffs, n_resamples, seed))]


def paired_p_values(differences: Sequence[np.ndarray], n_resamples: int = 2000, seed: int = 0) -> list[float]:
    """Two-sided p-value per sample of per-item differences, testing that they are symmetric
    about 0 with the test :func:`paired_test_name` picks (exact sign test, sign-flip permutation
    with ``n_resamples`` seeded ``seed``, or paired t-test). One item's two sign flips tie (p = 1);
    no items give NaN. Each sample gets the p-value it would get alone."""
    from scipy import stats

    p_values = [np.nan if diff.size == 0 else 1.0 for diff in differences]
    permuted = []
    for index, diff in enumerate(differences):
        if diff.size < 2:
            continue
        test = paired_test_name(diff)
        if test == BINOMIAL:
            up, down = int((diff > 0).sum()), int((diff < 0).sum())
            p_values[index] = float(stats.binomtest(up, up + down).pvalue) if up + down else 1.0
        elif test == T_TEST:
            p_values[index] = float(stats.ttest_1samp(diff, 0.0).pvalue)
        else:
            permuted.append(index)
    for chunk, rows in _by_size([differences[index] for index in permuted], n_resamples):
        test = stats.permutation_test(
            (rows,),
            # Plain np.mean: scipy lays out sign-flip resamples the same way for one row or many,
            # so numpy sums each in the order of scipy's one-sample call.
            np.mean,
            permutation_type="samples",
            vectorized=True,
            axis=-1,
            n_resamples=n_resamples,
            alternative="two-sided",
            rng=np.random.default_rng(seed),
        )
        for row, position in enumerate(chunk):
            p_values[permuted[position]] = float(np.atleast_1d(test.pvalue)[row])
    return p_values


def paired_difference(
    before: Sequence[float] | np.ndarray,
    after: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float, float]:
    """:func:`paired_differences` of one pair."""
    return paired_differences([(before, after)], confidence, n_resamples, seed)[0]


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def unpaired_difference(
    first: Sequence[float] | np.ndarray,
    second: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float, float]:
    """Difference of means ``mean(first) - mean(second)`` of two independent samples (different
    items): ``(difference, low, high, p_value)``.

    The interval resamples each sample on its own (percentile bootstrap); the two-sided p-value
    comes from a permutation test of the group labels. A sample of fewer than two values has no
    spread to resample: the interval is then the point itself and p is NaN.
    """
    from scipy import stats

    first = np.asarray(first, dtype=float)
    second = np.asarray(second, dtype=float)
    if first.size == 0 or second.size == 0:
        return (np.nan, np.nan, np.nan, np.nan)
    difference = float(first.mean() - second.mean())
    if first.size < 2 or second.size < 2:
        return (difference, difference, difference, np.nan)
    if np.ptp(np.concatenate([first, second])) == 0:
        return (difference, difference, difference, 1.0)
    rng = np.random.default_rng(seed)
    interval = stats.bootstrap(
        (first, second),
        _mean_difference,
        vectorized=True,
        paired=False,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=rng,
    ).confidence_interval
    test = stats.permutation_test(
        (first, second),
        _mean_difference,
        permutation_type="independent",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=rng,
    )
    return (difference, float(interval.low), float(interval.high), float(test.pvalue))


def mcnemar_exact(before: Sequence[float] | np.ndarray, after: Sequence[float] | np.ndarray) -> tuple[int, int, float]:
    """McNemar's exact test of paired binary outcomes (0/1 per item, same items):
    ``(only_before, only_after, p_value)``. Only discordant pairs carry information; under no
    difference each is equally likely either way, so p is a two-sided binomial test on them
    (1.0 when there are none)."""
    from scipy import stats

    before = np.asarray(before, dtype=float)
    after = np.asarray(after, dtype=float)
    if before.shape != after.shape:
        raise ValueError(f"paired samples differ in length: {before.shape} vs {after.shape}")
    if not np.isin(np.concatenate([before, after]), (0.0, 1.0)).all():
        raise ValueError("McNemar's test needs binary (0/1) outcomes")
    only_before = int(((before == 1) & (after == 0)).sum())
    only_after = int(((before == 0) & (after == 1)).sum())
    discordant = only_before + only_after
    p_value = stats.binomtest(only_after, discordant, 0.5).pvalue if discordant else 1.0
    return only_before, only_after, float(p_value)


CORRECTIONS = ("bh", "holm", "none")


def adjusted_p_values(p_values: Sequence[float] | np.ndarray, correction: str = "bh") -> np.ndarray:
    """The q-values of one family of tests: Benjamini-Hochberg (``bh``, false discovery rate),
    Holm (``holm``, family-wise error rate) or the p-values themselves (``none``). NaN p-values
    (no test: no items) are left out of the family and stay NaN."""
    from scipy import stats

    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; use one of {', '.join(CORRECTIONS)}")
    p_values = np.asarray(p_values, dtype=float)
    q_values = p_values.copy()
    tested = ~np.isnan(p_values)
    if correction == "none" or not tested.any():
        return q_values
    family = p_values[tested]
    if correction == "bh":
        q_values[tested] = stats.false_discovery_control(family, method="bh")
    else:  # Holm's step-down: the k-th smallest p times (m - k + 1), kept monotone, at most 1
        order = np.argsort(family, kind="stable")
        stepped = np.maximum.accumulate(family[order] * (family.size - np.arange(family.size)))
        adjusted = np.empty_like(family)
        adjusted[order] = np.minimum(stepped, 1.0)
        q_values[tested] = adjusted
    return q_values


def bootstrap_statistic(
    samples: Sequence[Sequence[float] | np.ndarray],
    statistic,
    paired: bool,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float, float]:
    """Any statistic of one or more samples with its percentile-bootstrap interval and a
    two-sided p-value: ``(value, low, high, p_value)``.

    ``statistic(*samples, axis=-1)`` is vectorized (scipy's convention). ``paired`` resamples the
    samples' positions together (equal lengths: one row per unit, e.g. per country); otherwise
    each sample is resampled on its own (independent items, e.g. per language). The p-value
    inverts the interval: twice the share of resampled values on the far side of 0, counting the
    observed value among them ((k + 1) / (B + 1)), at most 1; p < 0.05 means about that the 95%
    interval excludes 0. Resamples where the statistic is undefined (NaN) are dropped; none
    defined give NaN.
    """
    from scipy import stats

    samples = [np.asarray(values, dtype=float) for values in samples]
    value = float(statistic(*samples, axis=-1))
    if any(values.size < 2 for values in samples):
        return (value, np.nan, np.nan, np.nan)
    with warnings.catch_warnings():  # a degenerate distribution is handled below, not warned about
        warnings.simplefilter("ignore")
        draws = stats.bootstrap(
            samples,
            statistic,
            vectorized=True,
            paired=paired,
            axis=-1,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            # resamples per call, so that e.g. 122 Belebele languages x 900 items stay in memory
            batch=max(1, MAX_RESAMPLED_VALUES // sum(values.size for values in samples)),
            rng=np.random.default_rng(seed),
        ).bootstrap_distribution
    draws = draws[~np.isnan(draws)]
    if np.isnan(value) or draws.size == 0:
        return (value, np.nan, np.nan, np.nan)
    low, high = np.percentile(draws, [50 * (1 - confidence), 50 * (1 + confidence)])
    far_side = min(int((draws <= 0).sum()), int((draws >= 0).sum()))
    p_value = min(1.0, 2 * (far_side + 1) / (draws.size + 1))
    return (value, float(low), float(high), float(p_value))


def mean_minus_median(reference: np.ndarray, *others: np.ndarray, axis: int = -1) -> np.ndarray:
    """The mean of ``reference`` minus the median of the other samples' means (vectorized, for
    :func:`bootstrap_statistic`): how far one group's mean change lies from the typical group's."""
    means = np.stack([np.mean(sample, axis=axis) for sample in others], axis=0)
    return np.mean(reference, axis=axis) - np.median(means, axis=0)


def spearman_change(before: np.ndarray, after: np.ndarray, reference: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman correlation of ``after`` with ``reference`` minus that of ``before`` (vectorized,
    for :func:`bootstrap_statistic` with ``paired=True``); NaN where a side is constant."""
    return _spearman(after, reference, axis) - _spearman(before, reference, axis)


def _spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    from scipy import stats

    x, y = (np.moveaxis(stats.rankdata(v, axis=axis), axis, -1) for v in (x, y))
    x, y = x - x.mean(axis=-1, keepdims=True), y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(axis=-1) / np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
