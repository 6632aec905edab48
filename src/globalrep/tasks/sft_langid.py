"""Language identification of SFT data: how much of each supervised fine-tuning dataset is not English.

A model-free task (empty ``MODEL_KINDS``): its ``OWN_STAGE`` (run by ``workflow/rules/langid.smk``)
is one detection job per (dataset, shard), then one job for its two tables; figures and report
are the generic ones.
Every message of every conversation gets a language from two independent detectors
(:mod:`globalrep.langid`), by default the paper's pair (langdetect and fastText's lid.176), and
counts for it only when they agree, else ``unknown``.

Shard ``k`` of ``n`` holds the conversations whose index (within their split or file) is
``k`` modulo ``n``; a job streams its source and keeps no text, so a 300k-message dataset never
sits in memory. The table has the standard shape with ``model`` = the dataset's config name,
``group`` = the language (ISO 639-1, or ``unknown``), ``group_name`` its English name, and the
percent of messages with 95% Wilson intervals (messages counted as independent draws), two ways:
``share``, ``share_user``, ``share_assistant`` over all messages, ``unknown`` (the detectors
disagree or find nothing) a row of its own; and the paper's headline, ``share_agreed``,
``share_agreed_user``, ``share_agreed_assistant``, over the messages both detectors agree on
(disagreements leave the denominator).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd

from globalrep.atomic import write_csv_atomic, write_parquet_atomic
from globalrep.datafiles import local_files
from globalrep.digests import fingerprint
from globalrep.errors import GlobalrepError
from globalrep.intermediates import read_parquet_output
from globalrep.langid import Detectors, check_detectors, detector_versions
from globalrep.languages import UNKNOWN, language_name
from globalrep.local_paths import is_local_path
from globalrep.tables import DELTA_COLUMNS
from globalrep.tasks.base import FigureContext, OwnStage, load_options_schema, option_defaults

NAME = "sft_langid"
PROMPT_VERSION = "1"  # bump when detection or counting changes (reruns the detection jobs)
MODEL_KINDS = ()  # no models: OWN_STAGE below detects languages
AXIS = "languages"  # the report's section: dialects | languages | opinions
# The options and their defaults: sft_langid.schema.yaml beside this module.
OPTIONS_SCHEMA = load_options_schema(__file__)
DEFAULTS = option_defaults(OPTIONS_SCHEMA)

DEFAULT_SPLITS = ("train",)
ROLES = ("user", "assistant")
# first/second: the answers of the two `detectors` (named in that column), in their config order.
MESSAGE_COLUMNS = [
    "dataset",
    "part",
    "conversation",
    "turn",
    "role",
    "chars",
    "detectors",
    "first",
    "second",
    "language",
]
TABLE_COLUMNS = ["model", "group", "group_name", "metric", "value", "ci_low", "ci_high", "n"]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ config


def dataset_entries(options: Mapping) -> dict[str, dict]:
    """``{name: {source, splits}}`` from ``options['datasets']``."""
    return {name: {"splits": list(DEFAULT_SPLITS), **entry} for name, entry in options["datasets"].items()}


def check_sources(options: Mapping) -> None:
    """Every dataset's local source must exist (hub ids are checked when read)."""
    for name, entry in dataset_entries(options).items():
        source = str(entry["source"])
        if is_local_path(source) and not Path(source).expanduser().exists():
            raise GlobalrepError(
                f"dataset file '{source}' does not exist (config key 'tasks.{NAME}.datasets.{name}.source', "
                f"relative to the working directory {Path.cwd()}): fix the path or use a hub dataset id"
            )


def dataset_names(options: Mapping) -> list[str]:
    """The configured datasets' names, in config order."""
    return list(options["datasets"])


def detector_names(options: Mapping) -> tuple[str, str]:
    """The configured pair of detectors (``detectors``), the paper's by default."""
    return check_detectors(options.get("detectors", DEFAULTS["detectors"]), f"tasks.{NAME}.detectors")


def job_fingerprint(options: Mapping, name: str) -> str:
    """What determines a detection shard: the dataset's entry, the detection options, this task's
    version and the detectors' versions (a new detector version reruns detection)."""
    detection = {k: v for k, v in options.items() if k not in ("datasets", "shards")}
    versions = detector_versions(detector_names(options))
    return fingerprint(dataset_entries(options)[name], detection, PROMPT_VERSION, versions)


def source_files(options: Mapping, name: str) -> list[str]:
    """The local files of one dataset (so that editing one reruns its jobs); none for a hub id."""
    source = str(dataset_entries(options)[name]["source"])
    if not is_local_path(source):
        return []
    return [str(p) for p in local_files(source, (".jsonl", ".parquet"), f"tasks.{NAME}.datasets.{name}.source")]


# ------------------------------------------------------------------------------ reading


def conversations(source: str, splits, n_shards: int, shard: int) -> Iterator[tuple[str, int, list]]:
    """``(part, index, messages)`` of the conversations in shard ``shard`` of ``n_shards``, streamed.
    ``part`` is the split (hub) or file name (local: every .jsonl/.parquet file, splits unused)."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} is outside 0..{n_shards - 1}")
    if is_local_path(source):
        for path in local_files(source, (".jsonl", ".parquet"), f"{NAME} source"):
            rows = (
                _jsonl_rows(path, n_shards, shard)
                if path.suffix.lower() == ".jsonl"
                else _parquet_rows(path, n_shards, shard)
            )
            for index, where, messages in rows:
                yield path.name, index, _checked(messages, f"{path}, {where}")
        return
    from datasets import load_dataset  # heavy import, only for hub sources

    for split in splits:
        data = load_dataset(source, split=split).select_columns(["messages"])
        for k, row in enumerate(data.shard(num_shards=n_shards, index=shard, contiguous=False)):
            index = shard + k * n_shards
            yield split, index, _checked(row["messages"], f"{source} split {split}, row {index}")


def _jsonl_rows(path: Path, n_shards: int, shard: int):
    with path.open(encoding="utf-8") as lines:
        for index, line in enumerate(lines):
            if index % n_shards != shard or not line.strip():
                continue  # other shards' lines are not even parsed
            where = f"line {index + 1}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise GlobalrepError(f"{path}, {where}: not JSON ({error})") from None
            if not isinstance(record, dict) or "messages" not in record:
                raise GlobalrepError(
                    f"{path}, {where}: no 'messages' field; each line needs messages: [{{role, content}}]"
                )
            yield index, where, record["messages"]


def _parquet_rows(path: Path, n_shards: int, shard: int):
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    if "messages" not in file.schema_arrow.names:
        raise GlobalrepError(f"{path}: no 'messages' column; SFT data needs messages: [{{role, content}}]")
    index = 0
    for batch in file.iter_batches(columns=["messages"], batch_size=1024):
        for messages in batch.column("messages").to_pylist():
            if index % n_shards == shard:
                yield index, f"row {index}", messages
            index += 1


def _checked(messages, where: str) -> list[tuple[str, str]]:
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages
    ):
        raise GlobalrepError(f"{where}: 'messages' must be a list of {{role, content}} with text values")
    return [(m["role"], m["content"]) for m in messages]


# ------------------------------------------------------------------------------ detection


def detect_shard(name: str, options: Mapping, n_shards: int, shard: int, out_path) -> None:
    """One job: the language of every message in one shard of dataset ``name``, one row per
    message (no text): ``dataset, part, conversation, turn, role, chars, detectors, first, second,
    language``."""
    entry = dataset_entries(options)[name]
    names = detector_names(options)
    detectors = Detectors(
        names,
        seed=int(options.get("seed", DEFAULTS["seed"])),
        max_chars=int(options.get("max_chars", DEFAULTS["max_chars"])),
        low_accuracy=bool(options.get("low_accuracy", DEFAULTS["low_accuracy"])),
    )
    rows = []
    start = time.perf_counter()
    for part, index, messages in conversations(str(entry["source"]), entry["splits"], n_shards, shard):
        for turn, (role, content) in enumerate(messages):
            found = detectors.detect(content)
            rows.append(
                (
                    name,
                    part,
                    index,
                    turn,
                    role,
                    len(content),
                    "+".join(names),
                    found.first,
                    found.second,
                    found.language,
                )
            )
    frame = pd.DataFrame(rows, columns=MESSAGE_COLUMNS)
    write_parquet_atomic(frame, out_path)
    elapsed = max(time.perf_counter() - start, 1e-9)
    agree = float((frame["language"] != UNKNOWN).mean()) if len(frame) else float("nan")
    log.info(
        "%s shard %d of %d: %d messages in %.1f s (%.1f messages/s); detectors agree on %.1f%%",
        name,
        shard,
        n_shards,
        len(frame),
        elapsed,
        len(frame) / elapsed,
        100 * agree,
    )


# ------------------------------------------------------------------------------ tables


def share_table(messages: pd.DataFrame) -> pd.DataFrame:
    """Percent of messages per language, per dataset: all messages (``share``) and per role
    (``share_user``, ``share_assistant``), ``unknown`` included; then the same over only the
    messages the detectors agree on (``share_agreed``, ``share_agreed_user``,
    ``share_agreed_assistant``). 95% Wilson intervals; ``n`` = the messages of the denominator."""
    from scipy.stats import binomtest  # imported here: see globalrep.stats

    rows = []
    for dataset, frame in messages.groupby("dataset", sort=True):
        agreed = frame[frame["language"] != UNKNOWN]
        subsets = {
            "share": frame,
            **{f"share_{role}": frame[frame["role"] == role] for role in ROLES},
            "share_agreed": agreed,
            **{f"share_agreed_{role}": agreed[agreed["role"] == role] for role in ROLES},
        }
        for metric, subset in subsets.items():
            total = len(subset)
            for language, count in sorted(subset["language"].value_counts().items()):
                interval = binomtest(int(count), total).proportion_ci(confidence_level=0.95, method="wilson")
                rows.append(
                    (
                        dataset,
                        language,
                        language_name(language),
                        metric,
                        100 * count / total,
                        100 * interval.low,
                        100 * interval.high,
                        total,
                    )
                )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS).sort_values(["model", "metric", "group"], ignore_index=True)


def write_tables(shards: Mapping[str, list], scores_out, table_out, deltas_out) -> None:
    """One job: all datasets' shards → the per-message rows, the share table and an empty deltas
    table (no chains: the datasets are not models)."""
    frames = [read_parquet_output(path) for paths in shards.values() for path in paths]
    messages = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=MESSAGE_COLUMNS)
    write_parquet_atomic(messages, scores_out)
    table = share_table(messages)
    write_csv_atomic(table, table_out)
    write_csv_atomic(pd.DataFrame(columns=DELTA_COLUMNS), deltas_out)
    for dataset, frame in messages.groupby("dataset", sort=True):
        english = (frame["language"] == "en").mean()
        unknown = (frame["language"] == UNKNOWN).mean()
        log.info(
            "%s: %d messages; English %.1f%%, other languages %.1f%%, unknown (detectors disagree or "
            "find nothing) %.1f%%",
            dataset,
            len(frame),
            100 * english,
            100 * (1 - english - unknown),
            100 * unknown,
        )


def figures(tables: pd.DataFrame, deltas: pd.DataFrame, context: FigureContext, options: dict) -> list[Path]:
    """The language make-up of each SFT dataset, its non-English share first."""
    from globalrep.figures.languages import plot_language_shares

    return plot_language_shares(
        tables, context.out_dir / NAME, "SFT data: languages of messages (counted where both detectors agree)"
    )


OWN_STAGE = OwnStage(
    units=dataset_names,
    check_sources=check_sources,
    source_files=source_files,
    fingerprint=job_fingerprint,
    run_shard=detect_shard,
    write_tables=write_tables,
)
