"""Deterministic shard assignment."""

from __future__ import annotations

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
