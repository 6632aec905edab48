"""Outputs that appear whole or not at all: write beside the target, then rename."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write a file or a directory to; on success it
    replaces ``path``, on error it is removed. Not mkstemp/mkdtemp: their 0600/0700 modes would
    survive the rename and hide results from the other users of a shared cluster directory.

    A temporary left by a writer that was killed (SIGKILL, a lost node) is removed here: one job
    at a time writes an output, so any other temporary of ``path`` is such a leftover."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    leftover_name = re.compile(rf"\.{re.escape(path.name)}\.\d+\.[0-9a-f]{{8}}\.tmp")
    for leftover in path.parent.iterdir():
        if leftover_name.fullmatch(leftover.name):
            _remove(leftover)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_parquet_atomic(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv_atomic(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
