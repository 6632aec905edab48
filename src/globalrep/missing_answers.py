"""Items whose answer is missing (a published file without a value for them), per task and model,
for the report. Backends flag them in the prediction column ``missing_answer``; they are scored
as not correct, as the paper scored them."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pyarrow.parquet as pq

COLUMN = "missing_answer"


def count(predictions: Mapping[str, Sequence[str | os.PathLike]]) -> dict[str, tuple[int, int]]:
    """``{model: (missing items, items)}`` over each model's shard files, for the models with any."""
    counts = {}
    for model, paths in predictions.items():
        missing = total = 0
        for path in paths:
            shard = pq.read_table(path, columns=[c for c in (COLUMN,) if c in pq.read_schema(path).names])
            total += shard.num_rows
            missing += sum(shard.column(COLUMN).to_pylist()) if shard.num_columns else 0
        if missing:
            counts[model] = (missing, total)
    return counts


def note(counts: Mapping[str, tuple[int, int]]) -> str:
    """The report's sentence on the missing answers of one task; empty when there are none."""
    if not counts:
        return ""
    listed = "; ".join(f"{model}: {missing} of {total} items" for model, (missing, total) in counts.items())
    return f"Answers missing from the published files, scored as not correct: {listed}."


def with_notes(notes: Mapping[str, str], predictions: Mapping[str, Mapping[str, Sequence[str]]]) -> dict[str, str]:
    """``notes`` per task, each followed by its missing-answer sentence (``predictions``: per task
    ``{model: shard files}``)."""
    merged = dict(notes)
    for task, files in predictions.items():
        merged[task] = " ".join(filter(None, [merged.get(task, ""), note(count(files))]))
    return {task: text for task, text in merged.items() if text}
