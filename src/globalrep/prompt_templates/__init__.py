"""Task prompt templates: the text a task puts before what the model answers or continues.

Each instruction task (md3_taboo, belebele, tydiqa_goldp, global_opinions) renders its prompt
from a Jinja template: its default ships here (``{task}.jinja``); config key
``tasks.{task}.prompt_template`` names a file of the user's instead, so any wording runs, the
paper's included. A template ends exactly where the scored continuation or the generation
starts: continuations are appended as they are (``(A)`` after ``the answer is: ``, a word right
after ``Secret Word:``), so the template's last characters decide the spacing.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from globalrep.errors import GlobalrepError

# Templates are text the user controls: a sandbox, and a typo in a field name is an error.
_ENVIRONMENT = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)


def template_text(task: str, options: dict) -> str:
    """The Jinja source of ``task``'s prompt: the file ``options['prompt_template']``, or the
    task's default."""
    path = options.get("prompt_template")
    if not path:
        return resources.files(__name__).joinpath(f"{task}.jinja").read_text(encoding="utf-8")
    return user_template_text(path, f"tasks.{task}.prompt_template")


def user_template_text(path: str, key: str) -> str:
    """The text of a user's template file; ``key`` names the config key for the error."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise GlobalrepError(f"prompt template {path!r} (config key '{key}') does not exist; give a Jinja file's path")
    return file.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=32)
def _compile(text: str, where: str) -> jinja2.Template:
    try:
        return _ENVIRONMENT.from_string(text)
    except jinja2.TemplateSyntaxError as error:
        raise GlobalrepError(f"{where}: not a valid Jinja template (line {error.lineno}: {error.message})") from None


def prompt_renderer(task: str, options: dict):
    """A function ``fields -> prompt text`` for ``task`` with ``options``."""
    where = f"prompt template of task {task!r} ({options.get('prompt_template') or 'default'})"
    template = _compile(template_text(task, options), where)

    def render(**fields) -> str:
        try:
            return template.render(**fields)
        except jinja2.UndefinedError as error:
            raise GlobalrepError(
                f"{where}: {error.message}; the task's fields are {', '.join(sorted(fields))}"
            ) from None
        except jinja2.exceptions.SecurityError as error:
            raise GlobalrepError(
                f"{where}: refused by Jinja's sandbox ({error}); nothing it asked for ran. Use a template "
                "that only writes the task's fields"
            ) from None

    return render
