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

from globalrep.stats import bootstrap_ci, bootstrap_cis, paired_difference, paired_differences

SHAPES = {  # name: (models, groups, metrics, items)
    "AskReddit demo": (4, 177, 5, 10),
    "TyDiQA paper": (13, 9, 2, 400),
}


def samples(models: int, groups: int, metrics: int, items: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=items).round(2) for _ in range(models * groups * metrics)]


def timed(function) -> tuple[float, list]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per way; the median is reported")
    args = parser.parse_args()
    print(f"# tables benchmark: python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}; "
          f"median of {args.repeats} runs")  # fmt: skip
    for name, (models, groups, metrics, items) in SHAPES.items():
        values = samples(models, groups, metrics, items)
        pairs = list(zip(values, samples(models, groups, metrics, items, seed=1)))
        ways = {
            "bootstrap CIs, all at once": lambda: bootstrap_cis(values),
            "bootstrap CIs, one call per group": lambda: [bootstrap_ci(v) for v in values],
            "paired, all at once": lambda: paired_differences(pairs),
            "paired, one call per group": lambda: [paired_difference(*pair) for pair in pairs],
        }
        runs = {way: [timed(function) for _ in range(args.repeats)] for way, function in ways.items()}
        results = {way: timings[0][1] for way, timings in runs.items()}
        seconds = {way: float(np.median([t for t, _ in timings])) for way, timings in runs.items()}
        for batched, alone in (("bootstrap CIs, all at once", "bootstrap CIs, one call per group"),
                               ("paired, all at once", "paired, one call per group")):  # fmt: skip
            np.testing.assert_array_equal(results[batched], results[alone])
        print(f"\n## {name}: {len(values)} groups of {items} items (results identical both ways)\n")
        print("| way | seconds | time / all at once |\n|---|---:|---:|")
        for way in ways:
            reference = seconds[way.split(",")[0] + ", all at once"]
            print(f"| {way} | {seconds[way]:.2f} | {seconds[way] / reference:.1f}x |")


if __name__ == "__main__":
    main()
