"""Inference engine: answers typed requests for one model.

Backends are plugins (``globalrep.engine.backends``): ``hf`` (transformers, default), ``vllm``
and ``published`` (the paper's per-example outputs); the work common to backends that run a
model is ``globalrep.engine.runner``'s. ``open_backend`` loads a model once:

    with open_backend(spec, {"device": "cpu"}) as backend:
        predictions = backend.answer(requests)
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from globalrep.engine.backends import Backend, BackendInfo, Shard, open_backend, register
from globalrep.engine.requests import Chat, GenerateRequest, LoglikRequest, Request, RewardRequest
from globalrep.models import ModelSpec

__all__ = ["Backend", "BackendInfo", "Chat", "GenerateRequest", "LoglikRequest", "Request", "RewardRequest", "Shard", "answer",
           "open_backend", "register"]  # fmt: skip


def answer(model: ModelSpec, requests: Sequence[Request], engine_options: dict | None = None) -> pd.DataFrame:
    """Answer ``requests`` with ``model`` once (loading it for this call): one row per
    ``item_id``, columns per request key (see ``globalrep.engine.requests``). ``engine_options``
    is ``config['engine']`` (``device``: auto|cpu|cuda, ``max_packed_tokens``). To answer several
    request lists with one loaded model, use ``open_backend``."""
    with open_backend(model, engine_options) as backend:
        return backend.answer(requests)
