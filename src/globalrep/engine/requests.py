"""Typed inference requests and the columns their answers fill.

A task turns its prepared items into requests; an engine backend answers them for one model.
Every request names the item it belongs to and a ``key``: the answers of all requests of one
item become one row of the predictions table, with columns prefixed by the key
(``{key}_logprob``, ``{key}_ntokens``, ``{key}_text``, ``{key}_reward``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from globalrep.errors import GlobalrepError


@dataclass(frozen=True)
class Chat:
    """A conversation to be formatted per model.

    The model's ``chat_template`` formats ``messages`` (see globalrep.engine.prompts): the
    tokenizer's own template, a named chat format or a template file (adding the generation
    prompt when the last message is not the assistant's), or plain ``User:``/``Assistant:`` turns. ``assistant_prefix`` is
    text the assistant's turn starts with (e.g. the reply up to ``{country}``); for a
    log-likelihood request the continuations follow it directly.
    """

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    assistant_prefix: str = ""


# A prompt is either raw text, used as is, or a chat formatted by the model's template.
Prompt = str | Chat


@dataclass(frozen=True)
class LoglikRequest:
    """Log-likelihood of each continuation after ``context``.

    Answer columns: ``{key}_logprob`` (list of summed log-probabilities, natural log) and
    ``{key}_ntokens`` (list of continuation token counts), in the order of ``continuations``.
    An empty continuation gets 0.0 and 0 tokens: producing nothing more has probability 1, so
    its summed log-probability is exactly 0. Its per-token mean is undefined, so no task builds
    one: every task's continuations start with a space or a letter.
    """

    item_id: str
    key: str
    context: Prompt
    continuations: tuple[str, ...]


@dataclass(frozen=True)
class GenerateRequest:
    """Greedy continuation of ``prompt``, cut before the first stop string.

    ``truncatable`` is the part of the prompt (a reading passage) that the engine may shorten from
    the left when prompt and ``max_new_tokens`` exceed the model's window; without it such a
    prompt is an error, never silently cut. Answer column: ``{key}_text``.
    """

    item_id: str
    key: str
    prompt: Prompt
    max_new_tokens: int
    stop: tuple[str, ...] = field(default_factory=tuple)
    truncatable: str = ""


@dataclass(frozen=True)
class RewardRequest:
    """Scalar reward of each conversation (the last message is normally the assistant's).

    Answer column: ``{key}_reward`` (list of floats, in the order of ``conversations``).
    """

    item_id: str
    key: str
    conversations: tuple[Chat, ...]


Request = LoglikRequest | GenerateRequest | RewardRequest


def check_unique_keys(requests) -> None:
    """Two requests of one type with the same ``(item_id, key)`` would write the same answer
    columns, the second silently replacing the first: refuse them."""
    seen = set()
    for request in requests:
        name = (type(request).__name__, request.item_id, request.key)
        if name in seen:
            raise GlobalrepError(
                f"two {name[0]}s for item {request.item_id!r} share the key {request.key!r}: the second "
                "would overwrite the first's answers; give each request of an item its own key"
            )
        seen.add(name)
