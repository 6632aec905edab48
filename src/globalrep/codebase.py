"""The package's own source code: what a file imports, which globalrep modules a module pulls in,
and a fingerprint of that code (so that a change to a task's metrics reruns its scoring)."""

from __future__ import annotations

import ast
import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "globalrep"
PACKAGE_DIR = Path(__file__).resolve().parent


def imported_names(path: str | Path) -> set[str]:
    """Every absolute module name ``path`` imports, at module level or inside functions; for
    ``from a import b`` both ``a`` and ``a.b`` (``b`` may be a module)."""
    names = set()
    for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_file(name: str) -> Path | None:
    """The source file of globalrep module ``name`` (a package: its ``__init__.py``), or None
    when ``name`` is not one (another package, or a function imported from a module)."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    path = PACKAGE_DIR.joinpath(*name.split(".")[1:])
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def package_files(names: Iterable[str]) -> list[Path]:
    """The source files of globalrep modules ``names`` and of every globalrep module they import,
    transitively, sorted."""
    pending = [path for path in map(module_file, names) if path]
    seen: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        pending.extend(found for found in map(module_file, imported_names(path)) if found)
    return sorted(seen)


def code_fingerprint(names: Iterable[str]) -> str:
    """A short hash of the source of ``names`` and the globalrep modules they import."""
    digest = hashlib.sha256()
    for path in package_files(names):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def third_party_imports(paths: Iterable[str | Path]) -> set[str]:
    """Top-level names of the modules outside the standard library and globalrep that ``paths``
    and the globalrep modules they import (transitively) import."""
    paths = list(paths)
    names = set().union(*(imported_names(path) for path in paths))
    files = [*paths, *package_files(names)]
    tops = {name.split(".")[0] for path in files for name in imported_names(path)}
    return {top for top in tops if top != PACKAGE and top not in sys.stdlib_module_names}
