"""Whether a config value names a local file or folder or a Hugging Face hub id. At the bottom of
the package: it imports nothing of globalrep."""

from __future__ import annotations

from pathlib import Path

# Data and weights file endings that no hub id has.
LOCAL_FILE_SUFFIXES = (
    ".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt", ".zip", ".gz",
    ".pt", ".pth", ".bin", ".ckpt", ".gguf", ".safetensors",
)  # fmt: skip


def is_local_path(path: str) -> bool:
    """Hub ids look like ``name`` or ``org/name``; a path that exists, starts with ``/``, ``./``,
    ``../`` or ``~``, goes deeper, ends like a data or weights file, or whose first folder exists
    here (``checkpoints/run-1`` beside a ``checkpoints/`` folder) is local."""
    if path.startswith(("/", "./", "../", "~")) or Path(path).exists():
        return True
    if "/" in path and Path(path.split("/", 1)[0]).is_dir():
        return True
    return path.count("/") >= 2 or path.lower().endswith(LOCAL_FILE_SUFFIXES)
