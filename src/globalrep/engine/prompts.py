"""Turning a request's prompt into the exact text a model sees, and that text into token ids.

A model's ``chat_template`` decides how a :class:`Chat` is written: ``true``, the tokenizer's own
template; ``false``, plain ``Role: content`` turns; a built-in format's name or a Jinja file (see
:mod:`globalrep.chat_formats`), that template rendered by transformers' chat-template machinery.
"""

from __future__ import annotations

from globalrep.chat_formats import template_source
from globalrep.engine.requests import Chat, Prompt

# Without a chat template, turns are written in the plain style of the paper's prompts.
PLAIN_ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}

ChatTemplate = bool | str


def _plain(chat: Chat) -> str:
    """``Role: content`` turns; an open turn ends with the assistant's ``assistant_prefix``."""
    turns = [f"{PLAIN_ROLE_NAMES.get(role, role.title())}: {content}" for role, content in chat.messages]
    if not chat.messages or chat.messages[-1][0] != "assistant":
        turns.append("Assistant: " + chat.assistant_prefix)
    return "\n\n".join(turns)


def is_chat_format(chat_template: ChatTemplate) -> bool:
    """Whether ``chat_template`` names a chat format (a built-in name or a file), not true/false."""
    return isinstance(chat_template, str)


def render(prompt: Prompt, tokenizer, chat_template: ChatTemplate) -> str:
    """Raw strings pass through; chats are written as ``chat_template`` says (module docstring).

    A chat that ends with a user turn gets the template's generation prompt followed by
    ``assistant_prefix``; one that ends with the assistant's turn (reward requests) is rendered
    whole.
    """
    if isinstance(prompt, str):
        return prompt
    if chat_template is False:
        return _plain(prompt)
    messages = [{"role": role, "content": content} for role, content in prompt.messages]
    open_turn = not messages or messages[-1]["role"] != "assistant"
    if is_chat_format(chat_template):
        from transformers.utils.chat_template_utils import render_jinja_template

        rendered, _ = render_jinja_template(
            [messages], chat_template=template_source(chat_template), add_generation_prompt=open_turn
        )
        text = rendered[0]
    else:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=open_turn)
    return text + prompt.assistant_prefix


def render_context(context: Prompt, tokenizer, chat_template: ChatTemplate) -> str:
    """A log-likelihood request's context text. A chat's rendered context ends without trailing
    whitespace (e.g. the space or newline a format puts before a reply that starts with the
    scored text): the continuations bring their own leading space, as the paper cut its
    contexts."""
    text = render(context, tokenizer, chat_template)
    return text if isinstance(context, str) else text.rstrip()


def encode_many(texts: list[str], tokenizer, always_add_special_tokens: bool = False) -> list[list[int]]:
    """Token ids of each text, in one batched tokenizer call per case (a call costs far more than
    a text). The tokenizer's default special tokens (e.g. BOS) are added, except, by default, to
    texts that already start with the BOS token (a tokenizer's own chat template writes it).
    ``always_add_special_tokens`` adds them to every text, as the paper tokenized its chat
    formats: a text that starts with ``<s>`` then gets a second BOS."""
    bos = tokenizer.bos_token
    starts_with_bos = [not always_add_special_tokens and bool(bos) and text.startswith(bos) for text in texts]
    ids: list[list[int]] = [[] for _ in texts]
    for has_bos in (False, True):
        indices = [i for i, flag in enumerate(starts_with_bos) if flag == has_bos]
        if indices:
            encoded = tokenizer([texts[i] for i in indices], add_special_tokens=not has_bos)["input_ids"]
            for i, sequence in zip(indices, encoded):
                ids[i] = list(sequence)
    return ids


def encode(text: str, tokenizer, always_add_special_tokens: bool = False) -> list[int]:
    """Token ids of one text (see :func:`encode_many`)."""
    return encode_many([text], tokenizer, always_add_special_tokens)[0]
