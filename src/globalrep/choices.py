"""The paper's rule for a multiple-choice answer from log-likelihoods, shared by the tasks that
rank choices (Belebele, MD3 Taboo)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def best_choice(
    logprobs: Sequence[float] | np.ndarray, ntokens: Sequence[int] | np.ndarray, order: Sequence[int] | None = None
) -> np.ndarray | int:
    """The choice with the highest per-token mean log-likelihood (the paper's rule). Of equal
    maxima the first wins, or the first in ``order`` (one item's choices in the order they were
    scored: ``order[i]`` is choice i's place there); like the paper's ``torch.argmax``, a NaN
    then counts as the maximum. Works on one item's lists or, without ``order``, on an
    (items × choices) matrix."""
    means = np.asarray(logprobs, dtype=float) / np.asarray(ntokens, dtype=float)
    if order is not None:
        in_order = np.argsort(np.asarray(order), kind="stable")
        return int(in_order[np.argmax(means[in_order])])
    chosen = np.argmax(means, axis=-1)
    return int(chosen) if np.ndim(chosen) == 0 else chosen
