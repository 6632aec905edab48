"""Attention over tree-packed rows that costs what the tree mask keeps, not the row length squared.

A tree-packed row (``globalrep.engine.loglik``) holds many paths of the prefix trie; a token sees
only its ancestors. In the row's depth-first order those are the path above it, so a block of
``CHUNK`` consecutive queries needs only the keys on the path above the block's first query plus
the block itself: about (trie depth + ``CHUNK``) keys, where a dense 4D mask makes SDPA compute
all row² pairs (on CPU no kernel skips masked blocks of an arbitrary mask). Each query block is
gathered with its keys into one batched ``scaled_dot_product_attention`` call per layer, under
the exact ancestor mask, so every number is what the dense mask gives (to float rounding).

Used on CPU (where it was measured) through transformers' attention interface: while
:func:`tree_attention` is active, the
model's attention implementation is ``globalrep_tree``, which runs the block plan passed to the
forward as ``tree_blocks`` and is plain SDPA otherwise. A batch whose blocks would not halve the
pairs computed (long single paths: a context as long as the window) or would gather more than
``MAX_GATHER`` times its keys runs as one block under the dense mask, so the gathered keys and
values never take more than ``MAX_GATHER`` times a layer's own.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

IMPLEMENTATION = "globalrep_tree"
CHUNK = 64  # queries per block (64, 128 and 256 measured on CPU: BENCHMARKS.md)
MAX_GATHER = 8  # gathered keys per layer at most this many times the batch's keys; else dense


@dataclass(frozen=True)
class TreeBlocks:
    """Which columns each query block reads (indices into the batch flattened to batch x length)."""

    queries: torch.Tensor  # (blocks * chunk,) the block's query columns
    keys: torch.Tensor  # (blocks * n_keys,) the columns its queries may see, padded
    mask: torch.Tensor  # (blocks, 1, chunk, n_keys) additive: 0 where allowed
    chunk: int
    n_keys: int

    def to(self, device) -> TreeBlocks:
        return TreeBlocks(self.queries.to(device), self.keys.to(device), self.mask.to(device), self.chunk, self.n_keys)


def plan_blocks(ranks: torch.Tensor, ends: torch.Tensor, dtype: torch.dtype, chunk: int = CHUNK) -> TreeBlocks:
    """The block plan of a batch given each column's depth-first ``ranks`` and subtree ``ends``
    ((batch, length), ``length`` a multiple of ``chunk``; every rank of a row distinct, padding
    included): key k may be seen by query q exactly when ``ranks[k] <= ranks[q] < ends[k]``."""
    batch, length = ranks.shape
    if length % chunk or length // chunk == 1:
        chunk = length
    blocks = length // chunk
    order = ranks.argsort(dim=1)  # columns in depth-first order
    ends_in_order = ends.gather(1, order)
    # Block i covers ranks [s, e); a key of rank k is an ancestor of one of its queries exactly
    # when k < e and its subtree reaches past s.
    starts = torch.arange(blocks) * chunk
    rank = torch.arange(length)
    needed = (rank[None, None, :] < (starts + chunk)[None, :, None]) & (
        ends_in_order[:, None, :] > starts[None, :, None]
    )
    counts = needed.sum(-1)
    n_keys = int(counts.max())
    if chunk < length and (2 * n_keys > length or blocks * n_keys > MAX_GATHER * length):
        return plan_blocks(ranks, ends, dtype, chunk=length)  # blocks would not halve the pairs
    # The needed keys' ranks first (in order), then padding slots that point at rank 0, masked.
    key_ranks = torch.where(needed, rank, length + rank).sort(dim=-1).values[..., :n_keys]
    valid = key_ranks < length
    key_ranks = torch.where(valid, key_ranks, 0)
    row = torch.arange(batch)[:, None, None]
    key_columns = order[row, key_ranks]
    query_ranks = torch.arange(length).view(blocks, chunk)
    query_columns = order[:, query_ranks]  # (batch, blocks, chunk)
    query_rank = ranks[row, query_columns]  # == query_ranks, broadcast
    allowed = (
        valid[:, :, None, :]
        & (key_ranks[:, :, None, :] <= query_rank[..., None])
        & (query_rank[..., None] < ends[row, key_columns][:, :, None, :])
    )
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
    offset = (torch.arange(batch) * length)[:, None, None]
    return TreeBlocks(
        (query_columns + offset).reshape(-1),
        (key_columns + offset).reshape(-1),
        mask.view(batch * blocks, 1, chunk, n_keys),
        chunk,
        n_keys,
    )


def _attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, tree_blocks=None, **kwargs):
    """transformers' attention function: query (batch, heads, length, dim), key and value
    (batch, kv_heads, length, dim); returns (batch, length, heads, dim)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if tree_blocks is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    plan: TreeBlocks = tree_blocks
    batch, heads, length, dim = query.shape
    kv_heads = key.shape[1]
    blocks = plan.mask.shape[0]

    def gather(states, index, n, h):  # -> (blocks, h, n, dim)
        flat = states.transpose(1, 2).reshape(batch * length, h, dim)
        return flat.index_select(0, index).view(blocks, n, h, dim).transpose(1, 2)

    output = torch.nn.functional.scaled_dot_product_attention(
        gather(query, plan.queries, plan.chunk, heads),
        gather(key, plan.keys, plan.n_keys, kv_heads),
        gather(value, plan.keys, plan.n_keys, kv_heads),
        attn_mask=plan.mask,
        scale=scaling,
        enable_gqa=kv_heads != heads,
    )
    result = query.new_empty(batch * length, heads, dim)
    result[plan.queries] = output.transpose(1, 2).reshape(-1, heads, dim)
    return result.view(batch, length, heads, dim), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(IMPLEMENTATION, _attention)
    AttentionMaskInterface.register(IMPLEMENTATION, sdpa_mask)  # outside tree scoring: SDPA's masks


@contextmanager
def tree_attention(model, device: torch.device):
    """While active, ``model`` (loaded with SDPA attention) runs :func:`_attention`; yields
    whether it does. Only on CPU, where it was measured (BENCHMARKS.md); on CUDA, and for a model
    with another attention implementation, the rows keep their dense 4D masks."""
    if device.type != "cpu" or getattr(model.config, "_attn_implementation", None) != "sdpa":
        yield False
        return
    _register()
    model.set_attn_implementation(IMPLEMENTATION)
    try:
        yield True
    finally:
        model.set_attn_implementation("sdpa")
