"""Reading the workflow's own outputs back (``results/...``) in a later job.

Our outputs are written atomically, so one that cannot be read was damaged after it was written
(a full disk, a copy cut short, an edit by hand). So is one whose provenance record is missing,
disagrees with its content or names another maker or other inputs than the reader expects (see
:mod:`globalrep.provenance`): a shard copied from another model, a scores file that lost a row.
It is deleted and named in a :class:`~globalrep.errors.GlobalrepError`: the next ``snakemake``
then rebuilds exactly it. Only the file that failed is deleted (with its record), never the job's
other inputs or outputs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from globalrep import provenance
from globalrep.errors import GlobalrepError
from globalrep.tables import read_table as _parse_table

# What a damaged Parquet or CSV file raises: pyarrow's errors (ArrowInvalid is also a
# ValueError), pandas' ParserError and EmptyDataError, UnicodeDecodeError: all ValueErrors.
READ_ERRORS = (OSError, ValueError)


def load_parquet(path: str | os.PathLike, expected: Mapping | None = None) -> pd.DataFrame:
    """A Parquet output whose provenance checks out (made by ``expected``, if given), or a
    GlobalrepError naming it and what is wrong (nothing deleted)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = _load(path, pq.read_table, (*READ_ERRORS, pa.ArrowException))
    provenance.check_parquet(path, table, expected)
    return table.to_pandas()


def load_table(path: str | os.PathLike, expected: Mapping | None = None) -> pd.DataFrame:
    """A CSV table we wrote (see :func:`globalrep.tables.read_table`) whose provenance checks out,
    or a GlobalrepError. pandas ends every CSV with a newline: a file without one was cut short,
    even when it still parses."""

    def parse(p: Path) -> pd.DataFrame:
        with p.open("rb") as file:
            file.seek(0, os.SEEK_END)
            if file.tell() == 0:
                raise ValueError("the file is empty")
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":
                raise ValueError("the file is cut short (no final newline)")
        return _parse_table(p)

    table = _load(path, parse, READ_ERRORS)
    provenance.check_csv(path, expected)
    return table


def _load(path: str | os.PathLike, parse: Callable[[Path], object], errors: tuple):
    path = Path(path)
    if not path.exists():
        raise GlobalrepError(f"{path}: missing")
    try:
        return parse(path)
    except errors as error:
        raise GlobalrepError(f"{path}: cannot be read ({type(error).__name__}: {error})") from None


def read_output(
    path: str | os.PathLike, load: Callable = load_parquet, expected: Mapping | None = None
) -> pd.DataFrame:
    """``load(path, expected)``; when that fails, delete ``path`` (and its provenance sidecar, if
    any) and say that the next run rebuilds it."""
    try:
        return load(path, expected)
    except GlobalrepError as error:
        if not Path(path).exists():
            raise GlobalrepError(f"{error}: run snakemake again to rebuild it") from None
        delete_damaged(path)
        raise GlobalrepError(
            f"{error}. It was deleted: run snakemake again and it is rebuilt, with what depends on it"
        ) from None


def delete_damaged(path: str | os.PathLike) -> None:
    """Delete one of our damaged outputs and its record; parallel jobs that read it may each try."""
    Path(path).unlink(missing_ok=True)
    provenance.sidecar(path).unlink(missing_ok=True)


def read_parquet_output(path: str | os.PathLike, expected: Mapping | None = None) -> pd.DataFrame:
    """A Parquet output of an earlier job (prepared items, scores, shards); see :func:`read_output`."""
    return read_output(path, load_parquet, expected)


def read_table_output(path: str | os.PathLike) -> pd.DataFrame:
    """A CSV table of an earlier job; see :func:`read_output`."""
    return read_output(path, load_table)
