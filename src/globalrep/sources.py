"""Reading a task's raw source: a local CSV/JSON/JSONL/Parquet file or a Hugging Face dataset."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from globalrep.errors import GlobalrepError
from globalrep.models import is_local_path


def require_columns(frame: pd.DataFrame, columns, where: object, hint: str) -> None:
    """Raise, naming the file and the missing columns, unless ``frame`` has all ``columns``;
    ``hint`` says what the file should hold."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise GlobalrepError(f"{where}: missing column(s) {', '.join(missing)}; {hint}")


def read_records(source: str, split: str, what: str, default_source: str) -> pd.DataFrame:
    """The rows of ``source``: a local file, or the ``split`` of a hub dataset. ``what`` names the
    dataset in errors; ``default_source`` is the hub id suggested when a local path is wrong."""
    path = Path(source).expanduser()
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".csv":
            # Everything as text: the task's parser decides what each field means.
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if suffix in (".json", ".jsonl"):
            return pd.read_json(path, lines=suffix == ".jsonl", dtype=False)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        raise GlobalrepError(f"{source}: unsupported file type {suffix!r}; use .csv, .json, .jsonl or .parquet")
    if is_local_path(source):
        raise GlobalrepError(
            f"{what} source {source!r} is not an existing file; give a CSV, JSON/JSONL or "
            f"Parquet file, or a Hugging Face dataset id such as {default_source}"
        )
    from datasets import load_dataset  # heavy import, only for hub sources

    return load_dataset(source, split=split).to_pandas()
