"""config/README.md's option tables, rendered from the assembled config schema's descriptions.

The schema (:func:`globalrep.config_schema.assemble`) is the one place each key's type, default
and meaning are stated; config/README.md keeps its prose and, between marker comments, the
tables this module writes:

- ``<!-- options:PATH -->`` ... ``<!-- /options -->``: one row per key of the object at ``PATH``
  (``models``, ``engine``, ``tasks.<task>``): key, type or allowed values, default, description;
- ``<!-- values:PATH -->`` ... ``<!-- /values -->``: the allowed values of the list at ``PATH``
  (``dialects``), in the schema's order.

``python -m globalrep.config_docs --write`` rewrites the file; ``--check`` exits 1 when it differs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from globalrep import config_schema
from globalrep.errors import GlobalrepError

# This checkout's files: the page it writes and the workflow's top-level schema.
CHECKOUT = Path(__file__).resolve().parents[2]
CONFIG_README = CHECKOUT / "config" / "README.md"
TOP_LEVEL_SCHEMA = CHECKOUT / "workflow" / "schemas" / "config.schema.yaml"
WRITE_COMMAND = "python -m globalrep.config_docs --write"

BLOCK = re.compile(r"<!-- (options|values):([\w.]+) -->\n.*?<!-- /\1 -->", re.S)


def _resolve(schema: Mapping, node: Mapping) -> dict:
    """``node`` with its ``$ref`` (``#/$defs/...``) merged in; the node's own keys win."""
    if "$ref" not in node:
        return dict(node)
    target = schema
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(schema, target), **{k: v for k, v in node.items() if k != "$ref"}}


def _node_at(schema: Mapping, path: str) -> dict:
    """The schema of the config value at dotted ``path``; a map of named entries (``models``)
    gives the schema of one entry."""
    node = _resolve(schema, schema)
    for part in path.split("."):
        properties = node.get("properties", {})
        if part not in properties:
            raise GlobalrepError(f"{CONFIG_README}: no config key {path!r} in the schema (marker <!-- ...:{path} -->)")
        node = _resolve(schema, properties[part])
    entry = node.get("additionalProperties")
    if "properties" not in node and isinstance(entry, Mapping):
        node = _resolve(schema, entry)
    return node


def _code(value) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`[" + ", ".join(str(item) for item in value) + "]`"
    if isinstance(value, dict):
        return "`" + json.dumps(value) + "`"
    return f"`{value}`"


def type_text(schema: Mapping, node: Mapping) -> str:
    """A key's type or allowed values, as the tables write it: ``int ≥ 1``, `` `a` | `b` ``, ..."""
    node = _resolve(schema, node)
    if "enum" in node:
        return " | ".join(_code(value) for value in node["enum"])
    if "const" in node:
        return _code(node["const"])
    if "oneOf" in node:
        return " or ".join(type_text(schema, option) for option in node["oneOf"])
    kind = node.get("type")
    if kind in ("integer", "number"):
        text = "int" if kind == "integer" else "number"
        if "minimum" in node:
            text += f" ≥ {node['minimum']}"
        return text
    if kind == "boolean":
        return "bool"
    if kind == "array":
        items = _resolve(schema, node.get("items", {}))
        exactly = node.get("minItems")
        count = f"{exactly} " if exactly is not None and exactly == node.get("maxItems") else ""
        if "enum" in items:
            return f"list of {count or 'any '}of " + ", ".join(_code(value) for value in items["enum"])
        return f"list of {count}{type_text(schema, items)}s"
    if kind == "object":
        names = node.get("propertyNames", {}).get("enum")
        if not names:
            return "map"
        values = node.get("additionalProperties")
        to = f" to {type_text(schema, values)}" if isinstance(values, Mapping) else ""
        return f"map from {', '.join(_code(name) for name in names)}{to}"
    return str(kind)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", r"\|")


def _rows(schema: Mapping, node: Mapping, prefix: str = "") -> list[str]:
    rows = []
    required = set(node.get("required", ()))
    for key, spec in node.get("properties", {}).items():
        spec = _resolve(schema, spec)
        default = "required" if key in required else _code(spec["default"]) if "default" in spec else "unset"
        rows.append(
            f"| `{prefix}{key}` | {_cell(type_text(schema, spec))} | {_cell(default)} | {_cell(spec.get('description', ''))} |"
        )
        entry = spec.get("additionalProperties")
        if isinstance(entry, Mapping) and "properties" in _resolve(schema, entry):
            rows += _rows(schema, _resolve(schema, entry), f"{prefix}{key}.<name>.")
    return rows


def options_table(schema: Mapping, path: str) -> str:
    """The Markdown table of the keys of the config object at ``path``."""
    header = ["| key | type | default | meaning |", "|---|---|---|---|"]
    return "\n".join(header + _rows(schema, _node_at(schema, path)))


def values_list(schema: Mapping, path: str) -> str:
    """The allowed values of the config list at ``path``, comma-separated, in the schema's order."""
    items = _resolve(schema, _node_at(schema, path).get("items", {}))
    if "enum" not in items:
        raise GlobalrepError(
            f"{CONFIG_README}: config key {path!r} has no list of allowed values (marker <!-- values:{path} -->)"
        )
    return ", ".join(_code(value) for value in items["enum"]) + "."


def render(text: str, schema: Mapping) -> str:
    """``text`` (config/README.md) with every marked block rewritten from ``schema``. Every task
    needs an options block, so a new task cannot go undocumented."""
    blocks = {(kind, path) for kind, path in BLOCK.findall(text)}
    missing = [
        task for task in schema["properties"]["tasks"]["properties"] if ("options", f"tasks.{task}") not in blocks
    ]
    if missing:
        raise GlobalrepError(
            f"{CONFIG_README}: no options table for task(s) {', '.join(missing)}; add a section with "
            f"'<!-- options:tasks.NAME -->' and '<!-- /options -->' lines, then run {WRITE_COMMAND}"
        )

    def block(match: re.Match) -> str:
        kind, path = match.groups()
        body = options_table(schema, path) if kind == "options" else values_list(schema, path)
        return f"<!-- {kind}:{path} -->\n{body}\n<!-- /{kind} -->"

    return BLOCK.sub(block, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m globalrep.config_docs", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite config/README.md's tables")
    action.add_argument("--check", action="store_true", help="exit 1 when config/README.md is not up to date")
    args = parser.parse_args(argv)
    current = CONFIG_README.read_text(encoding="utf-8")
    rendered = render(current, config_schema.assemble(TOP_LEVEL_SCHEMA))
    if args.write:
        if rendered != current:
            CONFIG_README.write_text(rendered, encoding="utf-8")
        return 0
    if rendered != current:
        print(f"{CONFIG_README} is not what the schema gives; run {WRITE_COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
