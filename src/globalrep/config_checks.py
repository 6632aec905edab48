"""The checks the Snakefile runs before any job starts (``workflow/rules/common.smk``), and the
config helpers it plans jobs with; plain functions, so they are tested without Snakemake."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from globalrep.errors import GlobalrepError
from globalrep.local_paths import is_local_path
from globalrep.published_files import outputs_dir
from globalrep.tasks import TASKS, get_task

log = logging.getLogger(__name__)


def resolve_source(task_name: str, task_options: Mapping) -> str:
    """The task's source: a hub id as given, or a local path (relative to the working directory)
    that must exist. A task with its own ``resolve_source`` (data not given as ``source``) decides."""
    own = TASKS[task_name].resolve_source if task_name in TASKS else None
    if own is not None:
        return own(dict(task_options))
    source = str(task_options.get("source", ""))
    if not source:
        raise GlobalrepError(f"config key 'tasks.{task_name}.source' is empty: give a hub dataset id or a local file")
    if not is_local_path(source):
        return source
    path = Path(source).expanduser()
    if not path.exists():
        raise GlobalrepError(
            f"dataset file '{source}' does not exist (config key 'tasks.{task_name}.source', "
            f"relative to the working directory {Path.cwd()}): fix the path or use a hub dataset id"
        )
    return str(path)


def source_files(task_name: str, task_options: Mapping) -> list[str]:
    """The local files a task's items are read from (for a folder, the files in it), so that
    editing one reruns prepare; none for a hub dataset."""
    source = resolve_source(task_name, task_options)
    if not is_local_path(source):
        return []
    path = Path(source).expanduser()
    if path.is_dir():
        return sorted(str(p) for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return [source]


def check_models(models: Mapping[str, Mapping], built_paths: Iterable[str] = ()) -> None:
    """Every model whose ``path`` is local must exist, unless the workflow builds it
    (``built_paths``); a ``head: value-head`` reward model needs ``base_model``; a model's backend
    must run models of its ``kind``. Raises one error naming every problem and its config key."""
    from globalrep.engine.backends import backend_info

    built = {os.path.normpath(p) for p in built_paths}
    problems = [
        f"model '{name}': head: value-head needs the causal LM body (config key 'models.{name}.base_model')"
        for name, entry in models.items()
        if entry.get("head") == "value-head" and not entry.get("base_model")
    ]
    for name, entry in models.items():
        kinds = backend_info(entry.get("backend")).model_kinds
        if entry.get("kind", "lm") not in kinds:
            problems.append(
                f"model '{name}': backend {entry.get('backend')} runs models of kind {' or '.join(kinds)}, not "
                f"{entry.get('kind')} (config key 'models.{name}.backend'); use backend hf for it"
            )
    for name, entry in models.items():
        for key in ("path", "base_model"):
            value = entry.get(key)
            if not value or not is_local_path(value) or os.path.normpath(value) in built:
                continue
            if not Path(value).expanduser().exists():
                problems.append(f"model '{name}': {key} '{value}' does not exist (config key 'models.{name}.{key}')")
    if problems:
        raise GlobalrepError(
            f"models are misconfigured (local paths are relative to the working directory {Path.cwd()}; "
            "write ./name for a local folder, `org/name` for a hub id):\n  " + "\n  ".join(problems)
        )


def check_memory_knobs(models: Mapping[str, Mapping], engine: Mapping) -> None:
    """``engine.max_packed_tokens`` must fit each ``hf`` model's inference job: the attention masks
    of one forward (``batch_size`` rows × row² entries in the model's dtype, a row holding up to
    1/8 over the budget; see
    :mod:`globalrep.engine.memory`) within the job's ``mem_mb``. Raises one error naming every
    model it does not fit, the knob and the largest value that fits."""
    from globalrep.engine import memory
    from globalrep.models import inference_resources

    row = engine.get("max_packed_tokens", memory.DEFAULT_MAX_PACKED_TOKENS)
    problems = []
    for name, entry in models.items():
        if entry.get("backend", "hf") != "hf":
            continue
        resources = inference_resources(dict(entry), dict(engine))
        batch = entry.get("batch_size", 8)
        size = memory.entry_bytes(entry.get("dtype", "auto"), on_gpu=resources["gpus"] > 0)
        needed = memory.packed_masks_bytes(row, batch, size)
        available = resources["mem_mb"] * 1e6
        if needed > available:
            problems.append(
                f"model '{name}': {batch} rows (batch_size) × {memory.longest_row(row)}² mask entries × {size} "
                f"bytes = {needed / 1e6:,.0f} MB, over its job's mem_mb {resources['mem_mb']}; the masks alone fit "
                f"max_packed_tokens up to {memory.largest_budget(available, batch, size)}"
            )
    if problems:
        raise GlobalrepError(
            f"config key 'engine.max_packed_tokens' ({row}) is too large for the memory of the inference jobs "
            "(the attention masks of one forward alone; docs/architecture.md, 'What max_packed_tokens costs'):\n  "
            + "\n  ".join(problems)
            + "\nLower engine.max_packed_tokens or the model's batch_size, or raise mem_mb (engine.mem_mb or the "
            "model's own)"
        )


# Inference (or detection) jobs per task and model: a bound that keeps planning quick (Snakemake
# plans every job before running one); more shards than items leave some shards empty.
MAX_SHARDS = 1000


def check_shards(tasks: Mapping[str, Mapping]) -> None:
    """Every task's ``shards`` is a whole number from 1 to :data:`MAX_SHARDS` (JSON schema's
    ``integer`` also lets ``2.0`` through)."""
    for name, options in tasks.items():
        shards = options.get("shards", 1)
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
            raise GlobalrepError(
                f"config key 'tasks.{name}.shards' is {shards!r}: give a whole number of jobs from 1 "
                f"to {MAX_SHARDS} (e.g. {name}: {{shards: 4}}); see config/README.md"
            )


def check_task_sources(tasks: Mapping[str, Mapping]) -> None:
    """Every task's local source must exist (see :func:`resolve_source`)."""
    for name, options in tasks.items():
        resolve_source(name, options)


def check_chains(chains: Mapping[str, Sequence[str]], models: Mapping[str, Mapping]) -> None:
    """Chains may only name configured models."""
    for chain, members in chains.items():
        unknown = [m for m in members if m not in models]
        if unknown:
            raise GlobalrepError(
                f"chain '{chain}' names undefined model(s) {', '.join(map(repr, unknown))} "
                f"(config key 'chains.{chain}'); defined models: {', '.join(models)}"
            )


def task_models(task_name: str, models: Mapping[str, Mapping]) -> tuple[list[str], str]:
    """The configured models a task evaluates, and a note on those it cannot: models whose
    ``kind`` is in its ``MODEL_KINDS``, less ``backend: published`` models without a published
    file for the task (the paper did not publish every output; the sample holds fewer)."""
    kinds = get_task(task_name).model_kinds
    chosen = [name for name, entry in models.items() if entry.get("kind", "lm") in kinds]
    if not chosen:
        raise GlobalrepError(
            f"task '{task_name}' evaluates models of kind {' or '.join(kinds)}, but config key "
            f"'models' has none: add one or remove 'tasks.{task_name}'"
        )
    unpublished = [name for name in chosen if not _has_published(models[name], task_name)]
    if not unpublished:
        return chosen, ""
    log.info("task %s: no published outputs for %s", task_name, ", ".join(unpublished))
    return [name for name in chosen if name not in unpublished], (
        f"No published outputs for {', '.join(unpublished)}: "
        + ("the paper did not publish them, or they are not in paper_repo." if len(unpublished) < len(chosen)
           else "nothing to show; run the models (config/paper.yaml) to compute this task.")
    )  # fmt: skip


def _has_published(entry: Mapping, task_name: str) -> bool:
    """Whether a model can answer the task: always for a model that runs; for ``backend:
    published``, when its file for the task exists."""
    if entry.get("backend", "hf") != "published":
        return True
    path = entry.get("published", {}).get(task_name)
    return bool(path) and Path(path).expanduser().exists()


PAPER_PLACEHOLDERS = ("{paper_repo}", "{paper_outputs}")


def resolve_paper_repo(config: Mapping) -> dict:
    """The config with the paper's repository filled in (config key ``paper_repo``): every
    ``{paper_repo}`` (the clone) and ``{paper_outputs}`` (its ``outputs/`` folder) in a task
    option replaced, and ``published`` files made relative to the working directory."""
    config = plain(config)
    repo = config.get("paper_repo")
    replacements = {"{paper_repo}": str(repo), "{paper_outputs}": str(outputs_dir(repo))} if repo else {}

    def fill(value: object, key: str) -> object:
        if isinstance(value, dict):
            return {k: fill(v, f"{key}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v, f"{key}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, str) or not any(p in value for p in PAPER_PLACEHOLDERS):
            return value
        if not repo:
            raise GlobalrepError(
                f"config key '{key}' refers to the paper's repository ({value!r}) but 'paper_repo' is not "
                "set: give it, e.g. snakemake --config paper_repo=PATH/TO/unintended-impacts-of-alignment"
            )
        for placeholder, path in replacements.items():
            value = value.replace(placeholder, path)
        return value

    config["tasks"] = fill(config.get("tasks", {}), "tasks")
    base = Path(replacements.get("{paper_outputs}", "."))
    for entry in config.get("models", {}).values():
        if entry.get("published"):
            entry["published"] = {task: os.path.normpath(base / path) for task, path in entry["published"].items()}
    return config


def inference_options(task_name: str, task_options: Mapping) -> dict:
    """The task options that can change a task's items or requests: all but ``shards`` and the
    task's ``SCORE_ONLY_OPTIONS`` (e.g. which countries a table reports), so that changing
    those reruns scoring, not inference."""
    score_only = set(get_task(task_name).score_only_options) | {"shards"}
    return {k: v for k, v in task_options.items() if k not in score_only}


def config_error_message(error: Exception) -> str:
    """A one-paragraph description of a JSON-schema validation error that names the config key."""
    path = ".".join(str(part) for part in getattr(error, "absolute_path", ()))
    where = f"config key '{path}'" if path else "the config's top level"
    if getattr(error, "validator", None) == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        keys = ", ".join(repr(f"{path}.{k}" if path else k) for k in unknown)
        hint = f" (allowed here: {', '.join(allowed)})" if allowed else ""
        return f"unknown config key {keys}{hint}; see config/README.md"
    return f"invalid value for {where}: {getattr(error, 'message', error)}; see config/README.md"


def task_chains(chains: Mapping[str, Sequence[str]], models: Sequence[str]) -> dict[str, list[str]]:
    """Each chain restricted to the models a task evaluates; chains left with < 2 models drop out."""
    kept = {name: [m for m in members if m in models] for name, members in chains.items()}
    return {name: members for name, members in kept.items() if len(members) >= 2}


def plain(value: object) -> object:
    """Snakemake's config may hold its own mapping types; the report gets plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
