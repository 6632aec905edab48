"""The config files as the user wrote them, re-read strictly before Snakemake's config is used.

Snakemake loads config files itself, letting a repeated key silently replace the first one and
expanding YAML aliases without limit. Re-reading each file's node graph (never building Python
objects from it) refuses those, and a file that turns on Snakemake's YTE templating
(``__use_yte__``): its values are Python, evaluated while Snakemake loaded the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import yaml

from globalrep.errors import GlobalrepError

# More values than any real config holds (the paper's has a few hundred), far fewer than an
# alias bomb expands to.
MAX_CONFIG_NODES = 100_000


def check_config_files(paths: Iterable[str | os.PathLike]) -> None:
    """Raise a GlobalrepError naming the file and key of the first repeated key, alias expansion
    past :data:`MAX_CONFIG_NODES` values, or ``__use_yte__``, in any of ``paths``."""
    for path in map(Path, paths):
        try:
            root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # Snakemake has read it already, or says what is wrong with it
        if root is None:
            continue
        _check_keys(path, root, (), set())
        expanded = _expanded_size(path, root, {}, set())
        if expanded > MAX_CONFIG_NODES:
            raise GlobalrepError(
                f"{path}: its aliases (*name) expand to {expanded:,} values, more than the "
                f"{MAX_CONFIG_NODES:,} a config may hold; write the values out instead"
            )
        if isinstance(root, yaml.MappingNode) and any(
            key.value == "__use_yte__" and value.value not in ("false", "False", "no") for key, value in root.value
        ):
            raise GlobalrepError(
                f"{path}: __use_yte__ is refused: a YTE template's values are Python code, and "
                "Snakemake has already run it while loading this file. globalrep configs are plain "
                "data (recorded in the report, hashed into fingerprints): write the values out"
            )


def _key_name(where: tuple[str, ...]) -> str:
    return ".".join(where)


def _check_keys(path: Path, node: yaml.Node, where: tuple[str, ...], seen: set[int]) -> None:
    if id(node) in seen:  # an alias: checked where it was defined
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys = {}
        for key, value in node.value:
            name = str(key.value)
            if name in keys and name != "<<":
                raise GlobalrepError(
                    f"{path}, line {key.start_mark.line + 1}: config key '{_key_name((*where, name))}' "
                    f"is given twice (first on line {keys[name] + 1}); keep one"
                )
            keys[name] = key.start_mark.line
            _check_keys(path, value, (*where, name), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            _check_keys(path, value, (*where[:-1], f"{where[-1]}[{index}]") if where else (f"[{index}]",), seen)


def _expanded_size(path: Path, node: yaml.Node, sizes: dict[int, int], active: set[int]) -> int:
    """How many values ``node`` stands for once every alias is written out."""
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in active:
        raise GlobalrepError(f"{path}, line {node.start_mark.line + 1}: an alias refers to a value that contains it")
    active.add(id(node))
    children = [] if isinstance(node, yaml.ScalarNode) else node.value
    if isinstance(node, yaml.MappingNode):
        children = [value for pair in children for value in pair]
    sizes[id(node)] = 1 + sum(_expanded_size(path, child, sizes, active) for child in children)
    active.discard(id(node))
    return sizes[id(node)]
