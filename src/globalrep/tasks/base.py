"""The task protocol: what a task module provides, and the helpers every task shares.

A task is a module registered in :mod:`globalrep.tasks`. :class:`Task` reads it once, checks that
it has the required parts, and fills the optional hooks with their defaults, so callers use
``task.figures`` or ``task.extra_tables`` without probing the module.

Required, every task:

- ``NAME``: its config key, e.g. ``"global_opinions"``;
- ``PROMPT_VERSION``: bump when its prompt or request construction changes (reruns inference);
- ``MODEL_KINDS``: the model kinds it evaluates, e.g. ``("lm",)`` or ``("reward",)``; empty for a
  task that runs no models, which then declares ``OWN_STAGE`` (below);
- ``AXIS``: the report section it belongs to: ``dialects``, ``languages`` or ``opinions``;
- ``OPTIONS_SCHEMA``: the JSON-schema block of ``tasks.<NAME>`` (with the options' defaults); the
  config schema is assembled from these (:mod:`globalrep.config_schema`).

Required, tasks that run models:

- ``prepare(options, source) -> DataFrame``: the raw source (the config's local path or hub id)
  as one tidy table with ``item_id`` (str, unique), ``group`` (str) and the task's own fields;
- ``requests(items, options, model_kind) -> list[Request]``: the engine requests for a shard of
  items, for a model of ``model_kind`` (``lm`` or ``reward``);
- ``score(items, predictions, options) -> DataFrame``: long per-item scores ``model, item_id,
  group, metric, value`` (extra columns allowed); ``predictions`` holds every model's rows with a
  ``model`` column.

Required, tasks that run no models (empty ``MODEL_KINDS``):

- ``OWN_STAGE``: an :class:`OwnStage`, what runs in place of prepare → infer → score (for
  ``sft_langid``, language detection: ``workflow/rules/langid.smk``).

Optional (default in brackets):

- ``SCORE_ONLY_OPTIONS`` [none]: option keys that change only scoring, so editing them reruns no
  inference;
- ``table_scores(scores, options) -> DataFrame`` [all scores]: the rows the ``{task}.csv`` and
  ``{task}_deltas.csv`` tables are computed from (e.g. only focus countries);
- ``figures(table, deltas, context, options) -> list[Path]`` [none]: the task's figures, drawn
  into ``context.out_dir`` (a :class:`FigureContext`: where, the chains, each model's stage and
  the extra tables read back);
- ``EXTRA_TABLES`` [none]: ``{name: function(rows, chains, options) -> DataFrame}``, written as
  ``results/tables/{task}_{name}.csv`` from the same rows as the standard tables; ``figures()``
  finds them read back in ``context.extra_tables`` (``{name: DataFrame}``);
- ``resolve_source(options) -> str`` [``options['source']``]: the local path or hub id
  ``prepare`` reads, for a task whose data is not given as ``source``;
- ``read_published(path, items, requests, model) -> DataFrame`` [none]: the paper's published
  outputs for the task as prediction rows (the ``published`` backend calls it);
- ``EXTRA_TABLE_SUMMARIES`` [none]: ``{name: function(table) -> str}``, the sentence the report
  prints above an extra table;
- ``unavailable_figures(out_dir, note) -> list[Path]`` [none]: figures a task draws, besides the
  generic notice, when no model could answer it;
- ``DIALECT_TEXT`` [none]: ``{column: "text" | "utterances"}``, the Standard American English
  text the dialect stage rewrites into each of ``config['dialects']`` (see
  :mod:`globalrep.dialect_pairs`); ``DIALECT_PROTECT`` [none] names a column of words never
  rewritten.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pandas as pd
import yaml

from globalrep.errors import GlobalrepError

# The axes, in the report's order: {axis: (section title, what the axis asks)}.
AXES = {
    "dialects": ("English dialects", "Do models serve speakers of different English dialects equally well?"),
    "languages": ("Languages", "How well do models work across languages, and how English is their fine-tuning data?"),
    "opinions": ("Country opinions", "Whose opinions and which countries do models and reward models favour?"),
}
MODEL_HOOKS = ("prepare", "requests", "score")


@dataclass(frozen=True)
class OwnStage:
    """The stage of a task that runs no models: one job per (unit, shard) runs ``run_shard``, then
    one job turns all shards into the task's scores and its two tables (sft_langid: a unit is a
    dataset, a shard job detects the languages of its messages)."""

    units: Callable[[Mapping], list[str]]  # options -> the units' names
    check_sources: Callable[[Mapping], None]  # options -> GlobalrepError naming a missing local source
    source_files: Callable[[Mapping, str], list[str]]  # (options, unit) -> its local files (editing one reruns it)
    fingerprint: Callable[[Mapping, str], str]  # (options, unit) -> what determines its shards
    run_shard: Callable[..., None]  # (unit, options, n_shards, shard, out_path)
    write_tables: Callable[..., None]  # ({unit: shard paths}, scores_out, table_out, deltas_out)


def _all_scores(scores: pd.DataFrame, options: Mapping) -> pd.DataFrame:
    return scores


@dataclass(frozen=True)
class FigureContext:
    """What a task's ``figures()`` knows besides its tables and options: the folder to draw into,
    the chains (restricted to the task's models), each model's alignment stage (for colours) and
    the task's extra tables read back (``{name: DataFrame}``)."""

    out_dir: Path
    chains: Mapping[str, list[str]] = field(default_factory=dict)
    models_stage: Mapping[str, str] = field(default_factory=dict)
    extra_tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """A registered task module, checked, with every optional hook filled in."""

    module: ModuleType = field(repr=False)
    name: str
    prompt_version: str
    model_kinds: tuple[str, ...]
    axis: str
    options_schema: Mapping
    score_only_options: tuple[str, ...] = ()
    table_scores: Callable = _all_scores
    figures: Callable | None = None
    extra_tables: Mapping[str, Callable] = field(default_factory=dict)
    resolve_source: Callable | None = None
    read_published: Callable | None = None
    extra_table_summaries: Mapping[str, Callable] = field(default_factory=dict)
    unavailable_figures: Callable | None = None
    dialect_text: Mapping[str, str] = field(default_factory=dict)
    dialect_protect: str | None = None
    own_stage: OwnStage | None = None

    @classmethod
    def from_module(cls, module: ModuleType) -> Task:
        where = f"task module {module.__name__}"
        missing = [
            part
            for part in ("NAME", "PROMPT_VERSION", "MODEL_KINDS", "AXIS", "OPTIONS_SCHEMA")
            if not hasattr(module, part)
        ]
        if getattr(module, "MODEL_KINDS", ()):
            missing += [hook for hook in MODEL_HOOKS if not callable(getattr(module, hook, None))]
        elif not isinstance(getattr(module, "OWN_STAGE", None), OwnStage):
            missing.append("OWN_STAGE (an OwnStage: a task that runs no models needs one)")
        if missing:
            raise GlobalrepError(f"{where} lacks {', '.join(missing)} (see globalrep.tasks.base)")
        if module.AXIS not in AXES:
            raise GlobalrepError(f"{where}: AXIS {module.AXIS!r} is not one of {', '.join(AXES)}")
        optional = {
            "score_only_options": tuple(getattr(module, "SCORE_ONLY_OPTIONS", ())),
            "table_scores": getattr(module, "table_scores", _all_scores),
            "figures": getattr(module, "figures", None),
            "extra_tables": dict(getattr(module, "EXTRA_TABLES", {})),
            "resolve_source": getattr(module, "resolve_source", None),
            "read_published": getattr(module, "read_published", None),
            "extra_table_summaries": dict(getattr(module, "EXTRA_TABLE_SUMMARIES", {})),
            "unavailable_figures": getattr(module, "unavailable_figures", None),
            "dialect_text": dict(getattr(module, "DIALECT_TEXT", {})),
            "dialect_protect": getattr(module, "DIALECT_PROTECT", None),
            "own_stage": getattr(module, "OWN_STAGE", None),
        }
        return cls(
            module=module,
            name=module.NAME,
            prompt_version=str(module.PROMPT_VERSION),
            model_kinds=tuple(module.MODEL_KINDS),
            axis=module.AXIS,
            options_schema=module.OPTIONS_SCHEMA,
            **optional,
        )

    @property
    def runs_models(self) -> bool:
        return bool(self.model_kinds)

    @property
    def description(self) -> str:
        """The module's docstring: what the task measures and how (the report's method text)."""
        return self.module.__doc__ or ""

    def prepare(self, options: Mapping, source: str | None = None) -> pd.DataFrame:
        return self.module.prepare(with_defaults(self.options_schema, options), source)

    def requests(self, items: pd.DataFrame, options: Mapping, model_kind: str = "lm") -> list:
        return self.module.requests(items, with_defaults(self.options_schema, options), model_kind)

    def score(self, items: pd.DataFrame, predictions: pd.DataFrame, options: Mapping) -> pd.DataFrame:
        return self.module.score(items, predictions, with_defaults(self.options_schema, options))


def load_options_schema(module_file: str | os.PathLike) -> dict:
    """The options block of the task module ``module_file``: ``{module}.schema.yaml`` beside it,
    the one place the task's options and their defaults are stated."""
    path = Path(module_file).with_suffix(".schema.yaml")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise GlobalrepError(f"task options schema {path} cannot be read: {error}") from None


def option_defaults(schema: Mapping) -> dict:
    """``{option: default}`` of a task's options block (shared ``$defs`` such as ``languages``
    are resolved from the top-level schema by the workflow; their defaults are not here)."""
    return {key: spec["default"] for key, spec in schema.get("properties", {}).items() if "default" in spec}


def with_defaults(schema: Mapping, options: Mapping) -> dict:
    """``options`` with the schema's default filled in for every option left out (the workflow's
    validation fills them too; this serves library calls with partial options)."""
    return {**option_defaults(schema), **options}


# ------------------------------------------------------------------------------ shared helpers


def check_known_items(task_name: str, items: pd.DataFrame, predictions: pd.DataFrame, what: str = "items") -> None:
    """Predictions may only name prepared items (``what`` names them in the message): others come
    from an older prepare step."""
    unknown = set(predictions["item_id"]) - set(items["item_id"])
    if unknown:
        raise GlobalrepError(
            f"{task_name}: predictions for {len(unknown)} items that are not in the prepared {what} "
            f"(e.g. {sorted(unknown)[0]}); rerun inference on the current prepared data"
        )
