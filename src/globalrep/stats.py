"""Bootstrap confidence intervals and paired tests over items, seeded so tables are reproducible.

scipy.stats is imported where it is used: it takes about 2 s to import, and every job imports the
task registry, while only scoring jobs compute statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile-bootstrap confidence interval: ``(mean, low, high)``.

    Fewer than two values, or identical values, carry no spread to resample: the interval is
    ``(mean, mean)`` (NaN for no values) instead of scipy's degenerate-data warnings.
    """
    from scipy import stats
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return (np.nan, np.nan, np.nan)
    mean = float(values.mean())
    if values.size < 2 or np.ptp(values) == 0:
        return (mean, mean, mean)
    result = stats.bootstrap(
        (values,),
        _mean,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return (mean, float(result.confidence_interval.low), float(result.confidence_interval.high))


def paired_difference(
    before: Sequence[float] | np.ndarray,
    after: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float, float]:
    """Mean paired change ``after - before`` over items: ``(delta, low, high, p_value)``.

    The interval bootstraps the per-item differences; the two-sided p-value comes from a
    sign-flip permutation test (exact when ``2**n <= n_resamples``).
    """
    from scipy import stats
    before = np.asarray(before, dtype=float)
    after = np.asarray(after, dtype=float)
    if before.shape != after.shape:
        raise ValueError(f"paired samples differ in length: {before.shape} vs {after.shape}")
    diff = after - before
    delta, low, high = bootstrap_ci(diff, confidence, n_resamples, seed)
    if diff.size < 2:
        # scipy needs two observations; one item's two sign flips tie, so the exact p is 1.
        return (delta, low, high, np.nan if diff.size == 0 else 1.0)
    test = stats.permutation_test(
        (diff,),
        _mean,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return (delta, low, high, float(test.pvalue))


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
