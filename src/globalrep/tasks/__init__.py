"""Task registry.

A task is a module with:

- ``NAME``: its config key, e.g. ``"global_opinions"``;
- ``PROMPT_VERSION``: bump when its prompt or request construction changes (reruns inference);
- ``MODEL_KINDS``: the model kinds it evaluates, e.g. ``("lm",)`` or ``("reward",)``;
- ``AXIS``: the report section it belongs to: ``dialects``, ``languages`` or ``opinions``;
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
- ``resolve_source(options) -> str`` (optional): the local path or hub id ``prepare`` reads, for a
  task whose data is not given as ``options['source']``; raises when it is missing.
- ``EXTRA_TABLES`` (optional): ``{name: function(scores, chains, options) -> DataFrame}``, written as
  ``results/tables/{task}_{name}.csv`` from the same rows as the standard tables. ``figures()``
  finds them read back in ``options["extra_tables"]`` (``{name: DataFrame}``).
- ``EXTRA_TABLE_SUMMARIES`` (optional): ``{name: function(table) -> str}``, the sentence the report
  prints above that extra table (e.g. which differences are significant).
- ``unavailable_figures(out_dir, note) -> list[Path]`` (optional): figures drawn, beside the
  generic notice, when no model could answer the task (e.g. a figure that says it is empty).

- ``DIALECT_TEXT`` (optional): ``{column: "text" | "utterances"}``, the Standard American English
  text of its items that the dialect stage (workflow/rules/dialects.smk) rewrites into each of
  ``config['dialects']``; its items are then the SAE items (group ``sae``) plus each rewrite,
  paired by ``pair_id`` (see globalrep.dialect_pairs). ``DIALECT_PROTECT`` (optional) names a
  column of words never rewritten.

A task with empty ``MODEL_KINDS`` runs no models (``sft_langid``): it needs no ``requests``/``score``,
and its own rules file writes its two tables; the generic figure and report rules do the rest.
"""

from __future__ import annotations

from types import ModuleType

from globalrep.errors import GlobalrepError
from globalrep.tasks import askreddit, belebele, global_opinions, md3_taboo, sft_langid, tydiqa_goldp, where_from
from globalrep.tasks import md3_taboo_transfer, rm_dialect_probe

TASKS: dict[str, ModuleType] = {module.NAME: module for module in (global_opinions, md3_taboo, where_from, askreddit, belebele, tydiqa_goldp, sft_langid, md3_taboo_transfer, rm_dialect_probe)}


def get_task(name: str) -> ModuleType:
    try:
        return TASKS[name]
    except KeyError:
        raise GlobalrepError(
            f"unknown task {name!r} under config key 'tasks'; known tasks: {', '.join(sorted(TASKS))}"
        ) from None
