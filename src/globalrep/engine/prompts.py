"""Turning a request's prompt into the exact text a model sees."""

from __future__ import annotations

from globalrep.engine.requests import Chat, Prompt

# Without a chat template, turns are written in the plain style of the paper's prompts.
PLAIN_ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}


def _plain(chat: Chat) -> str:
    """``Role: content`` turns; an open turn ends with the assistant's ``assistant_prefix``."""
    turns = [f"{PLAIN_ROLE_NAMES.get(role, role.title())}: {content}" for role, content in chat.messages]
    if not chat.messages or chat.messages[-1][0] != "assistant":
        turns.append("Assistant: " + chat.assistant_prefix)
    return "\n\n".join(turns)


def render(prompt: Prompt, tokenizer, use_chat_template: bool) -> str:
    """Raw strings pass through; chats use the tokenizer's template when the model has one.

    A chat that ends with a user turn gets the template's generation prompt followed by
    ``assistant_prefix``; one that ends with the assistant's turn (reward requests) is rendered
    whole.
    """
    if isinstance(prompt, str):
        return prompt
    if not use_chat_template:
        return _plain(prompt)
    messages = [{"role": role, "content": content} for role, content in prompt.messages]
    open_turn = not messages or messages[-1]["role"] != "assistant"
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=open_turn)
    return text + prompt.assistant_prefix


def encode_many(texts: list[str], tokenizer) -> list[list[int]]:
    """Token ids of each text, in one batched tokenizer call per case (a call costs far more than
    a text). Chat-template output already holds its special tokens (e.g. BOS), so they are only
    added to texts that do not start with the BOS token."""
    bos = tokenizer.bos_token
    starts_with_bos = [bool(bos) and text.startswith(bos) for text in texts]
    ids: list[list[int]] = [[] for _ in texts]
    for has_bos in (False, True):
        indices = [i for i, flag in enumerate(starts_with_bos) if flag == has_bos]
        if indices:
            encoded = tokenizer([texts[i] for i in indices], add_special_tokens=not has_bos)["input_ids"]
            for i, sequence in zip(indices, encoded):
                ids[i] = list(sequence)
    return ids


def encode(text: str, tokenizer) -> list[int]:
    """Token ids of one text (see :func:`encode_many`)."""
    return encode_many([text], tokenizer)[0]
