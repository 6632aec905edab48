"""The ``published`` backend: the paper's per-example outputs, converted to our predictions.

The paper's repository (SALT-NLP/unintended-impacts-of-alignment) publishes, per model, what
each model answered (``outputs/``). A model entry with ``backend: published`` names its files in
``published: {task: path}``; this backend reads the file of the task at hand and writes the same
columns the ``hf`` backend would, so scoring, tables, figures and the report run unchanged. Rows
it writes carry ``published = True``, for the few scores that need to know (see below). Each
task owns the conversion of its files (its ``read_published`` hook); the engine imports no task.

What the paper published, and how it maps:

- ``md3-game/*.csv``: ``generated_answer`` → ``generated_text``; ``correct_answer_prob`` and
  ``distractor_probs`` → ``choice_logprob`` (log p, one "token" each) in our choice order.
- ``tydiqa-goldp/{dir}/greedy/1-shot/{language}.json`` (``{question_id: generation}``; the path is
  the ``1-shot`` folder) → ``answer_text``.
- ``globalopinionsqa/*.csv``: ``probs`` → ``choice_logprob = log p``, ``choice_ntokens = 1``; the
  per-country similarity columns (−1: not asked) → ``published_similarity`` in the item's
  country order, which scoring uses only when the items lack the countries' distributions.
- ``ask-reddit-perplexity-testing/*.csv`` (mean per-token NLL per country) → ``country_logprob
  = −NLL``, ``country_ntokens = 1`` (the sum was not published); the reward model's
  ``ask-reddit-reward-testing/*.csv`` → ``reply_reward``.
- ``reward-testing/where_from_*.csv`` → ``reply_reward``.

A published file is a real file (``globalrep.published_files``): a value missing for one item
makes that item's answer missing; it is flagged in the column ``missing_answer`` (its reason in
``missing_reason``), counted in the log and the report, and scored as the paper scored it: not
correct, or, where the paper ranked choices, by its own argmax rule (``choices.best_choice``). A structural problem still
stops the run, naming the file and the row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from globalrep.engine.backends import Shard
from globalrep.engine.requests import Request
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec

# A task's hook: (path, items, requests, model) -> one row per item (see globalrep.engine.answers).
ReadPublished = Callable[[Path, pd.DataFrame, Sequence[Request], ModelSpec], pd.DataFrame]

log = logging.getLogger(__name__)


class PublishedBackend:
    """The ``published`` backend: answers a shard's requests from the model's published file for
    the shard's task; nothing to load."""

    def __init__(self, spec: ModelSpec, options: dict, progress: bool = False):
        self.spec = spec

    def answer(self, requests: Sequence[Request], shard: Shard | None = None) -> pd.DataFrame:
        if shard is None:
            raise GlobalrepError(
                f"model {self.spec.name!r} (backend published) answers a task's shard: pass shard=Shard(task, items)"
            )
        return answer(shard.task, self.spec, shard.items, requests, shard.read_published)

    def close(self) -> None:
        pass


def answer(
    task_name: str,
    model: ModelSpec,
    items: pd.DataFrame,
    requests: Sequence[Request],
    read_published: ReadPublished | None,
) -> pd.DataFrame:
    """One row per item of ``items`` from ``model``'s published file for ``task_name``, read by the
    task's hook ``read_published`` (None: the paper published nothing for the task)."""
    path = model.published.get(task_name)
    if not path:
        raise GlobalrepError(
            f"model {model.name!r} has no published outputs for task {task_name!r} "
            f"(config key 'models.{model.name}.published.{task_name}')"
        )
    if read_published is None:
        raise GlobalrepError(
            f"the paper published no per-example outputs for task {task_name!r} (the task has no read_published hook)"
        )
    if not Path(path).exists():
        raise GlobalrepError(f"model {model.name!r}: published file '{path}' for task {task_name!r} does not exist")
    log.info("%s / %s: reading the published outputs in %s", task_name, model.name, path)
    answers = read_published(Path(path), items, requests, model)
    absent = set(items["item_id"]) - set(answers.get("item_id", ()))
    if absent:
        raise GlobalrepError(
            f"{path}: no published answer for {len(absent)} of {len(items)} items of task {task_name!r} "
            f"(e.g. {sorted(absent)[0]}); the task's items must be the ones the paper ran"
        )
    answers = answers[answers["item_id"].isin(set(items["item_id"]))].reset_index(drop=True)
    n_missing = int(answers["missing_answer"].sum())
    if n_missing:
        log.warning(
            "%s / %s: %d of %d items have a missing value in %s; they are scored as missing (not correct)",
            task_name, model.name, n_missing, len(answers), path,
        )  # fmt: skip
    reason = f"no value in the published file {path}"
    return answers.assign(
        published=True, missing_reason=[reason if missing else None for missing in answers["missing_answer"]]
    )
