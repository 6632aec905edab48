"""Deterministic shard assignment and atomic Parquet writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd


def shard_items(items: pd.DataFrame, n_shards: int, shard: int) -> pd.DataFrame:
    """Shard ``shard`` of ``n_shards``: contiguous, balanced chunks of items sorted by
    (group, item_id), so a shard holds few groups (one language per job when shards ≈ languages)."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} is outside 0..{n_shards - 1}")
    ordered = items.sort_values(["group", "item_id"], kind="stable").reset_index(drop=True)
    bounds = np.linspace(0, len(ordered), n_shards + 1).round().astype(int)
    return ordered.iloc[bounds[shard] : bounds[shard + 1]].reset_index(drop=True)


def write_parquet_atomic(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write to a temporary file beside ``path``, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A pid-named file keeps the umask's mode (mkstemp's 0600 would hide shards on shared clusters).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
