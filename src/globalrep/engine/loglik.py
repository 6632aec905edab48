"""Log-likelihood of continuations, all continuations of a context in one packed forward.

A packed row is the context's tokens followed by the tokens of several continuations. A 4D
attention mask lets each continuation see the context prefix it shares and its own earlier
tokens, never another continuation; its position ids restart where its prefix ends. So a row
gives exactly the numbers of one forward per continuation, while the context is computed once.

Tokenization follows the rule "tokenize context + continuation together and split at the
context boundary": a continuation's tokens start at the first token where the joint encoding
differs from the context's own encoding (BPE may merge across the boundary).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from globalrep.errors import GlobalrepError


@dataclass(frozen=True)
class Continuation:
    """Where one continuation sits: its shared context prefix length and its own tokens."""

    prefix_len: int
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class TokenizedRequest:
    context: tuple[int, ...]
    continuations: tuple[Continuation, ...]


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def tokenize_request(encode_many, context: str, continuations: Sequence[str]) -> TokenizedRequest:
    """``encode_many(texts) -> ids per text`` encodes the context and each context + continuation,
    in one call."""
    context_ids, *joints = encode_many([context] + [context + c for c in continuations])
    parts = []
    for continuation, joint in zip(continuations, joints):
        prefix_len = common_prefix_len(context_ids, joint)
        if prefix_len == 0 and len(joint) > 0 and context_ids:
            raise GlobalrepError(
                f"cannot score continuation {continuation!r} after context {context!r}: the context's "
                "only token merges with the continuation's first one, so nothing is left to predict it "
                "from; end the context at a word boundary (e.g. with a space) or use a tokenizer with a BOS token"
            )
        if prefix_len == 0 and len(joint) > 0:
            raise GlobalrepError(
                f"cannot score continuation {continuation!r}: with an empty context and no BOS token, "
                "its first token has nothing to be predicted from"
            )
        parts.append(Continuation(prefix_len, tuple(joint[prefix_len:])))
    return TokenizedRequest(tuple(context_ids), tuple(parts))


def fit_window(request: TokenizedRequest, window: int | None, keep_first: bool) -> tuple[TokenizedRequest, int]:
    """``request`` with its context shortened from the left so that the context prefix plus the
    longest continuation fits the model's ``window`` (its position embeddings), and how many
    context tokens were dropped (0 when it fits). ``keep_first`` keeps a leading BOS token. A
    continuation that does not fit with one context token before it is an error."""
    needed = max((c.prefix_len + len(c.tokens) for c in request.continuations), default=0)
    if window is None or needed <= window:
        return request, 0
    cut = needed - window
    start = int(keep_first)
    if any(c.prefix_len - cut <= start for c in request.continuations):
        longest = max(len(c.tokens) for c in request.continuations)
        raise GlobalrepError(
            f"a continuation of {longest} tokens does not fit the model's window of {window} tokens "
            "with any of its context before it; use a model with a longer window or shorter answers"
        )
    context = request.context[:start] + request.context[start + cut :]
    continuations = tuple(Continuation(c.prefix_len - cut, c.tokens) for c in request.continuations)
    return TokenizedRequest(context, continuations), cut


@dataclass(frozen=True)
class PackedRow:
    """One sequence of the batch: a context and a chunk of its continuations."""

    request_index: int
    continuation_indices: tuple[int, ...]
    tokens: tuple[int, ...]
    positions: tuple[int, ...]
    # Per continuation: its row offset, prefix length and token count.
    segments: tuple[tuple[int, int, int], ...]


def pack_rows(requests: Sequence[TokenizedRequest], max_row_tokens: int) -> list[PackedRow]:
    """Continuations of each request packed after their context, several rows per request when
    they exceed ``max_row_tokens`` (the context is then repeated, never truncated)."""
    rows = []
    for request_index, request in enumerate(requests):
        context = request.context
        chunk: list[int] = []
        length = len(context)
        for index, continuation in enumerate(request.continuations):
            if chunk and length + len(continuation.tokens) > max_row_tokens:
                rows.append(_make_row(request_index, request, chunk))
                chunk, length = [], len(context)
            chunk.append(index)
            length += len(continuation.tokens)
        if chunk:
            rows.append(_make_row(request_index, request, chunk))
    return rows


def _make_row(request_index: int, request: TokenizedRequest, chunk: list[int]) -> PackedRow:
    tokens = list(request.context)
    positions = list(range(len(request.context)))
    segments = []
    for index in chunk:
        continuation = request.continuations[index]
        segments.append((len(tokens), continuation.prefix_len, len(continuation.tokens)))
        tokens.extend(continuation.tokens)
        positions.extend(range(continuation.prefix_len, continuation.prefix_len + len(continuation.tokens)))
    return PackedRow(request_index, tuple(chunk), tuple(tokens), tuple(positions), tuple(segments))


def _batch_mask(rows: Sequence[PackedRow], length: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive (batch, 1, length, length) mask for rows left-padded to ``length``: 0 where a
    query may attend a key, the dtype's minimum elsewhere. A query sees earlier positions of its
    own segment (the context, or its own continuation) and, for a continuation, the context
    prefix it shares. Padding forms its own segment, so no softmax row is empty (NaN)."""
    segment = torch.full((len(rows), length), -1, dtype=torch.long)  # -1: padding
    visible_prefix = torch.zeros((len(rows), length), dtype=torch.long)
    offset_in_row = torch.arange(length).repeat(len(rows), 1)
    for i, row in enumerate(rows):
        pad = length - len(row.tokens)
        offset_in_row[i] -= pad
        segment[i, pad : pad + row.segments[0][0]] = 0
        for index, (offset, prefix_len, count) in enumerate(row.segments, start=1):
            segment[i, pad + offset : pad + offset + count] = index
            visible_prefix[i, pad + offset : pad + offset + count] = prefix_len
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    same_segment = segment[:, :, None] == segment[:, None, :]
    shared_prefix = (segment[:, None, :] == 0) & (offset_in_row[:, None, :] < visible_prefix[:, :, None])
    allowed = causal & (same_segment | shared_prefix)
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def _targets(row: PackedRow) -> tuple[list[int], list[int], list[int]]:
    """For every continuation token: the row position whose logits predict it, the token, and
    which of the row's continuations it belongs to."""
    predictor, target, owner = [], [], []
    for slot, (offset, prefix_len, count) in enumerate(row.segments):
        for j in range(count):
            predictor.append(prefix_len - 1 if j == 0 else offset + j - 1)
            target.append(row.tokens[offset + j])
            owner.append(slot)
    return predictor, target, owner


@torch.no_grad()
def score_rows(model, rows: Sequence[PackedRow], pad_id: int, device: torch.device) -> list[list[float]]:
    """One forward over a batch of packed rows, left-padded so that every row ends at the last
    column; per row, the summed log-probability of each of its continuations."""
    length = max(len(row.tokens) for row in rows)
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, length - len(row.tokens) :] = torch.tensor(row.tokens)
        position_ids[i, length - len(row.tokens) :] = torch.tensor(row.positions)
    mask = _batch_mask(rows, length, model.dtype)

    # Predictor positions in padded coordinates; only the tail that holds them needs logits.
    targets = []
    for row in rows:
        predictor, target, owner = _targets(row)
        pad = length - len(row.tokens)
        targets.append(([pad + p for p in predictor], target, owner))
    first_needed = min((min(predictor, default=length - 1) for predictor, _, _ in targets))
    logits = model(
        input_ids=input_ids.to(device),
        attention_mask=mask.to(device),
        position_ids=position_ids.to(device),
        logits_to_keep=length - first_needed,
    ).logits
    log_probs = torch.log_softmax(logits.float(), dim=-1)

    results = []
    for i, (predictor, target, owner) in enumerate(targets):
        picked = log_probs[i, torch.tensor(predictor, dtype=torch.long) - first_needed,
                           torch.tensor(target, dtype=torch.long)]
        sums = torch.zeros(len(rows[i].segments), dtype=torch.float64)
        sums.index_add_(0, torch.tensor(owner, dtype=torch.long), picked.double().cpu())
        results.append(sums.tolist())
    return results


@torch.no_grad()
def loglik_one_forward_per_continuation(model, request: TokenizedRequest, device: torch.device) -> list[float]:
    """The reference (and the paper's method): one unbatched forward per continuation."""
    sums = []
    for continuation in request.continuations:
        ids = list(request.context[: continuation.prefix_len]) + list(continuation.tokens)
        logits = model(input_ids=torch.tensor([ids], device=device)).logits[0]
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        start = continuation.prefix_len
        picked = log_probs[torch.arange(start - 1, len(ids) - 1), torch.tensor(ids[start:], device=device)]
        sums.append(picked.double().sum().item())
    return sums
