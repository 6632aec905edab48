"""A task's figure folder declares its figures: ``figures.json`` lists every file the figure job
drew, with its size and digest, and the provenance of the tables it drew them from.

Snakemake sees the folder as one output, so a figure deleted from it would never be redrawn; and
the report would embed whatever PNG lies in the folder. With the list, the workflow finds a
folder that lost or changed a figure before planning (:func:`damaged`) and deletes it, so that
the run redraws it; the report embeds exactly the listed PNGs (:func:`listed_pngs`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from globalrep import provenance
from globalrep.errors import GlobalrepError

NAME = "figures.json"


def write(folder: str | os.PathLike, made_by: Mapping, inputs: Iterable[str | os.PathLike]) -> None:
    """List every file in ``folder`` (the figure job's staging folder) in its ``figures.json``."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != NAME)
    listing = {
        str(p.relative_to(folder)): {"size": p.stat().st_size, "digest": provenance.file_digest(p)} for p in files
    }
    entry = {**provenance.record("", made_by, provenance.input_digests(inputs)), "files": listing}
    (folder / NAME).write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def damaged(folder: str | os.PathLike, check_digests: bool = False) -> str | None:
    """What is wrong with an existing figure folder (no list, a listed file missing or changed),
    or None when it is whole; sizes only unless ``check_digests``."""
    folder = Path(folder)
    try:
        listing = json.loads((folder / NAME).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{folder}: no readable {NAME} listing its figures"
    for name, facts in listing.items():
        path = folder / name
        if not path.is_file():
            return f"{folder}: {name} is missing (listed in {NAME})"
        if path.stat().st_size != facts.get("size") or (
            check_digests and provenance.file_digest(path) != facts.get("digest")
        ):
            return f"{folder}: {name} changed after it was drawn"
    return None


def delete_damaged(folders: Iterable[str | os.PathLike]) -> list[str]:
    """Delete the existing figure folders that are damaged; return what was wrong with each."""
    found = []
    for folder in map(Path, folders):
        problem = damaged(folder) if folder.is_dir() else None
        if problem:
            shutil.rmtree(folder, ignore_errors=True)
            found.append(problem)
    return found


def listed_pngs(folder: str | os.PathLike) -> list[Path]:
    """The PNGs ``folder`` lists, in name order; a damaged folder is deleted and named in a
    GlobalrepError (the next run redraws it)."""
    folder = Path(folder)
    problem = damaged(folder, check_digests=True)
    if problem:
        shutil.rmtree(folder, ignore_errors=True)
        raise GlobalrepError(f"{problem}. The folder was deleted: run snakemake again and it is redrawn")
    listing = json.loads((folder / NAME).read_text(encoding="utf-8"))["files"]
    return [folder / name for name in sorted(listing) if name.endswith(".png")]
