"""The package's own source code: what a file imports, which globalrep modules a module pulls in,
and a fingerprint of that code (so that a change to a task's metrics reruns its scoring).

A task's scoring fingerprint covers what its scoring runs: the task's module and the modules it
imports, which are never another task's (``tests/test_codebase.py`` keeps it so), plus the shared
statistics and table shapes; not the figure modules. Editing one task reruns no other's scoring."""

from __future__ import annotations

import ast
import hashlib
import sys
from collections.abc import Collection, Iterable
from pathlib import Path

PACKAGE = "globalrep"
PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"
# Besides a task's module, scoring runs the shared statistics and table shapes, never the figure
# modules; figures run the task's module, its figure modules and the notice a task without answers gets.
SCORING_MODULES = ("globalrep.stats", "globalrep.tables")
FIGURE_PACKAGE = "globalrep.figures"
FIGURE_MODULES = ("globalrep.figures.notice",)
# Calls that import a module named by a string: importlib.import_module("x"), find_spec("x").
IMPORTING_CALLS = ("import_module", "find_spec")


def imports_by_scope(path: str | Path) -> dict[str, set[str]]:
    """The absolute module names ``path`` imports, per scope: ``""`` for module level, else the
    top-level function or class whose body imports them. ``from a import b`` gives ``a`` and
    ``a.b`` (``b`` may be a module); ``import_module("a")`` and ``find_spec("a")`` give ``a``."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    scopes: dict[str, set[str]] = {}
    for top in tree.body:
        scope = top.name if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else ""
        names = scopes.setdefault(scope, set())
        for node in ast.walk(top):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Call) and _called_name(node.func) in IMPORTING_CALLS and node.args:
                if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                    names.add(node.args[0].value)
    return scopes


def _called_name(func: ast.expr) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def skipped(name: str, skip: Collection[str]) -> bool:
    """Whether ``name`` is in ``skip`` or inside a module or package named there."""
    return any(name == entry or name.startswith(entry + ".") for entry in skip)


def imported_names(path: str | Path, module: str = "", skip: Collection[str] = ()) -> set[str]:
    """Every module name ``path`` (globalrep module ``module``) imports, at module level or in
    functions, except in the functions named in ``skip`` (``globalrep.stages.infer_shard``)."""
    return {
        name
        for scope, names in imports_by_scope(path).items()
        if not (scope and skipped(f"{module}.{scope}", skip))
        for name in names
    }


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


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
    return ".".join([PACKAGE, *parts[: -1 if parts[-1] == "__init__" else None]])


def package_files(names: Iterable[str], skip: Collection[str] = ()) -> list[Path]:
    """The source files of globalrep modules ``names`` and of every globalrep module they import,
    transitively, sorted; modules and functions named in ``skip`` are not followed."""
    pending = [path for name in names if not skipped(name, skip) and (path := module_file(name))]
    seen: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path, module_name(path), skip):
            found = None if skipped(name, skip) else module_file(name)
            if found:
                pending.append(found)
    return sorted(seen)


def code_fingerprint(names: Iterable[str], skip: Collection[str] = (), data_files: Iterable[Path] = ()) -> str:
    """A short hash of the source of ``names`` and the globalrep modules they import, except the
    modules named in ``skip`` (and theirs), and of the package's ``data_files``."""
    digest = hashlib.sha256()
    for path in [*package_files(names, skip), *sorted(data_files)]:
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def scoring_fingerprint(task_module: str) -> str:
    """The code fingerprint of the scoring of the task module ``task_module``: editing it, or one
    of the package's data files (the paper's country set and orders, MD3's curation, CFMatch's
    classifier), which scoring reads, reruns the task's scoring, figures and report."""
    data_files = (path for path in DATA_DIR.rglob("*") if path.is_file())
    return code_fingerprint([task_module, *SCORING_MODULES], skip=(FIGURE_PACKAGE,), data_files=data_files)


def figure_fingerprint(task_module: str) -> str:
    """The code fingerprint of the figures of the task module ``task_module``: editing it reruns
    the task's figures and the report."""
    return code_fingerprint([task_module, *FIGURE_MODULES])


def third_party_imports(paths: Iterable[str | Path], skip: Collection[str] = ()) -> set[str]:
    """Top-level names of the modules outside the standard library and globalrep that the
    scripts ``paths`` and the globalrep modules they import (transitively) import; ``skip``
    names modules and functions (``globalrep.engine.answer``) that the scripts never run."""
    paths = list(paths)
    names = set().union(*(imported_names(path) for path in paths))
    imports = set(names).union(*(imported_names(path, module_name(path), skip) for path in package_files(names, skip)))
    return {
        top for top in (name.split(".")[0] for name in imports) if top != PACKAGE and top not in sys.stdlib_module_names
    }
