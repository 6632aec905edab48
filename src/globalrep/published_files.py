"""Reading the paper's published per-example outputs: the shared rules every task's
``read_published`` hook follows.

A published file is a real file: a value missing for one item (an empty cell, ``nan``, ``NaN``,
``None``) makes that item's answer missing; it is kept as NaN and flagged in the prediction column
``missing_answer`` (see ``globalrep.missing_answers``). A structural problem (a missing column, a
file that cannot be read, a list of the wrong length, a cell that is no number) stops the run,
naming the file and the row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from globalrep.errors import GlobalrepError

# Natural Earth renamed a few countries after the release the paper used; our country list may
# use the new name, the published columns the old one.
OLD_NATURAL_EARTH_NAMES = {
    "Czechia": "Czech Republic",
    "Guinea-Bissau": "Guinea Bissau",
    "Republic of the Congo": "Republic of Congo",
    "eSwatini": "Swaziland",
}
# How the paper's files spell a missing number (pandas' and Python's spellings).
MISSING_SPELLINGS = frozenset(("", "nan", "NaN", "-nan", "None", "null", "NULL", "NA", "N/A", "<NA>"))


def outputs_dir(paper_repo: str | Path) -> Path:
    """The folder of the published outputs: ``outputs/`` of a clone of the paper's repository,
    or ``paper_repo`` itself when it is that folder."""
    repo = Path(paper_repo).expanduser()
    if not repo.is_dir():
        raise GlobalrepError(
            f"paper_repo '{paper_repo}' is not a directory: clone SALT-NLP/unintended-impacts-of-alignment "
            "and give its path as config key 'paper_repo' (snakemake --config paper_repo=PATH)"
        )
    return repo / "outputs" if (repo / "outputs").is_dir() else repo


def country_columns(values: pd.DataFrame, countries: Sequence[str], path: Path) -> pd.DataFrame:
    """``values``' columns for ``countries``, in that order, under their names in our list
    (a country the paper's Natural Earth release named differently is found under that name)."""
    found = {c: c if c in values.columns else OLD_NATURAL_EARTH_NAMES.get(c) for c in countries}
    missing = [c for c, column in found.items() if column not in values.columns]
    if missing:
        raise GlobalrepError(
            f"{path}: no published values for {len(missing)} of our countries ({', '.join(missing[:8])}); "
            "the task's `countries` list must be the paper's or a subset of it"
        )
    return values[[found[c] for c in countries]].set_axis(list(countries), axis=1)


def read_csv(path: Path, what: str, **options) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **options)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise GlobalrepError(f"{path}: cannot be read as {what} ({error.__class__.__name__}: {error})") from None


def read_with(reader: Callable[[Path], pd.DataFrame], path: Path) -> pd.DataFrame:
    try:
        return reader(path)
    except (UnicodeDecodeError, pd.errors.ParserError) as error:
        raise GlobalrepError(f"{path}: cannot be read ({error.__class__.__name__}: {error})") from None


def number(text: str, where: str) -> float:
    """A published number; NaN where the file spells a missing value."""
    text = str(text).strip()
    if text in MISSING_SPELLINGS:
        return float("nan")
    try:
        return float(text)
    except ValueError:
        raise GlobalrepError(f"{where}: not a number: {text[:40]!r}") from None


def numbers(text: str, where: str, count: int) -> list[float]:
    """A published list of ``count`` probabilities (``[0.1, nan, ...]``); all NaN where the whole
    list is missing."""
    text = str(text).strip()
    if text in MISSING_SPELLINGS:
        return [float("nan")] * count
    if not (text.startswith(("[", "(")) and text.endswith(("]", ")"))):
        raise GlobalrepError(f"{where}: expected a list of {count} probabilities, got {text[:80]!r}")
    values = [number(value, where) for value in text[1:-1].split(",") if value.strip()]
    if len(values) != count:
        raise GlobalrepError(f"{where}: expected a list of {count} probabilities, got {text[:80]!r}")
    return values


def column_numbers(column: pd.Series, path: Path) -> pd.Series:
    """A published column of numbers as floats (NaN where missing); a cell that is neither stops."""
    return pd.Series(
        [number(value, f"{path}: row {index} (counting from 0), column {column.name!r}") for index, value in enumerate(column)],
        index=column.index, name=column.name, dtype=float,
    )  # fmt: skip


def log_probs(probs: Sequence[float]) -> list[float]:
    with np.errstate(divide="ignore"):  # a probability of 0 is log 0 = -inf, ranked last
        return np.log(np.asarray(probs, dtype=float)).tolist()
