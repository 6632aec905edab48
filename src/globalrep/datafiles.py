"""Local dataset sources that may be one file or a directory of files (one per language, say)."""

from __future__ import annotations

from pathlib import Path

from globalrep.errors import GlobalrepError


def local_files(source: str, suffixes: tuple[str, ...], what: str) -> list[Path]:
    """``source`` itself if it is a file, else the files under the directory ``source`` whose
    names end in one of ``suffixes`` (recursively, sorted). ``what`` names the config key."""
    path = Path(source).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes))
        if files:
            return files
        raise GlobalrepError(f"{what}: directory {source} holds no {', '.join(suffixes)} files")
    raise GlobalrepError(f"{what}: {source} is neither a file nor a directory; fix the path or use a hub dataset id")
