"""Reading a task's raw source: a local CSV/JSON/JSONL/Parquet file or a Hugging Face dataset."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pandas as pd

from globalrep.errors import GlobalrepError
from globalrep.local_paths import is_local_path


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
            return read_csv_text(path)
        if suffix == ".jsonl":
            return read_jsonl(path)
        if suffix == ".json":
            return read_json_records(path)
        if suffix == ".parquet":
            return _read_parquet(path)
        raise GlobalrepError(f"{source}: unsupported file type {suffix!r}; use .csv, .json, .jsonl or .parquet")
    if is_local_path(source):
        raise GlobalrepError(
            f"{what} source {source!r} is not an existing file; give a CSV, JSON/JSONL or "
            f"Parquet file, or a Hugging Face dataset id such as {default_source}"
        )
    from datasets import load_dataset  # heavy import, only for hub sources

    return load_dataset(source, split=split).to_pandas()


def read_text(path: str | os.PathLike) -> str:
    """A text file's content; a UTF-8 byte-order mark (as Excel and Notepad write) is dropped. A
    NUL character (a binary file, or one damaged) is named by line and column: no text holds one."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise GlobalrepError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason}); save it as UTF-8") from None
    nul = text.find("\0")
    if nul >= 0:
        line_start = text.rfind("\n", 0, nul) + 1
        raise GlobalrepError(
            f"{path}, line {text.count(chr(10), 0, nul) + 1}, column {nul - line_start + 1}: a NUL character; "
            "the file is binary or damaged: save it again as UTF-8 text"
        )
    return text


def read_csv_text(path: str | os.PathLike, sep: str = ",") -> pd.DataFrame:
    """A CSV (or, with ``sep``, TSV) file with every field as text (the task's parser decides
    what a field means; "NA" stays "NA"). Malformed files, and a column name given twice, raise a
    GlobalrepError naming the line or column."""
    text = read_text(path)
    header = next(csv.reader(io.StringIO(text), delimiter=sep), [])
    for column, name in enumerate(header, start=1):
        if name in header[: column - 1]:
            raise GlobalrepError(
                f"{path}, line 1: column {column} is named {name!r} like column {header.index(name) + 1}; "
                "give each column its own name"
            )
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise GlobalrepError(f"{path}: the file is empty; it needs a header line and one row per item") from None
    except pd.errors.ParserError as error:  # pandas names the line: "Expected 5 fields in line 4, saw 7"
        raise GlobalrepError(
            f"{path}: not valid CSV ({str(error).strip()}); quote fields that contain '{sep}' or line breaks"
        ) from None


def read_jsonl(path: str | os.PathLike) -> pd.DataFrame:
    """A JSON Lines file, one object per line (blank lines skipped), as one row each."""
    records = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise GlobalrepError(f"{path}, line {number}: not JSON ({error.msg} at column {error.colno})") from None
        if not isinstance(record, dict):
            raise GlobalrepError(f"{path}, line {number}: a JSON {type(record).__name__}, not an object")
        records.append(record)
    return pd.DataFrame(records)


def read_json_records(path: str | os.PathLike) -> pd.DataFrame:
    """A JSON file holding a table: a list of objects, or pandas' other layouts (``{column: {row:
    value}}``)."""
    text = read_text(path)
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise GlobalrepError(f"{path}, line {error.lineno}: not JSON ({error.msg} at column {error.colno})") from None
    try:
        return pd.read_json(io.StringIO(text), dtype=False)
    except ValueError as error:
        raise GlobalrepError(
            f"{path}: JSON that is not a table ({error}); give a list of objects, one per row"
        ) from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise GlobalrepError(f"{path}: not a readable Parquet file ({error})") from None
