"""Fitting a sequence into the model's window by shortening it from the left.

A generation request may name one part of its prompt (a reading passage) as ``truncatable``; when
prompt and new tokens exceed the window, characters are dropped from the start of that part only,
never from the instruction or the question. A reward conversation loses its first tokens (after
BOS), so the reply it ends with is scored. The caller counts the sequences that were cut.
"""

from __future__ import annotations

from collections.abc import Callable

from globalrep.errors import GlobalrepError


def fit_prompt(
    text: str, truncatable: str, encode: Callable[[str], list[int]], limit: int | None, item_id: str
) -> tuple[list[int], bool]:
    """Token ids of ``text`` at most ``limit`` long, and whether it had to be cut.

    The last occurrence of ``truncatable`` in ``text`` loses the fewest leading characters that
    make the prompt fit (a binary search over re-encodings, so the tokenizer's merges at the new
    boundary are accounted for). A prompt that does not fit even without that part is an error.
    """
    ids = encode(text)
    if limit is None or len(ids) <= limit:
        return ids, False
    head, found, tail = text.rpartition(truncatable) if truncatable else ("", "", text)
    if not found:
        raise GlobalrepError(
            f"item {item_id}: the prompt is {len(ids)} tokens, over the {limit} the model's window leaves "
            "for it, and the request names no passage that may be shortened; use a model with a longer window"
        )
    if len(encode(head + tail)) > limit:
        raise GlobalrepError(
            f"item {item_id}: the prompt is over the {limit} tokens the model's window leaves for it even "
            "without its passage; use a model with a longer window or fewer examples"
        )
    low, high = 1, len(truncatable)  # the fewest characters to drop lies in [low, high]
    while low < high:
        middle = (low + high) // 2
        if len(encode(head + truncatable[middle:] + tail)) <= limit:
            high = middle
        else:
            low = middle + 1
    return encode(head + truncatable[high:] + tail), True


def cut_from_left(ids: list[int], window: int | None, keep_first: bool) -> tuple[list[int], int]:
    """``ids`` at most ``window`` long: the tokens after the first ``keep_first`` (a BOS) dropped
    from the left; and how many were dropped."""
    if window is None or len(ids) <= window:
        return ids, 0
    kept = ids[: int(keep_first)]
    return kept + ids[len(ids) - (window - len(kept)) :], len(ids) - window
