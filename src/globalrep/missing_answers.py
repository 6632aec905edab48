"""Items whose answer is missing, per task and model, for the job logs and the report.

An answer is missing where a published file has no value for the item, or where one of our own
runs got a non-finite score (a NaN or inf log-likelihood, reward or generation score: NaN
weights, a half-precision overflow). Backends flag such an item in the prediction column
``missing_answer`` and say why in ``missing_reason``. Scoring never takes a missing score as an
answer: a choice task scores the item as not correct (the paper's published rows keep its own
rule, see ``globalrep.choices``), a task that measures a value (a reward, a similarity) leaves the
item out. Scoring warns of each model's missing answers per group, and refuses a model whose
answers to a task are all missing: its tables would look real and say nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import pandas as pd
import pyarrow.parquet as pq

from globalrep.errors import GlobalrepError

COLUMN = "missing_answer"
REASON_COLUMN = "missing_reason"

log = logging.getLogger(__name__)


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


def count_by_group(predictions: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Per model and item group: ``model, group, missing, total, reasons`` (the distinct reasons,
    joined), for every model and group with items. ``predictions``: all models' rows, with a
    ``model`` column (shards without ``missing_answer`` have none missing)."""
    frame = predictions[["model", "item_id"]].assign(
        missing=predictions[COLUMN].eq(True) if COLUMN in predictions.columns else False,
        reason=predictions[REASON_COLUMN] if REASON_COLUMN in predictions.columns else None,
    )
    frame = frame.merge(items[["item_id", "group"]], on="item_id", how="left", validate="many_to_one")
    return (
        frame.groupby(["model", "group"], sort=False)
        .agg(
            missing=("missing", "sum"),
            total=("missing", "size"),
            reasons=("reason", lambda reasons: "; ".join(sorted(set(reasons.dropna())))),
        )
        .reset_index()
    )


def check_scorable(task: str, predictions: pd.DataFrame, items: pd.DataFrame) -> None:
    """Warn, per model and group, of the missing answers of ``task``; refuse (GlobalrepError) a
    model of our own runs whose answers are all missing, by name. (Rows of ``backend: published``
    are the paper's: scored by its rules, whatever they lack.)"""
    counts = count_by_group(predictions, items)
    for row in counts[counts["missing"] > 0].itertuples(index=False):
        log.warning(
            "%s / %s: %d of %d answers in group %s are missing (%s); they are scored as missing",
            task, row.model, row.missing, row.total, row.group, row.reasons or "flagged missing",
        )  # fmt: skip
    if "published" in predictions.columns:
        counts = counts[~counts["model"].isin(predictions.loc[predictions["published"].eq(True), "model"])]
    per_model = counts.groupby("model", sort=False).agg(missing=("missing", "sum"), total=("total", "sum"))
    refused = per_model[(per_model["total"] > 0) & (per_model["missing"] == per_model["total"])]
    if len(refused):
        reasons = {
            model: "; ".join(
                sorted({r for text in counts.loc[counts["model"] == model, "reasons"] for r in text.split("; ") if r})
            )
            for model in refused.index
        }
        listing = "; ".join(
            f"model {model!r}: all {row.total} answers missing ({reasons.get(model) or 'flagged missing'})"
            for model, row in refused.iterrows()
        )
        raise GlobalrepError(
            f"task {task}: refused, no tables written: {listing}. A model without a single answer is not scored. "
            "Non-finite scores come from NaN or inf weights or a half-precision overflow: check the model, try "
            "dtype float32 or bfloat16, or remove it from the config's models"
        )


def note(counts: Mapping[str, tuple[int, int]]) -> str:
    """The report's sentence on the missing answers of one task; empty when there are none."""
    if not counts:
        return ""
    listed = "; ".join(f"{model}: {missing} of {total} items" for model, (missing, total) in counts.items())
    return (
        "Missing answers (no value in a published file, or a non-finite score; not correct where choices are "
        f"ranked, else left out): {listed}."
    )


def with_notes(notes: Mapping[str, str], predictions: Mapping[str, Mapping[str, Sequence[str]]]) -> dict[str, str]:
    """``notes`` per task, each followed by its missing-answer sentence (``predictions``: per task
    ``{model: shard files}``)."""
    merged = dict(notes)
    for task, files in predictions.items():
        merged[task] = " ".join(filter(None, [merged.get(task, ""), note(count(files))]))
    return {task: text for task, text in merged.items() if text}
