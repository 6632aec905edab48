"""Named chat formats: Jinja chat templates shipped as package data (``{name}.jinja`` here).

A model entry's ``chat_template`` is ``true`` (the tokenizer's own template), ``false`` (plain
``User:``/``Assistant:`` turns), the name of one of these formats, or the path of a Jinja chat
template file. The formats pin what the paper actually rendered for each model (see
config/paper.yaml); they are rendered by transformers' own chat-template machinery.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from globalrep.errors import GlobalrepError


def builtin_names() -> list[str]:
    """The names of the built-in formats."""
    return sorted(
        entry.name.removesuffix(".jinja")
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(".jinja")
    )


def template_source(chat_template: str, where: str = "chat_template") -> str:
    """The Jinja source of a built-in format's name or of a template file's path; ``where`` names
    the config key for the error."""
    builtin = resources.files(__name__) / f"{chat_template}.jinja"
    if builtin.is_file():
        return builtin.read_text(encoding="utf-8")
    path = Path(chat_template).expanduser()
    if path.is_file():
        return path.read_text(encoding="utf-8")
    raise GlobalrepError(
        f"{where}: {chat_template!r} is neither a built-in chat format ({', '.join(builtin_names())}) "
        "nor an existing Jinja template file; give one of those names, a file's path, true or false"
    )
