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

    python bench/tables.py
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import scipy
import scipy.stats  # noqa: F401  imported before timing (globalrep.stats imports it on first use)

from globalrep.stats import bootstrap_ci, bootstrap_cis, paired_difference, paired_differences

SHAPES = {  # name: (models, groups, metrics, items)
    "AskReddit demo": (4, 177, 5, 10),
    "TyDiQA paper": (13, 9, 2, 400),
}


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
            (batched_seconds, batched), (alone_seconds, alone) = (median_timed(way, args.repeats) for way in (at_once, per_group))
            np.testing.assert_array_equal(batched, alone)
            rows += [(f"{statistic}, all at once", batched_seconds, 1.0),
                     (f"{statistic}, one call per group", alone_seconds, alone_seconds / batched_seconds)]  # fmt: skip
        print(f"\n## {name}: {len(values)} groups of {items} items (results identical both ways)\n")
        print("| way | seconds | time / all at once |\n|---|---:|---:|")
        for way, seconds, ratio in rows:
            print(f"| {way} | {seconds:.2f} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
