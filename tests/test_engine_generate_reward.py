"""Batched greedy generation and rewards equal their unbatched, unpadded computation."""

import json
import shutil

import pytest
import torch
from oracles import greedy_one_prompt_at_a_time

from globalrep.engine import Chat, GenerateRequest, RewardRequest, answer
from globalrep.engine.hf import _pad, generate_batch, generation_order, greedy_ids, prompt_tokens_forwarded
from globalrep.engine.loading import end_token_ids, load_causal_lm, load_reward_model, load_tokenizer
from globalrep.engine.prompts import encode, render
from globalrep.engine.runner import cut_at_stop
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec

CPU = torch.device("cpu")
PROMPTS = [
    "Transcript: the first speaker talks about a city near the river. Secret word:",
    "Hello",
    "Context: people of the world speak many languages, and the question is which one. Answer:",
    "Where are you from?",
]


def test_batched_greedy_equals_unbatched(tiny_lm_dir):
    spec = ModelSpec(name="tiny", path=str(tiny_lm_dir), dtype="float32", batch_size=4)
    requests = [GenerateRequest(f"g{i}", "gen", prompt, max_new_tokens=12) for i, prompt in enumerate(PROMPTS)]
    batched = answer(spec, requests, {"device": "cpu"}).set_index("item_id")["gen_text"]
    tokenizer, model = load_tokenizer(spec), load_causal_lm(spec, CPU)
    for request in requests:
        alone = generate_batch(model, tokenizer, [encode(request.prompt, tokenizer)], 12, (), CPU)[0]
        assert batched[request.item_id] == alone
    assert any(len(text) > 0 for text in batched)


SHARED_INSTRUCTION = (
    "Answer the question by extracting a span of text from the context. Reply with the span only.\n\n"
    "Context: people of the world speak many languages.\nQuestion: what do people speak?\nAnswer: languages\n\n"
)


@pytest.mark.parametrize("stop", [(), (" un", "Vi")])
def test_greedy_ids_equal_transformers_generate_one_prompt_at_a_time(tiny_lm_dir, stop):
    """Shared prefix forwarded once, each rest on its own after it, the caches laid side by side
    with padding between prefix and rest, ended sequences dropped from the batch: the same tokens as transformers' generate on each
    prompt alone, token for token."""
    spec = ModelSpec(name="tiny", path=str(tiny_lm_dir), dtype="float32")
    tokenizer, model = load_tokenizer(spec), load_causal_lm(spec, CPU)
    # Random weights attend almost uniformly, which hides a wrong position or mask: sharpen them.
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight *= 8
            layer.self_attn.k_proj.weight *= 8
    endings = ["Context: a city near the river.\nQuestion: where?\nAnswer:", "Question: who?\nAnswer:",
               "Context: the first speaker talks about a long trip across the sea to an island.\nAnswer:", "A"]  # fmt: skip
    prompts = [encode(SHARED_INSTRUCTION + ending, tokenizer) for ending in endings] + [encode(PROMPTS[1], tokenizer)]
    end_ids = end_token_ids(tokenizer, model.generation_config)
    expected = [greedy_one_prompt_at_a_time(model, tokenizer, prompt, 16, stop) for prompt in prompts]
    for batch in (prompts[:4], prompts):  # with a long shared prefix; with none
        assert greedy_ids(model, batch, 16, end_ids, stop, tokenizer, CPU) == expected[: len(batch)]
    if stop:
        assert len({len(ids) for ids in expected}) > 1, "no sequence ended early: dropping ended rows is untested"


def test_generation_order_puts_a_family_in_one_batch_when_that_forwards_fewer_tokens():
    shared, family_a, family_b = [1] * 10, [2] * 50, [3] * 50
    prompts = [shared + family_a + [4] * n for n in (1, 9, 2, 8)] + [shared + family_b + [5] * n for n in (3, 7, 4, 6)]
    order = generation_order(prompts, 4)
    assert sorted(order) == list(range(8))
    assert {prompts[i][10] for i in order[:4]} == {2}  # one family per batch: its 60 tokens forwarded once
    by_length = sorted(range(8), key=lambda i: -len(prompts[i]))
    assert prompt_tokens_forwarded(prompts, order, 4) < prompt_tokens_forwarded(prompts, by_length, 4)
    # Where families save no tokens, longest first: the decoding steps' cache holds little padding.
    lengths = [list(range(n)) for n in (5, 30, 10, 25)]
    assert generation_order(lengths, 2) == [1, 3, 2, 0]


def test_generation_is_cut_at_the_first_stop_string(tiny_lm_dir):
    spec = ModelSpec(name="tiny", path=str(tiny_lm_dir), dtype="float32")
    full = answer(spec, [GenerateRequest("g", "gen", PROMPTS[0], 20)], {"device": "cpu"}).loc[0, "gen_text"]
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    assert stop, "the tiny model generated too little text to test stopping"
    cut = answer(spec, [GenerateRequest("g", "gen", PROMPTS[0], 20, (stop,))], {"device": "cpu"}).loc[0, "gen_text"]
    assert cut == full[: full.find(stop)]


def test_generation_ends_at_every_end_id_of_the_generation_config(tiny_lm_dir, tmp_path):
    """A checkpoint whose generation_config.json lists two end ids (as Qwen1.5-Chat's does) ends
    its generation at either, as transformers' generate does by default; not only at the
    tokenizer's EOS."""
    spec = ModelSpec(name="tiny", path=str(tiny_lm_dir), dtype="float32")
    tokenizer, model = load_tokenizer(spec), load_causal_lm(spec, CPU)
    prompt = encode(PROMPTS[0], tokenizer)
    greedy = model.generate(
        torch.tensor([prompt]),
        max_new_tokens=12,
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )[0, len(prompt) :].tolist()
    # a generated token that none before it equals: the second end id
    end = next(i for i in range(1, len(greedy)) if greedy[i] not in greedy[:i] and greedy[i] != tokenizer.eos_token_id)
    two_ends = tmp_path / "two-ends"
    shutil.copytree(tiny_lm_dir, two_ends)
    config = (
        json.loads((two_ends / "generation_config.json").read_text())
        if (two_ends / "generation_config.json").exists()
        else {}
    )
    (two_ends / "generation_config.json").write_text(
        json.dumps({**config, "eos_token_id": [tokenizer.eos_token_id, greedy[end]]})
    )
    listed = ModelSpec(name="tiny", path=str(two_ends), dtype="float32")
    assert end_token_ids(tokenizer, load_causal_lm(listed, CPU).generation_config) == [
        tokenizer.eos_token_id,
        greedy[end],
    ]
    text = answer(listed, [GenerateRequest("g", "gen", PROMPTS[0], 12)], {"device": "cpu"}).loc[0, "gen_text"]
    assert text == tokenizer.decode(greedy[: end + 1], skip_special_tokens=True)
    assert text != tokenizer.decode(greedy, skip_special_tokens=True)  # without the second id it goes on


def test_cut_at_stop_takes_the_earliest():
    assert cut_at_stop("abc\n\nxyz. more", ("xyz", "\n\n")) == "abc"
    assert cut_at_stop("no stop here", ("###",)) == "no stop here"


CONVERSATIONS = [
    Chat((("user", "Where are you from?"), ("assistant", "I am from Nigeria."))),
    Chat((("user", "Where are you from?"), ("assistant", "I am from the United States of America."))),
    Chat(
        (
            ("user", "What is the best country to live in and why would you say so?"),
            ("assistant", "Many people would say Germany, for its cities."),
        )
    ),
]


def _reward_spec(**fields):
    return ModelSpec(name="rm", kind="reward", dtype="float32", chat_template=True, **fields)


def _rewards_alone(spec, conversations):
    return [
        answer(spec, [RewardRequest("r", "k", (c,))], {"device": "cpu"}).loc[0, "k_reward"][0] for c in conversations
    ]


@pytest.mark.parametrize("head", ["sequence-classification", "value-head"])
def test_reward_is_invariant_to_batch_composition_and_padding_side(head, tiny_rm_dir, tiny_value_head_rm):
    if head == "value-head":
        base_dir, state_dict = tiny_value_head_rm
        spec = _reward_spec(path=str(state_dict), base_model=str(base_dir), head=head, batch_size=3)
        tokenizer = load_tokenizer(spec, str(base_dir))
    else:
        spec = _reward_spec(path=str(tiny_rm_dir), batch_size=3)
        tokenizer = load_tokenizer(spec)
    batched = answer(spec, [RewardRequest("r", "k", tuple(CONVERSATIONS))], {"device": "cpu"}).loc[0, "k_reward"]
    assert batched == pytest.approx(_rewards_alone(spec, CONVERSATIONS), abs=1e-4)
    assert len(set(round(value, 6) for value in batched)) == 3

    model = load_reward_model(spec, CPU)
    sequences = [encode(render(c, tokenizer, True), tokenizer) for c in CONVERSATIONS]
    left = model(*_pad(sequences, tokenizer.pad_token_id, "left")).tolist()
    right = model(*_pad(sequences, tokenizer.pad_token_id, "right")).tolist()
    assert left == pytest.approx(right, abs=1e-4)


def test_value_head_reward_reads_the_head_at_the_last_token(tiny_value_head_rm):
    """Independent computation: the body's last hidden state times v_head."""
    from transformers import AutoModel

    base_dir, state_dict_path = tiny_value_head_rm
    spec = _reward_spec(path=str(state_dict_path), base_model=str(base_dir), head="value-head")
    tokenizer = load_tokenizer(spec, str(base_dir))
    state = torch.load(state_dict_path, weights_only=True)
    body = AutoModel.from_pretrained(base_dir, dtype=torch.float32).eval()
    body.load_state_dict({k.removeprefix("transformer."): v for k, v in state.items() if k != "v_head.weight"})
    ids = torch.tensor([encode(render(CONVERSATIONS[0], tokenizer, True), tokenizer)])
    with torch.no_grad():
        expected = (body(input_ids=ids).last_hidden_state[0, -1] @ state["v_head.weight"][0]).item()
    assert _rewards_alone(spec, CONVERSATIONS[:1])[0] == pytest.approx(expected, abs=1e-4)


def test_value_head_without_base_model_is_a_clear_error(tiny_value_head_rm):
    spec = _reward_spec(path=str(tiny_value_head_rm[1]), head="value-head")
    with pytest.raises(GlobalrepError, match="base_model"):
        load_reward_model(spec, CPU)


def test_missing_local_model_path_names_the_model(tmp_path):
    spec = ModelSpec(name="my-sft", path=str(tmp_path / "nowhere"))
    with pytest.raises(GlobalrepError, match="my-sft"):
        load_tokenizer(spec)
