"""Backends as plugins: the registry, the loaded handle, and a backend registered from outside."""

from __future__ import annotations

import pandas as pd
import pytest

from globalrep import engine
from globalrep.engine import GenerateRequest, LoglikRequest, Shard, open_backend
from globalrep.engine.answers import generate_answer, loglik_answer, prediction_frame
from globalrep.engine.backends import BACKENDS
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec
from globalrep.tasks import md3_taboo


class EchoBackend:
    """A fake backend: every continuation scores minus its length; a guess repeats the prompt."""

    loads = 0

    def __init__(self, spec, options, progress=False):
        EchoBackend.loads += 1
        self.closed = False

    def answer(self, requests, shard=None):
        answers = {}
        for request in requests:
            if isinstance(request, LoglikRequest):
                answers.update(loglik_answer(request, [-len(c) for c in request.continuations], [1] * len(request.continuations)))
            else:
                answers.update(generate_answer(request, request.prompt))
        return prediction_frame(answers)

    def close(self):
        self.closed = True


@pytest.fixture
def echo_registered(monkeypatch):
    monkeypatch.setitem(BACKENDS, "echo", EchoBackend)
    EchoBackend.loads = 0


def test_a_registered_backend_answers_through_the_handle_loaded_once(echo_registered):
    spec = ModelSpec(name="fake", path="org/fake", backend="echo")
    requests = [LoglikRequest("a", "choice", "ctx", (" yes", " no!")), GenerateRequest("a", "guess", "hello", 5),
                LoglikRequest("b", "choice", "ctx", (" x",))]  # fmt: skip
    with open_backend(spec) as backend:
        first = backend.answer(requests)
        backend.answer(requests[:1])
    assert EchoBackend.loads == 1 and backend.closed
    assert first.columns.tolist() == ["item_id", "choice_logprob", "choice_ntokens", "guess_text"]
    assert first["item_id"].tolist() == ["a", "b"]
    assert first.loc[0, "choice_logprob"] == [-4, -4] and first.loc[0, "guess_text"] == "hello"
    assert pd.isna(first.loc[1, "guess_text"])
    assert engine.answer(spec, requests[2:])["choice_logprob"].tolist() == [[-2]]  # the one-call form


def test_an_unknown_backend_is_named():
    with pytest.raises(GlobalrepError, match=r"unknown backend 'nope'; known backends: hf, published, vllm"):
        with open_backend(ModelSpec(name="m", path="org/m", backend="nope")):
            pass


def test_the_published_backend_needs_the_shard():
    spec = ModelSpec(name="m", path="org/m", backend="published", published={"md3_taboo": "x.csv"})
    with open_backend(spec) as backend:
        with pytest.raises(GlobalrepError, match=r"pass shard=Shard\(task, items\)"):
            backend.answer([])
        with pytest.raises(GlobalrepError, match=r"published file 'x.csv' for task 'md3_taboo' does not exist"):
            backend.answer([], Shard("md3_taboo", pd.DataFrame({"item_id": ["a"]}), md3_taboo.read_published))


def test_importing_the_engine_leaves_transformers_progress_bars_alone(tiny_lm_dir):
    from transformers.utils import logging as transformers_logging

    transformers_logging.enable_progress_bar()
    spec = ModelSpec(name="tiny", path=str(tiny_lm_dir), dtype="float32")
    with open_backend(spec, {"device": "cpu"}) as backend:
        backend.answer([LoglikRequest("a", "k", "The", (" cat",))])
    assert transformers_logging.is_progress_bar_enabled()
