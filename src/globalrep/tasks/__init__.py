"""Task registry.

A task is a module with:

- ``NAME``: its config key, e.g. ``"global_opinions"``;
- ``PROMPT_VERSION``: bump when its prompt or request construction changes (reruns inference);
- ``MODEL_KINDS``: the model kinds it evaluates, e.g. ``("lm",)`` or ``("reward",)``;
- ``SCORE_ONLY_OPTIONS`` (optional): option keys that change only scoring, so editing them
  reruns no inference;
- ``prepare(options, source) -> DataFrame``: read the raw source (``source`` is the config's
  local path or hub id) into one tidy table with ``item_id`` (str, unique), ``group`` (str) and
  the task's own fields;
- ``requests(items, options, model_kind) -> list[Request]``: the engine requests for a shard of
  items, for a model of ``model_kind`` (``lm`` or ``reward``; a task may ask each kind differently);
- ``score(items, predictions, options) -> DataFrame``: long per-item scores with columns
  ``model, item_id, group, metric, value`` (extra columns allowed); ``predictions`` holds every
  model's prediction rows with a ``model`` column;
- ``table_scores(scores, options) -> DataFrame`` (optional): the rows the ``{task}.csv`` and
  ``{task}_deltas.csv`` tables are computed from (e.g. only focus countries).
- ``figures(tables, deltas, chains, out_dir, options) -> list[Path]`` (optional): the task's figures.
"""

from __future__ import annotations

from types import ModuleType

from globalrep.errors import GlobalrepError
from globalrep.tasks import global_opinions

TASKS: dict[str, ModuleType] = {module.NAME: module for module in (global_opinions,)}


def get_task(name: str) -> ModuleType:
    try:
        return TASKS[name]
    except KeyError:
        raise GlobalrepError(
            f"unknown task {name!r} under config key 'tasks'; known tasks: {', '.join(sorted(TASKS))}"
        ) from None
