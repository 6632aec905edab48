"""Answers to typed requests, and the one function that turns them into a prediction frame.

Every backend answers with ``{(item_id, column): value}``; the column names come from the
request's ``key`` through the functions below (``{key}_logprob``, ``{key}_ntokens``,
``{key}_text``, ``{key}_reward``), never by hand. Per-item extras (the published backend's
``missing_answer``, say) are plain ``(item_id, column)`` entries; :func:`missing_answer` writes
the two columns of a missing answer (see ``globalrep.missing_answers``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from globalrep.engine.requests import GenerateRequest, LoglikRequest, RewardRequest
from globalrep.missing_answers import COLUMN, REASON_COLUMN

Answers = dict[tuple[str, str], object]


def loglik_answer(request: LoglikRequest, logprobs: Sequence[float], ntokens: Sequence[int]) -> Answers:
    return {(request.item_id, f"{request.key}_logprob"): list(logprobs),
            (request.item_id, f"{request.key}_ntokens"): list(ntokens)}  # fmt: skip


def generate_answer(request: GenerateRequest, text: str) -> Answers:
    return {(request.item_id, f"{request.key}_text"): text}


def reward_answer(request: RewardRequest, rewards: Sequence[float]) -> Answers:
    return {(request.item_id, f"{request.key}_reward"): list(rewards)}


def missing_answer(item_ids: Sequence[str], reasons: Mapping[str, str]) -> Answers:
    """``missing_answer`` of every item (True where ``reasons`` names it) and ``missing_reason``
    (its reason; None where the answer is not missing)."""
    answers: Answers = {}
    for item_id in dict.fromkeys(item_ids):
        answers[(item_id, COLUMN)] = item_id in reasons
        answers[(item_id, REASON_COLUMN)] = reasons.get(item_id)
    return answers


def prediction_frame(answers: Mapping[tuple[str, str], object]) -> pd.DataFrame:
    """One row per item (in the order items first appear), ``item_id`` first."""
    rows: dict[str, dict] = {}
    for (item_id, column), value in answers.items():
        rows.setdefault(item_id, {"item_id": item_id})[column] = value
    return pd.DataFrame(list(rows.values()))
