"""The workflow's stage steps, one plain function each.

``workflow/scripts/*.py`` are thin adapters: they read what Snakemake hands them and call one
function here. Every function writes its outputs atomically (temporary file, then rename), logs
what it did, and raises :class:`~globalrep.errors.GlobalrepError` with a message that says what
to do.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

import pandas as pd

from globalrep import figure_manifest, missing_answers
from globalrep.atomic import atomic_path, write_csv_atomic, write_parquet_atomic
from globalrep.config_checks import plain, resolve_source, task_chains
from globalrep.errors import GlobalrepError
from globalrep.intermediates import delete_damaged, load_parquet, read_parquet_output, read_table_output
from globalrep.models import ModelSpec
from globalrep.provenance import items_digest
from globalrep.sharding import shard_items
from globalrep.tasks import get_task
from globalrep.tasks.base import FigureContext

log = logging.getLogger(__name__)

# Keys of config['engine'] that size the Snakemake job rather than configure the engine.
JOB_RESOURCE_KEYS = ("threads", "gpus", "mem_mb", "runtime")

# Packages whose versions the report records.
VERSIONED_PACKAGES = (
    "globalrep", "snakemake", "torch", "transformers", "tokenizers", "datasets",
    "pandas", "numpy", "pyarrow", "scipy", "matplotlib",
)  # fmt: skip


def build_demo(out_dir: str | os.PathLike, text_files: Sequence[str | os.PathLike] = ()) -> None:
    """Build the demo's tiny local models under ``out_dir``; ``text_files`` (the demo data) join
    the tokenizer's training text."""
    from globalrep.demo import build_demo_models

    texts = [Path(f).read_text(encoding="utf-8", errors="replace") for f in text_files]
    start = time.perf_counter()
    built = build_demo_models(out_dir, texts)
    for name, path in built.items():
        log.info("built %s in %s", name, path)
    log.info("built %d demo models in %.1f s", len(built), time.perf_counter() - start)


def prepare_task(task_name: str, task_options: Mapping, out_path: str | os.PathLike) -> None:
    """Read the task's raw source into one tidy table of items (``item_id``, ``group``, ...)."""
    task = get_task(task_name)
    source = resolve_source(task_name, task_options)
    log.info("preparing task %s from %s", task_name, source)
    items = task.prepare(dict(task_options), source)
    _check_items(task_name, items)
    write_parquet_atomic(items, out_path, {"kind": "prepared", "task": task_name})
    log.info("wrote %d items in %d groups to %s", len(items), items["group"].nunique(), out_path)


def infer_shard(
    task_name: str,
    task_options: Mapping,
    model: ModelSpec,
    prepared_path: str | os.PathLike,
    n_shards: int,
    shard: int,
    engine_options: Mapping,
    out_path: str | os.PathLike,
    threads: int | None = None,
    fingerprint: str = "",
) -> None:
    """Answer one shard of a task's items with one model; one row per item. The shard records
    what made it (see :func:`shard_made_by`; ``fingerprint``: the model's inference fingerprint)."""
    from globalrep import engine
    from globalrep.models import ENGINE_RESULTS_VERSION

    task = get_task(task_name)
    items = shard_items(read_parquet_output(prepared_path), n_shards, shard)
    log.info("%s / %s: shard %d of %d holds %d items", task_name, model.name, shard, n_shards, len(items))
    made_by = {
        **shard_made_by(task_name, model.name, fingerprint, shard, n_shards, items["item_id"]),
        "prompt_version": task.prompt_version,
        "engine_version": ENGINE_RESULTS_VERSION,
    }
    if items.empty:
        write_parquet_atomic(pd.DataFrame({"item_id": pd.Series([], dtype=str)}), out_path, made_by, [prepared_path])
        return
    requests = task.requests(items, dict(task_options), model.kind)
    options = {k: v for k, v in engine_options.items() if k not in JOB_RESOURCE_KEYS}
    if threads:
        options["threads"] = threads  # the job's Snakemake threads; the backend keeps to them
    start = time.perf_counter()
    with engine.open_backend(model, options, progress=True) as backend:
        shard_of_task = engine.Shard(task_name, items, task.read_published)
        answers = backend.answer(requests, shard_of_task)
    elapsed = max(time.perf_counter() - start, 1e-9)
    _check_shard_ids(answers, items["item_id"], f"model {model.name}'s answers")
    write_parquet_atomic(answers, out_path, made_by, [prepared_path])
    log.info(
        "answered %d items (%d requests) in %.1f s, model loading included: %.2f items/s",
        len(items), len(requests), elapsed, len(items) / elapsed,
    )  # fmt: skip


def score_task(
    task_name: str,
    task_options: Mapping,
    prepared_path: str | os.PathLike,
    predictions: Mapping[str, Sequence[str | os.PathLike]],
    chains: Mapping[str, Sequence[str]],
    scores_out: str | os.PathLike,
    table_out: str | os.PathLike,
    deltas_out: str | os.PathLike,
    correction: str = "bh",
    fingerprints: Mapping[str, str] | None = None,
) -> None:
    """Score every model's predictions; write per-item scores and the two standard tables (the
        deltas' q-values by ``correction``, config key ``stats.correction``), each recording the
        digests of what it was computed from.

        ``predictions`` maps each model to its shard files in shard order, ``fingerprints`` each
        model to its inference fingerprint (the workflow's; none outside it, as shards written without
    one record ""). A shard that cannot be read, that was made by another
        model, config or shard layout, or that does not hold exactly its items, is deleted and
        reported: rerunning Snakemake recomputes exactly the missing shards.
    """
    from globalrep import tables

    task = get_task(task_name)
    options = dict(task_options)
    items = read_parquet_output(prepared_path)
    frame = load_predictions(task_name, items, predictions, fingerprints or {})
    missing_answers.check_scorable(task_name, frame, items)
    scores = task.score(items, frame, options)
    shards = [path for paths in predictions.values() for path in paths]
    write_parquet_atomic(scores, scores_out, {"kind": "scores", "task": task_name}, [prepared_path, *shards])
    rows = task.table_scores(scores, options)
    chains = task_chains(chains, list(predictions))
    made_by = {"kind": "table", "task": task_name}
    write_csv_atomic(tables.group_table(rows), table_out, made_by, [scores_out])
    write_csv_atomic(tables.deltas_table(rows, chains, correction=correction), deltas_out, made_by, [scores_out])
    log.info("scored %d models on %d items: %d score rows", len(predictions), len(items), len(scores))


def empty_tables(table_out: str | os.PathLike, deltas_out: str | os.PathLike) -> None:
    """The two standard tables of a task that no model could answer: headers only."""
    from globalrep.tables import DELTA_COLUMNS, GROUP_COLUMNS

    write_csv_atomic(pd.DataFrame(columns=GROUP_COLUMNS), table_out)
    write_csv_atomic(pd.DataFrame(columns=DELTA_COLUMNS), deltas_out)


def extra_table_names(task_name: str) -> list[str]:
    """The names of a task's ``EXTRA_TABLES`` (``results/tables/{task}_{name}.csv``)."""
    return list(get_task(task_name).extra_tables)


def extra_table(
    task_name: str,
    task_options: Mapping,
    scores_path: str | os.PathLike,
    chains: Mapping[str, Sequence[str]],
    table_name: str,
    out_path: str | os.PathLike,
    correction: str = "bh",
) -> None:
    """Write one of the task's ``EXTRA_TABLES`` from its per-item scores (the rows the standard
    tables use); ``chains`` are the task's chains, as for :func:`score_task`. A table with a
    ``p_value`` column gets its ``q_value`` here, by ``correction``, within each family."""
    from globalrep.tables import with_q_values

    task = get_task(task_name)
    options = dict(task_options)
    rows = task.table_scores(read_parquet_output(scores_path, {"kind": "scores", "task": task_name}), options)
    chains = {name: list(members) for name, members in chains.items()}
    table = task.extra_tables[table_name](rows, chains, options)
    if "p_value" in table.columns:
        table = with_q_values(table, correction)
    write_csv_atomic(table, out_path, {"kind": "table", "task": task_name}, [scores_path])
    log.info("wrote %s table of task %s: %d rows to %s", table_name, task_name, len(table), out_path)


def task_figures(
    task_name: str,
    task_options: Mapping,
    table_path: str | os.PathLike,
    deltas_path: str | os.PathLike,
    chains: Mapping[str, Sequence[str]],
    models_stage: Mapping[str, str],
    out_dir: str | os.PathLike,
    unavailable: str = "",
    extra_tables: Sequence[str | os.PathLike] = (),
) -> list[Path]:
    """Draw the task's figures (PDF + PNG) into ``out_dir``, which appears whole or not at all,
    listing them in its ``figures.json`` (see :mod:`globalrep.figure_manifest`).

        The task's ``figures()`` gets its options and a :class:`~globalrep.tasks.base.FigureContext`
        with ``chains``, ``models_stage`` ({model: stage}) for colours and the extra tables read from
        ``extra_tables`` (the task's ``{task}_{name}.csv`` files). A task with no model to show (``unavailable`` says why) gets one
        figure saying so, and those of its ``unavailable_figures()``, if it has one.
    """
    task = get_task(task_name)
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as staging:
        staging.mkdir()
        if unavailable:
            from globalrep.figures.notice import plot_notice

            plot_notice(f"{task_name}: not evaluated", unavailable, staging / f"{task_name}_not_evaluated")
            if task.unavailable_figures:
                task.unavailable_figures(staging, unavailable)
        elif task.figures:
            names = {f"{task_name}_{name}.csv": name for name in extra_table_names(task_name)}
            extra = {names[Path(path).name]: read_table_output(path) for path in extra_tables}
            context = FigureContext(
                staging, {name: list(members) for name, members in chains.items()}, dict(models_stage), extra
            )
            task.figures(read_table_output(table_path), read_table_output(deltas_path), context, task_options)
        else:
            log.warning("task %s draws no figures", task_name)
        inputs = [] if unavailable else [table_path, deltas_path, *extra_tables]
        figure_manifest.write(staging, {"kind": "figures", "task": task_name}, inputs)
    written = sorted(
        p for p in out_dir.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name != figure_manifest.NAME
    )
    log.info("wrote %d figure files to %s: %s", len(written), out_dir, ", ".join(p.name for p in written))
    return written


def report(
    out_path: str | os.PathLike,
    tables: Mapping[str, tuple[str | os.PathLike, str | os.PathLike]],
    figure_dirs: Mapping[str, str | os.PathLike],
    extra_tables: Sequence[str | os.PathLike],
    task_models: Mapping[str, Sequence[str]],
    notes: Mapping[str, str],
    config: Mapping,
    findings_path: str | os.PathLike | None = None,
    findings_figure_path: str | os.PathLike | None = None,
    missing: Mapping[str, Mapping[str, tuple[int, int]]] | None = None,
) -> None:
    """Write the single-file HTML report: first the findings (``findings_path``, its overview
    figure ``findings_figure_path``, and the models whose ``missing`` answers, ``{task: {model:
    (missing, total)}}``, exceed 1%); then per task its two tables (``tables[task] = (table_csv,
    deltas_csv)``), the PNGs that ``figure_dirs[task]`` lists, its extra tables (``extra_tables`` holds
    the ``{task}_{name}.csv`` of the tasks' ``EXTRA_TABLES`` that were written: none for a task no
    model could answer), the models it evaluated (``task_models[task]``, empty for a model-free
    task) and its note (``notes``, if any); with the config and package versions."""
    from globalrep.report import FindingsOutputs, TaskOutputs, build_report

    extra_by_name = {Path(path).name: Path(path) for path in extra_tables}
    tasks = {
        task: TaskOutputs(
            table=Path(table_csv),
            deltas=Path(deltas_csv),
            figures=figure_manifest.listed_pngs(figure_dirs[task]),
            extra_tables={
                name: extra_by_name[f"{task}_{name}.csv"]
                for name in extra_table_names(task)
                if f"{task}_{name}.csv" in extra_by_name
            },
            models=list(task_models[task]),
            note=notes.get(task, ""),
        )
        for task, (table_csv, deltas_csv) in tables.items()
    }
    findings = None
    if findings_path is not None:
        figure = Path(findings_figure_path) if findings_figure_path else None
        findings = FindingsOutputs(Path(findings_path), figure, dict(missing or {}))
    build_report(out_path, tasks, plain(config), versions(), findings)  # writes atomically
    n_figures = sum(len(outputs.figures) for outputs in tasks.values())
    log.info("wrote %s (%d tasks, %d figures)", out_path, len(tasks), n_figures)


def findings(
    tables: Sequence[str | os.PathLike],
    scores: Mapping[str, str | os.PathLike],
    task_options: Mapping[str, Mapping],
    chains: Mapping[str, Sequence[str]],
    out_path: str | os.PathLike,
    correction: str = "bh",
) -> None:
    """Write ``findings.csv`` (:mod:`globalrep.findings`) from the ``tables`` it reads
    (``results/tables/{name}.csv``) and the per-item ``scores[task]`` of the tasks whose
    statistics resample items (the rows their standard tables use, by ``task_options[task]``)."""
    from globalrep.findings import Inputs, findings_table

    loaded = {Path(path).name.removesuffix(".csv"): read_table_output(path) for path in tables}
    rows = {
        task: get_task(task).table_scores(
            read_parquet_output(path, {"kind": "scores", "task": task}), dict(task_options[task])
        )
        for task, path in scores.items()
    }
    chains = {name: list(members) for name, members in chains.items()}
    table = findings_table(Inputs(loaded, rows, chains, correction))
    write_csv_atomic(table, out_path, {"kind": "findings"}, [*tables, *scores.values()])
    log.info("wrote %d findings from %d tables to %s", len(table), len(tables), out_path)


def findings_summary(findings_path: str | os.PathLike, report_path: str | os.PathLike, tasks: Sequence[str]) -> str:
    """What a finished run prints: the findings, one line per chain step and question, and the
    report's path; empty when the run wrote neither (a run of other targets)."""
    from globalrep.findings import summary_lines

    lines = []
    if Path(findings_path).is_file():
        found = summary_lines(read_table_output(findings_path), tasks)
        lines += [f"Findings ({findings_path}):", *(found or ["  none: no task compared models along a chain"])]
    if Path(report_path).is_file():
        lines.append(f"Report: {report_path}")
    return "\n".join(lines)


def findings_figure(findings_path: str | os.PathLike, out_prefix: str | os.PathLike) -> None:
    """Draw the report's overview of the findings as ``{out_prefix}.pdf`` and ``.png``."""
    from globalrep.figures.findings import plot_findings_overview

    written = plot_findings_overview(read_table_output(findings_path), out_prefix)
    log.info("drew %s", ", ".join(map(str, written)))


# ---------------------------------------------------------------------------------------------
# Helpers


def shard_made_by(task_name: str, model: str, fingerprint: str, shard: int, n_shards: int, item_ids) -> dict:
    """What a prediction shard records, and its reader expects, about what made it."""
    return {
        "kind": "predictions", "task": task_name, "model": model, "fingerprint": fingerprint,
        "shard": shard, "n_shards": n_shards, "items": items_digest(item_ids),
    }  # fmt: skip


def load_predictions(
    task_name: str,
    items: pd.DataFrame,
    predictions: Mapping[str, Sequence[str | os.PathLike]],
    fingerprints: Mapping[str, str],
) -> pd.DataFrame:
    """All models' shards, one frame with a ``model`` column. Unreadable or wrong shards (made by
    another model or config, for other items) are deleted and named in the error, so that
    rerunning Snakemake recomputes just them."""
    frames, bad = [], []
    for model, paths in predictions.items():
        for shard, path in enumerate(paths):
            expected = shard_items(items, len(paths), shard)["item_id"]
            made_by = shard_made_by(task_name, model, fingerprints.get(model, ""), shard, len(paths), expected)
            try:
                frame = load_parquet(path, made_by)
                _check_shard_ids(frame, expected, f"shard {path}")
            except GlobalrepError as error:
                bad.append((Path(path), error))
                continue
            frames.append(frame.assign(model=model))
    if bad:
        for path, _ in bad:
            delete_damaged(path)
        listing = "\n  ".join(str(error) for _, error in bad)
        raise GlobalrepError(
            f"{len(bad)} prediction shard(s) could not be used and were deleted:\n  {listing}\n"
            "Rerun snakemake: it recomputes exactly the missing shards, then scores again."
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"item_id": [], "model": []})


def _check_shard_ids(frame: pd.DataFrame, expected: pd.Series, what: str) -> None:
    """``frame`` must hold exactly one row per expected item."""
    if "item_id" not in frame.columns:
        raise GlobalrepError(f"{what} has no item_id column")
    got = frame["item_id"].astype(str)
    if got.duplicated().any():
        raise GlobalrepError(f"{what} repeats item_id(s) {sorted(set(got[got.duplicated()]))[:5]}")
    missing = set(expected.astype(str)) - set(got)
    extra = set(got) - set(expected.astype(str))
    if missing or extra:
        raise GlobalrepError(
            f"{what} does not match its items: {len(missing)} missing (e.g. {sorted(missing)[:3]}), "
            f"{len(extra)} unexpected (e.g. {sorted(extra)[:3]})"
        )


def _check_items(task_name: str, items: pd.DataFrame) -> None:
    missing = {"item_id", "group"} - set(items.columns)
    if missing:
        raise GlobalrepError(f"task {task_name}'s prepare() returned no {', '.join(sorted(missing))} column")
    if items.empty:
        raise GlobalrepError(f"task {task_name} has no items: check config key 'tasks.{task_name}.source'")
    duplicated = items["item_id"][items["item_id"].duplicated()]
    if len(duplicated):
        raise GlobalrepError(f"task {task_name}'s item_ids repeat: {sorted(set(duplicated))[:5]}")


def versions() -> dict[str, str]:
    """Python and package versions, for the report."""
    found = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            if package == "globalrep":
                from globalrep import __version__

                found[package] = f"{__version__} (not installed; from source)"
    return found
