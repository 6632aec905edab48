"""Backends as plugins: the registry, the loaded handle, a backend registered from outside or
through an entry point, and the declarations the schema, resources and fingerprint read."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
from conftest import TOP_LEVEL_SCHEMA

from globalrep import config_schema, engine
from globalrep.config_checks import check_models
from globalrep.engine import BackendInfo, GenerateRequest, LoglikRequest, Shard, open_backend
from globalrep.engine.answers import generate_answer, loglik_answer, prediction_frame
from globalrep.engine.backends import BACKENDS, environment_file
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec, inference_fingerprint, inference_resources
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
                answers.update(
                    loglik_answer(request, [-len(c) for c in request.continuations], [1] * len(request.continuations))
                )
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


# ------------------------------------------------------------------ declarations and plugins


def _valid(config: dict) -> bool:
    import jsonschema

    return jsonschema.Draft202012Validator(config_schema.assemble(TOP_LEVEL_SCHEMA)).is_valid(config)


def _config(**model) -> dict:
    return {"models": {"m": {"path": "org/m", **model}}, "tasks": {"md3_taboo": {}}}


def test_the_schema_takes_its_backends_and_their_options_from_the_declarations():
    schema = config_schema.assemble(TOP_LEVEL_SCHEMA)
    assert schema["$defs"]["model"]["properties"]["backend"]["enum"] == ["hf", "published", "vllm"]
    assert _valid(_config(options={"attn_implementation": "eager"}))  # hf, the default
    assert _valid(_config(backend="vllm", options={"gpu_memory_utilization": 0.8, "enforce_eager": True}))
    assert not _valid(_config(backend="vllm", options={"gpu_memory_utilization": 2}))
    assert not _valid(_config(backend="vllm", options={"tensor_parallel_size": "two"}))
    assert not _valid(_config(backend="published", options={"x": 1}))
    assert not _valid(_config(backend="nope"))


def test_a_reward_model_with_backend_vllm_is_refused_before_any_job():
    with pytest.raises(GlobalrepError, match=r"model 'rm': backend vllm runs models of kind lm, not reward"):
        check_models({"rm": {"path": "org/rm", "kind": "reward", "backend": "vllm"}})
    with pytest.raises(GlobalrepError, match=r"backend vllm runs models of kind lm, not reward"):
        with open_backend(ModelSpec(name="rm", path="org/rm", kind="reward", backend="vllm")):
            pass


def test_fingerprint_and_resources_follow_the_backend_declarations():
    spec = ModelSpec(name="m", path="org/m", backend="vllm", options={"max_model_len": 512})
    same = inference_fingerprint(
        replace(spec, batch_size=2, options={**spec.options, "gpu_memory_utilization": 0.5}), {}, "1"
    )
    assert same == inference_fingerprint(spec, {}, "1")
    assert inference_fingerprint(replace(spec, options={"max_model_len": 1024}), {}, "1") != same
    engine_resources = {"threads": 2, "gpus": 1, "mem_mb": 8000, "runtime": 60}
    assert inference_resources({"path": "p", "backend": "vllm"}, engine_resources) == engine_resources
    assert environment_file("vllm").endswith("envs/vllm.yaml") and environment_file(None).endswith(
        "envs/inference.yaml"
    )


def test_a_backend_of_another_package_comes_through_its_entry_point(monkeypatch):
    from importlib.metadata import EntryPoint

    import globalrep.engine.backends as backends

    point = EntryPoint("echo", f"{__name__}:ECHO_INFO", backends.ENTRY_POINT_GROUP)
    monkeypatch.setattr(backends, "entry_points", lambda group: [point] if group == backends.ENTRY_POINT_GROUP else [])
    backends._entry_point_backends.cache_clear()
    try:
        assert backends.backend_info("echo") is ECHO_INFO
        assert "echo" in config_schema.assemble(TOP_LEVEL_SCHEMA)["$defs"]["model"]["properties"]["backend"]["enum"]
        assert (
            inference_resources({"path": "p", "backend": "echo"}, {"threads": 1, "gpus": 1, "mem_mb": 1, "runtime": 1})[
                "gpus"
            ]
            == 0
        )
        with open_backend(ModelSpec(name="e", path="org/e", backend="echo")) as backend:
            assert backend.answer([GenerateRequest("a", "g", "hi", 3)]).loc[0, "g_text"] == "hi"
    finally:
        backends._entry_point_backends.cache_clear()


ECHO_INFO = BackendInfo(EchoBackend, default_resources={"gpus": 0})
