"""The demo's locally built tokenizer and tiny models load and behave like hub checkpoints."""

from __future__ import annotations

import re

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    LlamaConfig,
    LlamaModel,
)

from globalrep import demo

ROUND_TRIP_TEXTS = [
    "Hello, world!",
    "  leading and trailing spaces  ",
    "line one\n\nline two\ttabbed",
    "Ça va? Größe, señor, naïve café",
    "中文 日本語 한국어 العربية हिन्दी",
    "emoji 🙂👍🏽 and combining é (e + U+0301)",
    "Human: Q?\n\nHere are the options:\n(A) yes\n(B) no\n\nAssistant: If I had to select one of the options, my answer would be (",
    "",
]


def _distinct_words(texts: list[str]) -> set[str]:
    return {w.lower() for t in texts for w in re.findall(r"\w+", t)}


def test_corpus_is_deterministic_with_a_few_thousand_words():
    corpus = demo.demo_corpus()
    assert corpus == demo.demo_corpus()
    assert len(_distinct_words(corpus)) >= 2500
    assert {"nigeria", "germany", "swahili", "country", "language"} <= _distinct_words(corpus)


def test_corpus_appends_extra_texts():
    corpus = demo.demo_corpus(["a brand new flibbertigibbet sentence"])
    assert corpus[-1] == "a brand new flibbertigibbet sentence"


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_tokenizer_round_trips_any_text(tiny_tokenizer, text):
    ids = tiny_tokenizer(text).input_ids
    assert tiny_tokenizer.unk_token_id not in ids
    assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == text


def test_every_encoding_starts_with_bos(tiny_tokenizer):
    tok = tiny_tokenizer
    assert tok("some text").input_ids[0] == tok.bos_token_id
    assert tok("").input_ids == [tok.bos_token_id]
    assert tok("some text", add_special_tokens=False).input_ids[0] != tok.bos_token_id
    assert {tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token} == {
        "<s>",
        "</s>",
        "<pad>",
        "<unk>",
    }
    assert len({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id}) == 4


def test_tokenizer_training_is_deterministic(tiny_tokenizer):
    again = demo.train_tokenizer(demo.demo_corpus(), vocab_size=len(tiny_tokenizer))
    assert again.get_vocab() == tiny_tokenizer.get_vocab()


def test_common_words_are_single_tokens():
    tok = demo.train_tokenizer(demo.demo_corpus(), vocab_size=4096)
    for word in [" country", " language", " Germany", " Nigeria", " people"]:
        assert len(tok(word, add_special_tokens=False).input_ids) == 1, word


def test_extra_texts_shape_the_vocabulary(tiny_tokenizer):
    word = " quixotrombulance"
    tok = demo.train_tokenizer(demo.demo_corpus([word * 200]), vocab_size=len(tiny_tokenizer))
    with_extra = len(tok(word, add_special_tokens=False).input_ids)
    without = len(tiny_tokenizer(word, add_special_tokens=False).input_ids)
    assert with_extra < without


def test_chat_template_is_zephyr_style(tiny_tokenizer):
    tok = tiny_tokenizer
    user = [{"role": "user", "content": "Which country do you live in?"}]
    prompt = tok.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    assert prompt == "<|user|>\nWhich country do you live in?</s>\n<|assistant|>\n"
    assert prompt.endswith("<|assistant|>\n")

    without = tok.apply_chat_template(user, tokenize=False, add_generation_prompt=False)
    assert without == "<|user|>\nWhich country do you live in?</s>\n"

    conversation = [
        {"role": "system", "content": "Be brief."},
        *user,
        {"role": "assistant", "content": "Germany."},
    ]
    rendered = tok.apply_chat_template(conversation, tokenize=False)
    assert rendered == (
        "<|system|>\nBe brief.</s>\n<|user|>\nWhich country do you live in?</s>\n<|assistant|>\nGermany.</s>\n"
    )
    # Role markers are special tokens: one id each, and skipped when decoding.
    for marker in ("<|system|>", "<|user|>", "<|assistant|>"):
        assert len(tok(marker, add_special_tokens=False).input_ids) == 1
    ids = tok(rendered).input_ids
    assert "<|user|>" not in tok.decode(ids, skip_special_tokens=True)


def test_saved_tokenizer_reloads_identically(tiny_tokenizer, tiny_lm_dir):
    reloaded = AutoTokenizer.from_pretrained(tiny_lm_dir)
    text = "Ça va? (A) Nigeria"
    assert reloaded(text).input_ids == tiny_tokenizer(text).input_ids
    assert reloaded.chat_template == tiny_tokenizer.chat_template
    assert reloaded.pad_token_id == tiny_tokenizer.pad_token_id


def test_stage_models_load_and_differ(tiny_tokenizer, tiny_lm_dirs):
    ids = tiny_tokenizer(["People in Jordan speak Arabic."], return_tensors="pt").input_ids
    logits = {}
    for stage, path in tiny_lm_dirs.items():
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        assert model.config.vocab_size == len(tiny_tokenizer)
        assert model.dtype == torch.float32
        assert model.config.pad_token_id == tiny_tokenizer.pad_token_id
        assert (path / "model.safetensors").is_file()
        with torch.no_grad():
            logits[stage] = model(ids).logits
        assert logits[stage].shape == (1, ids.shape[1], len(tiny_tokenizer))
    assert not torch.allclose(logits["base"], logits["sft"])
    assert not torch.allclose(logits["sft"], logits["pt"])
    assert not torch.allclose(logits["base"], logits["pt"])


def test_causal_lm_is_reproducible(tiny_tokenizer, tiny_lm_dir, tmp_path):
    again = demo.build_causal_lm(tiny_tokenizer, tmp_path / "again", seed=0)
    first = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).state_dict()
    second = AutoModelForCausalLM.from_pretrained(again).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_reward_model_returns_one_score_per_sequence(tiny_tokenizer, tiny_rm_dir):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_rm_dir).eval()
    assert model.config.num_labels == 1
    assert model.config.pad_token_id == tiny_tokenizer.pad_token_id
    batch = tiny_tokenizer(
        ["a short one", "a somewhat longer conversation about Brazil"],
        return_tensors="pt",
        padding=True,
    )
    with torch.no_grad():
        scores = model(**batch).logits
    assert scores.shape == (2, 1)
    assert scores[0, 0] != scores[1, 0]


def test_value_head_reward_model_layout(tiny_value_head_rm):
    base_dir, state_path = tiny_value_head_rm
    base = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    state = torch.load(state_path, weights_only=True)

    body_names = set(LlamaModel(LlamaConfig(**base.config.to_dict())).state_dict())
    transformer_keys = {k.removeprefix("transformer.") for k in state if k.startswith("transformer.")}
    assert transformer_keys == body_names
    assert set(state) == {f"transformer.{n}" for n in body_names} | {"v_head.weight"}
    assert state["v_head.weight"].shape == (1, base.config.hidden_size)

    # The body weights are perturbed from the base, so loading them changes the model.
    base_body = base.model.state_dict()
    assert not torch.equal(state["transformer.embed_tokens.weight"], base_body["embed_tokens.weight"])
    assert torch.allclose(state["transformer.embed_tokens.weight"], base_body["embed_tokens.weight"], atol=0.1)

    # Starling's module layout loads the state dict exactly.
    class ValueHeadRM(torch.nn.Module):
        def __init__(self, body):
            super().__init__()
            self.transformer = body
            self.v_head = torch.nn.Linear(body.config.hidden_size, 1, bias=False)

    rm = ValueHeadRM(base.model)
    result = rm.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_build_demo_models_cli(tmp_path):
    extra = tmp_path / "sample.csv"
    extra.write_text("question,options\nDo you agree?,\"['Yes', 'No']\"\n", encoding="utf-8")
    out = tmp_path / "models"
    assert demo.main([str(out), str(extra)]) == 0

    names = ["demo-base", "demo-sft", "demo-pt", "demo-rm"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    tok = AutoTokenizer.from_pretrained(out / "demo-base")
    ids = tok(["Which language do people speak in Kenya?"], return_tensors="pt").input_ids
    logits = [AutoModelForCausalLM.from_pretrained(out / name)(ids).logits.detach() for name in names[:3]]
    assert not torch.allclose(logits[0], logits[1])
    assert not torch.allclose(logits[1], logits[2])
    rm = AutoModelForSequenceClassification.from_pretrained(out / "demo-rm")
    assert rm(ids).logits.shape == (1, 1)
