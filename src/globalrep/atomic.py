"""Outputs that appear whole or not at all: write beside the target, then rename."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from globalrep import provenance
from globalrep.errors import GlobalrepError, environment_fault


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write a file or a directory to; on success it
    replaces ``path``, on error it is removed. Not mkstemp/mkdtemp: their 0600/0700 modes would
    survive the rename and hide results from the other users of a shared cluster directory.

    A temporary left by a writer that was killed (SIGKILL, a lost node) is removed here: one job
    at a time writes an output, so any other temporary of ``path`` is such a leftover."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        leftover_name = re.compile(rf"\.{re.escape(path.name)}\.\d+\.[0-9a-f]{{8}}\.tmp")
        for leftover in path.parent.iterdir():
            if leftover_name.fullmatch(leftover.name):
                _remove(leftover)
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException as error:
        _remove(tmp)
        fault = environment_fault(error, path)
        if fault:  # a full disk names no file, a read-only one our temporary: name the output
            raise GlobalrepError(fault.replace(str(tmp), str(path))) from None
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_parquet_atomic(
    frame: pd.DataFrame, path: str | os.PathLike, made_by: Mapping | None = None, inputs: Iterable = ()
) -> None:
    """``frame`` as Parquet (as ``DataFrame.to_parquet`` writes it) with its provenance record:
    ``made_by`` and the digests of the ``inputs`` files (see :mod:`globalrep.provenance`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = provenance.with_record(table, made_by, provenance.input_digests(inputs))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_csv_atomic(
    frame: pd.DataFrame, path: str | os.PathLike, made_by: Mapping | None = None, inputs: Iterable = ()
) -> None:
    """``frame`` as CSV, with its provenance record in the sidecar, written first: a table renamed
    into place always has its record (a run killed in between leaves a mismatch, read as damage)."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
        entry = provenance.record(provenance.file_digest(tmp), made_by, provenance.input_digests(inputs))
        write_text_atomic(json.dumps(entry, indent=1, sort_keys=True) + "\n", provenance.sidecar(path))


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
