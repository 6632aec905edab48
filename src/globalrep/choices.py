"""The rule for a multiple-choice answer from log-likelihoods, shared by the tasks that rank
choices (Belebele, MD3 Taboo): ours, and the paper's for its published rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# best_choice's answer for an item that has none: a non-finite score (a broken model's NaN or
# inf) in one of our own runs.
MISSING = -1


def best_choice(
    logprobs: Sequence[float] | np.ndarray,
    ntokens: Sequence[int] | np.ndarray,
    order: Sequence[int] | None = None,
    paper_rule: bool | np.ndarray = False,
) -> np.ndarray | int:
    """The choice with the highest per-token mean log-likelihood. Of equal maxima the first wins,
    or the first in ``order`` (one item's choices in the order they were scored: ``order[i]`` is
    choice i's place there). Works on one item's lists or, without ``order``, on an
    (items × choices) matrix.

    A non-finite mean (NaN or inf: a model whose outputs overflowed or whose weights are broken)
    makes the item's answer missing: :data:`MISSING`, never a choice. Only ``paper_rule`` (per
    item in a matrix; the rows of ``backend: published``) keeps the paper's own rule: like its
    ``torch.argmax``, a NaN counts as the maximum (its Qwen MD3 rows chose so)."""
    means = np.asarray(logprobs, dtype=float) / np.asarray(ntokens, dtype=float)
    broken = ~np.isfinite(means).all(axis=-1) & ~np.asarray(paper_rule, dtype=bool)
    if order is not None:
        in_order = np.argsort(np.asarray(order), kind="stable")
        return MISSING if broken else int(in_order[np.argmax(means[in_order])])
    chosen = np.where(broken, MISSING, np.argmax(means, axis=-1))
    return int(chosen) if np.ndim(chosen) == 0 else chosen
