"""Log-likelihood of continuations: a shard's shared prefixes forwarded once, in tree-packed rows.

The sequences that one forward per continuation would run (a context prefix, then the
continuation's tokens) are merged into a prefix trie over all requests of a shard: items that
share an instruction, a passage or a question share those nodes. The trie is cut into rows; a 4D
attention mask lets each token see exactly its ancestors in the trie and its position id is its
depth, so a row gives exactly the numbers of one forward per continuation while every shared
prefix is computed once (plus the short ancestor path a row repeats when the trie spans rows).

Tokenization follows the rule "tokenize context + continuation together and split at the
context boundary": a continuation's tokens start at the first token where the joint encoding
differs from the context's own encoding (BPE may merge across the boundary).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from globalrep.engine.batching import run_batched
from globalrep.engine.memory import longest_row
from globalrep.engine.tree_attention import CHUNK, plan_blocks, tree_attention
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


def item_level_tokens(requests: Sequence[TokenizedRequest]) -> int:
    """Tokens that packing each request on its own forwards: its context once, then every
    continuation's tokens."""
    return sum(len(r.context) + sum(len(c.tokens) for c in r.continuations) for r in requests)


@dataclass(frozen=True)
class PrefixTrie:
    """Every sequence that one forward per continuation would run (a context prefix and the
    continuation's tokens), merged into one prefix tree. A node is one token after one exact
    token prefix, so its hidden states and logits are the same in whichever row computes them."""

    tokens: list[int]
    parents: list[int]  # -1 for a first token
    depths: list[int]  # the node's position id: how many tokens precede it on its path
    # Per request, per continuation: the nodes of its own tokens, whose log-probabilities it sums.
    continuation_nodes: list[list[list[int]]]


def build_trie(requests: Sequence[TokenizedRequest], share_across_requests: bool = True) -> PrefixTrie:
    """The trie of ``requests``; with ``share_across_requests`` false, each request gets its own
    subtree (item-level packing: prefixes are shared only within a request)."""
    trie = PrefixTrie([], [], [], [])
    index: dict[tuple[int, int], int] = {}

    def child(parent: int, token: int) -> int:
        node = index.get((parent, token))
        if node is None:
            node = index[(parent, token)] = len(trie.tokens)
            trie.tokens.append(token)
            trie.parents.append(max(parent, -1))
            trie.depths.append(trie.depths[parent] + 1 if parent >= 0 else 0)
        return node

    for number, request in enumerate(requests):
        root = -1 if share_across_requests else -1 - number  # a distinct (negative) root per request
        # Only the part of the context that some continuation follows: a token absorbed by a
        # boundary merge is never forwarded by the oracle either.
        context_nodes, node = [], root
        for token in request.context[: max((c.prefix_len for c in request.continuations), default=0)]:
            node = child(node, token)
            context_nodes.append(node)
        per_continuation = []
        for continuation in request.continuations:
            node = context_nodes[continuation.prefix_len - 1] if continuation.prefix_len else root
            own = []
            for token in continuation.tokens:
                node = child(node, token)
                own.append(node)
            per_continuation.append(own)
        trie.continuation_nodes.append(per_continuation)
    return trie


def _depth_first(trie: PrefixTrie) -> tuple[list[int], list[int]]:
    """The nodes in depth-first pre-order (children in insertion order) and each node's subtree size."""
    children: list[list[int]] = [[] for _ in trie.tokens]
    roots = []
    for node, parent in enumerate(trie.parents):
        (children[parent] if parent >= 0 else roots).append(node)
    order, stack = [], roots[::-1]
    while stack:  # iterative: a trie is as deep as the model's window
        node = stack.pop()
        order.append(node)
        stack.extend(reversed(children[node]))
    sizes = [1] * len(order)
    for node in reversed(order):
        if trie.parents[node] >= 0:
            sizes[trie.parents[node]] += sizes[node]
    return order, sizes


@dataclass(frozen=True)
class TreeRow:
    """One sequence of a batch: a part of the trie that holds every ancestor of its nodes.

    Columns may be in any order, since the mask and the position ids say where each token sits:
    the nodes whose logits predict a continuation token come last (``n_predictors`` columns), so
    that only that tail goes through the LM head. ``ranks`` and ``ends`` place each column in the
    row's depth-first order: a key column is an ancestor of (or is) a query column exactly when
    ``ranks[key] <= ranks[query] < ends[key]``."""

    nodes: tuple[int, ...]  # the trie node of each column
    tokens: tuple[int, ...]
    positions: tuple[int, ...]
    ranks: tuple[int, ...]
    ends: tuple[int, ...]
    carried: int  # columns that repeat ancestors of the row's first node (owned by an earlier row)
    n_predictors: int
    # Per scored token: its predictor's index among the tail columns, the token, its trie node.
    targets: tuple[tuple[int, int, int], ...]


def pack_tree_rows(trie: PrefixTrie, max_row_tokens: int) -> list[TreeRow]:
    """The trie cut into rows of at most ``max_row_tokens`` tokens (or the longest path, if
    longer), plus at most 1/``OVERFLOW_SHARE`` of that for a row that holds one subtree whole.

    Rows take consecutive runs of the depth-first order, whole subtrees where they fit: a subtree
    that does not fit the current row starts the next one, where it may overflow the budget by up
    to 1/``OVERFLOW_SHARE``; one that does not fit even so has its top node placed and its
    children considered in turn. A row repeats
    the path above its first node (its ancestors), so every token sees its full context; cutting
    before whole subtrees keeps that path short (on Belebele: the shared instruction). Every
    node's logits come from the one row that owns it, so a cut changes no number. Rows that would
    predict nothing are not forwarded."""
    order, sizes = _depth_first(trie)
    scored = dict.fromkeys(
        node for per_continuation in trie.continuation_nodes for nodes in per_continuation for node in nodes
    )
    scored_children: dict[int, list[int]] = {}
    for node in scored:
        scored_children.setdefault(trie.parents[node], []).append(node)
    budget = max(max_row_tokens, max(trie.depths, default=0) + 1)
    overflow = longest_row(budget)  # what a fresh row may hold to keep a subtree whole
    rows, start, i = [], 0, 0
    while i < len(order):
        node = order[i]
        used = trie.depths[order[start]] + i - start  # carried ancestors + nodes taken
        if used + sizes[node] <= (overflow if i == start else budget):
            i += sizes[node]
        elif i > start and (trie.depths[node] + sizes[node] <= overflow or used >= budget):
            rows.append(_tree_row(trie, order[start:i], scored_children))
            start = i
        else:
            i += 1
    if start < len(order):
        rows.append(_tree_row(trie, order[start:], scored_children))
    return [row for row in rows if row.targets]


def _tree_row(trie: PrefixTrie, owned: list[int], scored_children: dict[int, list[int]]) -> TreeRow:
    carried = []
    node = trie.parents[owned[0]]
    while node >= 0:
        carried.append(node)
        node = trie.parents[node]
    nodes = carried[::-1] + owned  # a depth-first order of the row's nodes
    rank = {node: r for r, node in enumerate(nodes)}
    ends = list(range(1, len(nodes) + 1))
    for r in range(len(nodes) - 1, -1, -1):  # descendants come after their ancestors
        parent = trie.parents[nodes[r]]
        if parent >= 0:
            ends[rank[parent]] = max(ends[rank[parent]], ends[r])
    predictor = [r >= len(carried) and nodes[r] in scored_children for r in range(len(nodes))]
    columns = [r for r in range(len(nodes)) if not predictor[r]] + [r for r in range(len(nodes)) if predictor[r]]
    predictors = [nodes[r] for r in columns if predictor[r]]
    targets = tuple(
        (index, trie.tokens[child], child) for index, node in enumerate(predictors) for child in scored_children[node]
    )
    column_nodes = [nodes[r] for r in columns]
    return TreeRow(
        tuple(column_nodes),
        tuple(trie.tokens[n] for n in column_nodes),
        tuple(trie.depths[n] for n in column_nodes),
        tuple(columns),
        tuple(ends[r] for r in columns),
        len(carried),
        len(predictors),
        targets,
    )


def _ranks_and_ends(rows: Sequence[TreeRow], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, length) depth-first ranks and subtree ends of rows left-padded to ``length``: key
    k may be seen by query q exactly when ``ranks[k] <= ranks[q] < ends[k]``. A padding column
    sees only itself, so no softmax row is empty (NaN) and padding adds no keys to a block."""
    ranks = torch.arange(length).repeat(len(rows), 1)
    ends = ranks + 1
    for i, row in enumerate(rows):
        pad = length - len(row.tokens)
        ranks[i, pad:] = torch.tensor(row.ranks) + pad
        ends[i, pad:] = torch.tensor(row.ends) + pad
    return ranks, ends


def _tree_mask(rows: Sequence[TreeRow], length: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive (batch, 1, length, length) mask for rows left-padded to ``length``: 0 where a
    query may attend a key (the key is the query or one of its ancestors in the trie), the
    dtype's minimum elsewhere."""
    ranks, ends = _ranks_and_ends(rows, length)
    query, key = ranks[:, :, None], ranks[:, None, :]
    allowed = (key <= query) & (query < ends[:, None, :])
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def tree_batch_inputs(rows: Sequence[TreeRow], pad_id: int, dtype: torch.dtype, tree_blocks: bool) -> dict:
    """The forward's arguments for a batch of rows, left-padded so that every row ends at the last
    column: ids, positions, how many tail logits to keep, and either the block plan of
    :mod:`globalrep.engine.tree_attention` (``tree_blocks``) or a dense 4D mask."""
    length = max(len(row.tokens) for row in rows)
    if tree_blocks:  # whole query blocks
        length = -(-length // CHUNK) * CHUNK
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, length - len(row.tokens) :] = torch.tensor(row.tokens)
        position_ids[i, length - len(row.tokens) :] = torch.tensor(row.positions)
    inputs = {"input_ids": input_ids, "position_ids": position_ids, "logits_to_keep": max(r.n_predictors for r in rows)}
    if tree_blocks:
        inputs["tree_blocks"] = plan_blocks(*_ranks_and_ends(rows, length), dtype)
    else:
        inputs["attention_mask"] = _tree_mask(rows, length, dtype)
    return inputs


@torch.no_grad()
def score_tree_rows(
    model, rows: Sequence[TreeRow], pad_id: int, device: torch.device, tree_blocks: bool = False
) -> list[list[float]]:
    """One forward over a batch of rows (:func:`tree_batch_inputs`); per row, the
    log-probability of each of its targets."""
    inputs = tree_batch_inputs(rows, pad_id, model.dtype, tree_blocks)
    keep = inputs["logits_to_keep"]
    tensors = {key: value if isinstance(value, int) else value.to(device) for key, value in inputs.items()}
    # No cache: it would hold every layer's keys and values of the whole batch.
    logits = model(**tensors, use_cache=False).logits
    results = []
    for i, row in enumerate(rows):
        # One row at a time: the float32 log-softmax over the vocabulary is the largest tensor.
        log_probs = torch.log_softmax(logits[i, keep - row.n_predictors :].float(), dim=-1)
        predictor = torch.tensor([index for index, _, _ in row.targets], dtype=torch.long, device=log_probs.device)
        token = torch.tensor([token for _, token, _ in row.targets], dtype=torch.long, device=log_probs.device)
        results.append(log_probs[predictor, token].tolist())
    return results


@dataclass(frozen=True)
class TokenCounts:
    """What one scoring call forwarded, against the shard's unique (trie) tokens and the tokens
    of item-level packing (each context once, then its continuations)."""

    forwarded: int
    unique: int
    item_level: int
    rows: int

    def __str__(self) -> str:
        unique = max(self.unique, 1)
        return (
            f"{self.forwarded} tokens forwarded in {self.rows} rows, {self.forwarded / unique:.3f}x the "
            f"{self.unique} unique (trie) tokens; item-level packing would forward {self.item_level} "
            f"({self.item_level / unique:.2f}x the trie)"
        )


def score_requests(
    model,
    requests: Sequence[TokenizedRequest],
    max_row_tokens: int,
    batch_size: int,
    pad_id: int,
    device: torch.device,
    description: str,
    progress: bool = True,
    share_across_requests: bool = True,
) -> tuple[list[list[float]], TokenCounts]:
    """Per request, the summed log-probability of each continuation, from the trie of all
    ``requests`` packed into rows and forwarded ``batch_size`` rows at a time (longest first);
    and what that forwarded."""
    trie = build_trie(requests, share_across_requests)
    rows = sorted(pack_tree_rows(trie, max_row_tokens), key=lambda row: -len(row.tokens))
    with tree_attention(model, device) as tree_blocks:
        row_values = run_batched(
            rows,
            batch_size,
            lambda batch: score_tree_rows(model, batch, pad_id, device, tree_blocks),
            description,
            progress,
        )
    node_logprob: dict[int, float] = {}
    for row, values in zip(rows, row_values):
        for (_, _, node), value in zip(row.targets, values):
            node_logprob[node] = value
    logprobs = [
        [sum((node_logprob[node] for node in nodes), 0.0) for nodes in per_continuation]
        for per_continuation in trie.continuation_nodes
    ]
    counts = TokenCounts(sum(len(row.tokens) for row in rows), len(trie.tokens), item_level_tokens(requests), len(rows))
    return logprobs, counts
