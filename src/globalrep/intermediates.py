"""Reading the workflow's own outputs back (``results/...``) in a later job.

Our outputs are written atomically, so one that cannot be read was damaged after it was written
(a full disk, a copy cut short, an edit by hand). It is deleted and named in a
:class:`~globalrep.errors.GlobalrepError`: the next ``snakemake`` then rebuilds exactly it. Only
the file that failed is deleted, never the job's other inputs or outputs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from globalrep.errors import GlobalrepError
from globalrep.tables import read_table as _parse_table

# What a damaged Parquet or CSV file raises: pyarrow's errors (ArrowInvalid is also a
# ValueError), pandas' ParserError and EmptyDataError, UnicodeDecodeError: all ValueErrors.
READ_ERRORS = (OSError, ValueError)


def load_parquet(path: str | os.PathLike) -> pd.DataFrame:
    """A Parquet output, or a GlobalrepError naming it and what is wrong (nothing deleted)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return _load(path, lambda p: pq.read_table(p).to_pandas(), (*READ_ERRORS, pa.ArrowException))


def load_table(path: str | os.PathLike) -> pd.DataFrame:
    """A CSV table we wrote (see :func:`globalrep.tables.read_table`), or a GlobalrepError. pandas
    ends every CSV with a newline: a file without one was cut short, even when it still parses."""

    def parse(p: Path) -> pd.DataFrame:
        with p.open("rb") as file:
            file.seek(0, os.SEEK_END)
            if file.tell() == 0:
                raise ValueError("the file is empty")
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":
                raise ValueError("the file is cut short (no final newline)")
        return _parse_table(p)

    return _load(path, parse, READ_ERRORS)


def _load(path: str | os.PathLike, parse: Callable[[Path], pd.DataFrame], errors: tuple) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise GlobalrepError(f"{path}: missing")
    try:
        return parse(path)
    except errors as error:
        raise GlobalrepError(f"{path}: cannot be read ({type(error).__name__}: {error})") from None


def read_output(path: str | os.PathLike, load: Callable = load_parquet) -> pd.DataFrame:
    """``load(path)``; when that fails, delete ``path`` and say that the next run rebuilds it."""
    try:
        return load(path)
    except GlobalrepError as error:
        if not Path(path).exists():
            raise GlobalrepError(f"{error}: run snakemake again to rebuild it") from None
        Path(path).unlink(missing_ok=True)  # parallel jobs that read it may each delete it
        raise GlobalrepError(
            f"{error}. It was deleted: run snakemake again and it is rebuilt, with what depends on it"
        ) from None


def read_parquet_output(path: str | os.PathLike) -> pd.DataFrame:
    """A Parquet output of an earlier job (prepared items, scores, shards); see :func:`read_output`."""
    return read_output(path, load_parquet)


def read_table_output(path: str | os.PathLike) -> pd.DataFrame:
    """A CSV table of an earlier job; see :func:`read_output`."""
    return read_output(path, load_table)
