"""Bootstrap confidence intervals and paired tests over items, seeded so tables are reproducible."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


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
