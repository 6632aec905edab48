"""Benchmark of the tables' statistics: all groups at once against one scipy call per group.

``globalrep.tables`` computes a bootstrap CI per (model, group, metric) and a paired CI plus a
sign-flip permutation p-value per chain step, group and metric. They resample all groups of one
size in one scipy call (``globalrep.stats.bootstrap_cis`` / ``paired_differences``). The
reference is the same statistics with one scipy call per group (``bootstrap_ci`` /
``paired_difference`` called in a loop). Both must give identical numbers (checked first); the
table gives each way's time and the ratio.

Shapes: (1) the demo's AskReddit (4 models x 177 countries x 5 metrics, 10 questions: many small
groups, where scipy's per-call checks dominate); (2) the paper's TyDiQA (13 models x 9 languages x
2 metrics, 400 questions: few large groups, where the arithmetic dominates).

Then the cost of p-values fine enough for a correction over 122 groups (one Belebele step: 122
groups x 400 items, every group changed, so every group would need its p resolved): 2,000
sign-flip resamples (the tables before q-values), 20,000 (one run: what resampling further costs)
and the test the tables use (``globalrep.stats.paired_p_values``: the exact sign test for 0/1
changes, a paired t-test for others), with the smallest p each reached.

    python bench/tables.py
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import scipy
import scipy.stats  # noqa: F401  imported before timing (globalrep.stats imports it on first use)

from globalrep.stats import bootstrap_ci, bootstrap_cis, paired_difference, paired_differences, paired_p_values

SHAPES = {  # name: (models, groups, metrics, items)
    "AskReddit demo": (4, 177, 5, 10),
    "TyDiQA paper": (13, 9, 2, 400),
}
FAMILY_GROUPS, FAMILY_ITEMS = 122, 400  # one Belebele step


def family_changes(binary: bool, seed: int = 2) -> np.ndarray:
    """Per-item changes of one family, every group shifted: 0/1 outcomes (accuracy), or F1-like
    scores (0, 1 or in between)."""
    rng = np.random.default_rng(seed)
    shape = (FAMILY_GROUPS, FAMILY_ITEMS)
    if binary:
        return (rng.random(shape) < 0.7).astype(float) - (rng.random(shape) < 0.6)
    return np.clip(rng.random(shape) * 1.6 - 0.3, 0, 1) - np.clip(rng.random(shape) * 1.6 - 0.5, 0, 1)


def sign_flip_p(changes: np.ndarray, n_resamples: int) -> np.ndarray:
    """Sign-flip permutation p-values, as many groups per scipy call as 20M resampled values allow."""
    per_call = max(1, 20_000_000 // (n_resamples * changes.shape[1]))
    return np.concatenate([
        scipy.stats.permutation_test((changes[start : start + per_call],), np.mean, permutation_type="samples",
                                     vectorized=True, axis=-1, n_resamples=n_resamples,
                                     rng=np.random.default_rng(0)).pvalue
        for start in range(0, len(changes), per_call)
    ])  # fmt: skip


def samples(models: int, groups: int, metrics: int, items: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=items).round(2) for _ in range(models * groups * metrics)]


def median_timed(function, repeats: int) -> tuple[float, list]:
    """The median of ``repeats`` timed calls, and the first call's result."""
    seconds, results = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        results.append(function())
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)), results[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per way; the median is reported")
    args = parser.parse_args()
    print(f"# tables benchmark: python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}; "
          f"median of {args.repeats} runs")  # fmt: skip
    for name, (models, groups, metrics, items) in SHAPES.items():
        values = samples(models, groups, metrics, items)
        pairs = list(zip(values, samples(models, groups, metrics, items, seed=1)))
        ways = {  # statistic: (all at once, one call per group)
            "bootstrap CIs": (lambda: bootstrap_cis(values), lambda: [bootstrap_ci(v) for v in values]),
            "paired": (lambda: paired_differences(pairs), lambda: [paired_difference(*pair) for pair in pairs]),
        }
        rows = []
        for statistic, (at_once, per_group) in ways.items():
            (batched_seconds, batched), (alone_seconds, alone) = (
                median_timed(way, args.repeats) for way in (at_once, per_group)
            )
            np.testing.assert_array_equal(batched, alone)
            rows += [(f"{statistic}, all at once", batched_seconds, 1.0),
                     (f"{statistic}, one call per group", alone_seconds, alone_seconds / batched_seconds)]  # fmt: skip
        print(f"\n## {name}: {len(values)} groups of {items} items (results identical both ways)\n")
        print("| way | seconds | time / all at once |\n|---|---:|---:|")
        for way, seconds, ratio in rows:
            print(f"| {way} | {seconds:.2f} | {ratio:.1f}x |")
    for binary in (True, False):
        changes = family_changes(binary)
        chosen_seconds, chosen = median_timed(lambda: paired_p_values(list(changes)), args.repeats)
        ways = [
            ("2,000 sign-flip resamples", *median_timed(lambda: sign_flip_p(changes, 2000), args.repeats)),
            ("20,000 sign-flip resamples (one run)", *median_timed(lambda: sign_flip_p(changes, 20_000), 1)),
            ("exact sign test (the tables)" if binary else "paired t-test (the tables)", chosen_seconds, chosen),
        ]
        kind = "0/1 changes" if binary else "F1-like changes"
        print(f"\n## p-values of one family: {FAMILY_GROUPS} groups of {FAMILY_ITEMS} items, {kind}; "
              f"0.05/{FAMILY_GROUPS} = {0.05 / FAMILY_GROUPS:.1e}\n")  # fmt: skip
        print("| way | seconds | time / the tables' test | smallest p |\n|---|---:|---:|---:|")
        for way, seconds, p_values in ways:
            print(f"| {way} | {seconds:.3f} | {seconds / chosen_seconds:.0f}x | {np.min(p_values):.1e} |")


if __name__ == "__main__":
    main()
