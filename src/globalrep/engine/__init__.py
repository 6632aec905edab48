"""Inference engine: answers typed requests for one model.

Backends: ``hf`` (transformers, default) and ``published`` (the paper's per-example outputs).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from globalrep.engine.requests import Chat, GenerateRequest, LoglikRequest, Request, RewardRequest
from globalrep.models import ModelSpec

__all__ = ["Chat", "GenerateRequest", "LoglikRequest", "Request", "RewardRequest", "answer"]


def answer(model: ModelSpec, requests: Sequence[Request], engine_options: dict | None = None) -> pd.DataFrame:
    """Answer ``requests`` with ``model``: one row per ``item_id``, columns per request key
    (see ``globalrep.engine.requests``). ``engine_options`` is ``config['engine']``
    (``device``: auto|cpu|cuda, ``max_packed_tokens``)."""
    from globalrep.engine.hf import answer_hf

    return answer_hf(model, requests, engine_options or {})
