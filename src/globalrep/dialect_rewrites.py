"""A task's items rewritten into Multi-VALUE dialects (the workflow's rewrite_dialects step):
each text column rewritten by a :class:`~globalrep.multivalue_adapter.DialectRewriter`, with
the rules that fired in each item."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence

import pandas as pd

from globalrep.errors import GlobalrepError
from globalrep.multivalue_adapter import DISABLED_FEATURES, DialectRewriter

log = logging.getLogger(__name__)

# Bump when rewriting changes (rules switched off, protection, line handling): reruns the rewrites.
REWRITE_VERSION = "1"


def rewrite_text(rewriter: DialectRewriter, text: str, key: str, protect: Sequence[str] = ()) -> tuple[str, set[str]]:
    """One text rewritten: ``(text, rules that fired)``."""
    result = rewriter.rewrite(text, key, protect)
    return result.text, set(result.rules)


def rewrite_utterances(
    rewriter: DialectRewriter, utterances: Sequence[Sequence[str]], key: str, protect: Sequence[str] = ()
) -> tuple[list[list[str]], set[str]]:
    """A dialogue as ``(speaker, text)`` lines: each utterance rewritten on its own (seeded by
    ``key`` and its line number), the speakers kept as they are."""
    lines, rules = [], set()
    for number, (speaker, text) in enumerate(utterances):
        result = rewriter.rewrite(str(text), f"{key}:{number}", protect)
        lines.append([str(speaker), result.text])
        rules.update(result.rules)
    return lines, rules


# How a task's text column is laid out (a task's DIALECT_TEXT names one per column).
TEXT_KINDS = {"text": rewrite_text, "utterances": rewrite_utterances}


def rewrite_items(
    items: pd.DataFrame,
    rewriter: DialectRewriter,
    columns: Mapping[str, str],
    protect_column: str | None = None,
) -> pd.DataFrame:
    """``items`` with each of ``columns`` rewritten (``{column: kind}``, a kind of
    :data:`TEXT_KINDS`), plus ``dialect_rules`` (the rules that fired in the item) and
    ``rewrite_failed``. Words in ``protect_column`` (a string or a list) are never rewritten. An
    item whose rewrite raises keeps its SAE text and is counted, never dropped."""
    unknown = {kind for kind in columns.values()} - set(TEXT_KINDS)
    if unknown:
        raise GlobalrepError(f"unknown dialect text kind(s) {sorted(unknown)}; known: {', '.join(TEXT_KINDS)}")
    texts = {column: [] for column in columns}
    all_rules, failed = [], []
    for row in items.itertuples(index=False):
        protect = _protect_words(getattr(row, protect_column)) if protect_column else ()
        try:
            results = {
                column: TEXT_KINDS[kind](rewriter, getattr(row, column), f"{row.item_id}:{column}", protect)
                for column, kind in columns.items()
            }
        except Exception as error:  # a Multi-VALUE bug on odd text: keep the SAE text
            log.warning("%s: rewriting item %s failed (%s: %s); it keeps its SAE text",
                        rewriter.code, row.item_id, type(error).__name__, error)  # fmt: skip
            results = None
        failed.append(results is None)
        all_rules.append(sorted(set().union(*(rules for _, rules in results.values()))) if results else [])
        for column in columns:
            texts[column].append(results[column][0] if results else getattr(row, column))
    return items.assign(**texts, dialect_rules=all_rules, rewrite_failed=failed)


def _protect_words(value) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value) if value is not None else ()


def rewrite_task_items(
    task_name: str,
    dialects: Sequence[str],
    seed: int,
    sae_path: str | os.PathLike,
    nltk_data: str | os.PathLike | None,
    out_paths: Sequence[str | os.PathLike],
) -> None:
    """The workflow step: a task's SAE items (``{task}@sae.parquet``) rewritten into each of
    ``dialects`` (one file each, same ``item_id``s, with the rules that fired). One process for
    all dialects: imports, spaCy and WordNet load once."""
    from globalrep.atomic import write_parquet_atomic
    from globalrep.intermediates import read_parquet_output
    from globalrep.tasks import get_task

    task = get_task(task_name)
    items = read_parquet_output(sae_path)
    log.info("Multi-VALUE features %s are off (see DISABLED_FEATURES)", ", ".join(map(str, DISABLED_FEATURES)))
    for dialect, out_path in zip(dialects, out_paths, strict=True):
        rewriter = DialectRewriter(dialect, seed, nltk_data)
        start = time.perf_counter()
        rewritten = rewrite_items(items, rewriter, task.dialect_text, task.dialect_protect)
        write_parquet_atomic(rewritten, out_path)
        log.info(
            "%s -> %s: %d items in %.1f s; rules fired in %d, %d failed (kept their SAE text)",
            task_name, dialect, len(items), time.perf_counter() - start,
            int((rewritten["dialect_rules"].map(len) > 0).sum()), int(rewritten["rewrite_failed"].sum()),
        )  # fmt: skip
