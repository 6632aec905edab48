"""Benchmark of CFMatch's share of TyDiQA's scoring job, on the full dev set.

The scoring job of ``tydiqa_goldp`` (rule ``score_task`` and the extra tables) scores every
model's answers (exact match, F1, CFMatch) and computes the tables (bootstrap CIs per model,
language and metric; paired changes along the chains and from the base model; CFMatch's blind
spots). On the real TyDiQA-GoldP dev set (5,077 questions, 9 languages) with real answers (the
paper's published generations of the Mistral chain: three models), this times:

  job        the scoring job's work in memory: ``tydiqa_goldp.score`` and the tables
             ``group_table``, ``deltas_table`` (consecutive and from base) and the blind spots,
             without file reading and writing;
  cfmatch    CFMatch's part of it: all models' answers against their gold answers, plus every
             question's first gold answer as the answer (``cfmatch.best_scores``, all at once;
             each distinct text normalised and tokenised once);
  load       reading the classifier from the package (once per job);
  one by one CFMatch one triple at a time (``cfmatch.scores`` on one (reference, candidate,
             question), as ``CFMatcher.get_score`` is called per pair), for the first model only.

The report gives seconds per model and CFMatch's share of the job; each way runs ``--repeats``
times, interleaved, and the median is reported.

    python bench/cfmatch.py                 # ~1 min on 2 cores
    python bench/cfmatch.py --repeats 1
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from globalrep import cfmatch
from globalrep.tables import deltas_table, group_table
from globalrep.tasks import tydiqa_goldp

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CHAIN = {  # our name: the published folder
    "mistral-7b": "{Mistral-7B-v0.1_8bit}",
    "mistral-7b-sft-beta": "{Mistral-SFT-7B_8bit}",
    "zephyr-7b-beta": "{zephyr-7b-beta_8bit}",
}


def predictions(items: pd.DataFrame, outputs: Path) -> pd.DataFrame:
    frames = []
    for model, folder in CHAIN.items():
        path = outputs / folder / "greedy" / "1-shot"
        requests = tydiqa_goldp.requests(items, {"num_shots": 0})
        frame = tydiqa_goldp.read_published(path, items, requests, model)
        frames.append(frame.assign(model=model))
    return pd.concat(frames, ignore_index=True)


def job(items: pd.DataFrame, answers: pd.DataFrame) -> None:
    chains = {"zephyr": list(CHAIN)}
    scores = tydiqa_goldp.score(items, answers, {})
    group_table(scores)
    deltas_table(scores, chains)
    for table in tydiqa_goldp.EXTRA_TABLES.values():
        table(scores, chains, {})


def cfmatch_part(items: pd.DataFrame, answers: pd.DataFrame) -> None:
    merged = answers.merge(items, on="item_id")
    cut = [tydiqa_goldp.extract_answer(text) for text in merged["answer_text"].fillna("")]
    cfmatch.best_scores(cut, [list(g) for g in merged["answers"]], list(merged["question"]))
    golds = [list(g) for g in items["answers"]]
    cfmatch.best_scores([g[0] for g in golds], golds, list(items["question"]))


def one_by_one(items: pd.DataFrame, answers: pd.DataFrame) -> None:
    merged = answers[answers["model"] == next(iter(CHAIN))].merge(items, on="item_id")
    for text, golds, question in zip(merged["answer_text"].fillna(""), merged["answers"], merged["question"]):
        candidate = tydiqa_goldp.extract_answer(text)
        max(cfmatch.scores([gold], [candidate], [question])[0][0] for gold in golds)


def load() -> None:
    cfmatch.load_classifier(resources.files("globalrep").joinpath(cfmatch.CLASSIFIER_DIR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per way; the median is reported")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder (../shared/data)")
    args = parser.parse_args()
    dev, outputs = args.shared / "tydiqa-goldp-v1.1-dev", args.shared / "paper_outputs" / "tydiqa-goldp"
    if not dev.is_dir() or not outputs.is_dir():
        raise SystemExit(f"needs the TyDiQA dev set and the published generations under {args.shared} (--shared)")
    items = tydiqa_goldp.prepare({"num_shots": 0}, str(dev))
    answers = predictions(items, outputs)
    models = answers["model"].nunique()
    triples = int(items["answers"].map(len).sum())
    cfmatch.classifier()  # warm-up: the job's first call loads it (timed apart as "load")
    ways = {"job": job, "cfmatch": cfmatch_part, "load": lambda i, a: load(), "one by one": one_by_one}
    seconds = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, way in ways.items():
            start = time.perf_counter()
            way(items, answers)
            seconds[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    print(
        f"# cfmatch benchmark: python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}; "
        f"median of {args.repeats} interleaved runs\n"
        f"# {len(items)} questions ({triples} gold answers) x {models} models (the Mistral chain's published answers)\n"
    )
    job_seconds = median["job"] + median["load"]  # a job loads the classifier once
    rows = [
        ("scoring job (score + tables, classifier load included)", job_seconds, models),
        ("  of which CFMatch, all at once", median["cfmatch"], models),
        ("  of which loading the classifier", median["load"], models),
        ("CFMatch one triple at a time (first model only)", median["one by one"], 1),
    ]
    print("| way | seconds | seconds per model | share of the job |")
    print("|---|---:|---:|---:|")
    for name, value, per in rows:
        print(f"| {name} | {value:.2f} | {value / per:.2f} | {value / job_seconds:.1%} |")
    ratio = median["one by one"] / (median["cfmatch"] / models)
    print(f"\nCFMatch all at once vs one triple at a time, per model: {ratio:.1f}x faster")
    print(f"CFMatch incl. loading: {(median['cfmatch'] + median['load']) / job_seconds:.1%} of the scoring job")


if __name__ == "__main__":
    main()
