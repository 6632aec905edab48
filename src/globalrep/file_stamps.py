"""Stamps of input files that a Snakemake rule cannot declare as inputs.

Snakemake reads ``{name}`` in an input path as a wildcard, whether the path comes from a rule, an
input function or has its braces doubled (checked on Snakemake 9), and ``name`` may hold dots:
the paper's TyDiQA folders ``{qwen1.5_8bit}`` are such paths. A job takes those files through
its params instead, with their stamp in the fingerprint, so that Snakemake's params trigger still
reruns it when one of them changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def stamp(paths: Iterable[str]) -> list[tuple[str, int, int]]:
    """``(path, size, mtime_ns)`` of each file, and of each file under each folder, sorted; a
    path that does not exist is left out (the job's own checks say so)."""
    files = []
    for path in map(Path, paths):
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] * path.is_file()
    return [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
