"""The packed log-likelihood path equals one forward per continuation."""

import random

import pytest
import torch

from globalrep.engine import Chat, LoglikRequest, answer
from globalrep.engine.loading import load_causal_lm, load_tokenizer
from globalrep.engine.loglik import (
    common_prefix_len,
    loglik_one_forward_per_continuation,
    pack_rows,
    score_rows,
    tokenize_request,
)
from globalrep.engine.prompts import encode, encode_many, render
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec

CPU = torch.device("cpu")
WORDS = "the a of country people language answer question think would most and from world news city".split()


@pytest.fixture(scope="module")
def lm(tiny_lm_dir):
    spec = ModelSpec(name="tiny", path=str(tiny_lm_dir), dtype="float32", batch_size=3, chat_template=True)
    return spec, load_tokenizer(spec), load_causal_lm(spec, CPU)


def _reference(spec, tokenizer, model, request: LoglikRequest) -> list[float]:
    context = render(request.context, tokenizer, spec.chat_template)
    tokenized = tokenize_request(lambda texts: encode_many(texts, tokenizer), context, request.continuations)
    return loglik_one_forward_per_continuation(model, tokenized, CPU)


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _assert_matches_reference(lm, requests, **engine_options):
    spec, tokenizer, model = lm
    result = answer(spec, requests, {"device": "cpu", **engine_options}).set_index("item_id")
    for request in requests:
        expected = _reference(spec, tokenizer, model, request)
        got = result.loc[request.item_id, f"{request.key}_logprob"]
        assert len(got) == len(request.continuations)
        assert got == pytest.approx(expected, abs=1e-4)
    return result


def test_batched_contexts_of_different_lengths_match_reference(lm):
    rng = random.Random(0)
    # Different context lengths in one batch of 3 rows: rows are left-padded.
    requests = [
        LoglikRequest(f"q{i}", "choice", _sentence(rng, rng.randint(1, 80)) + " (",
                      ("A)", "B)", "C) " + _sentence(rng, 7), " " + _sentence(rng, 2)))
        for i in range(8)
    ]
    result = _assert_matches_reference(lm, requests)
    assert all(count > 0 for counts in result["choice_ntokens"] for count in counts)
    assert result.loc["q0", "choice_ntokens"][2] > result.loc["q0", "choice_ntokens"][0]


def test_250_continuations_of_one_context(lm):
    rng = random.Random(1)
    continuations = tuple(" " + _sentence(rng, rng.randint(1, 4)) for _ in range(250))
    request = LoglikRequest("big", "country", "Where are you from? I am from", continuations)
    _assert_matches_reference(lm, [request])


def test_rows_split_when_continuations_exceed_the_row_budget(lm):
    rng = random.Random(2)
    continuations = tuple(" " + _sentence(rng, 5) for _ in range(40))
    request = LoglikRequest("split", "k", _sentence(rng, 30), continuations)
    spec, tokenizer, _ = lm
    tokenized = tokenize_request(lambda texts: encode_many(texts, tokenizer), request.context, continuations)
    assert len(pack_rows([tokenized], max_row_tokens=64)) > 1
    _assert_matches_reference(lm, [request], max_packed_tokens=64)


def test_chat_context_uses_the_chat_template(lm):
    spec, tokenizer, _ = lm
    chat = Chat((("user", "Which city is the most beautiful?"),), assistant_prefix="I think")
    text = render(chat, tokenizer, chat_template=True)
    assert text.endswith("<|assistant|>\nI think")
    assert "Which city is the most beautiful?" in text
    # BOS once, whether or not the template writes it itself.
    assert encode(text, tokenizer).count(tokenizer.bos_token_id) == 1
    assert encode(tokenizer.bos_token + text, tokenizer).count(tokenizer.bos_token_id) == 1
    _assert_matches_reference(lm, [LoglikRequest("chat", "c", chat, (" Paris", " the world"))])


def test_boundary_merge_starts_continuation_at_first_differing_token(lm):
    spec, tokenizer, model = lm
    # Byte-level BPE merges a word split across the boundary: "coun" + "try" is one token.
    context, continuation = "the people of this coun", "try"
    context_ids = encode(context, tokenizer)
    joint_ids = encode(context + continuation, tokenizer)
    prefix = common_prefix_len(context_ids, joint_ids)
    assert prefix < len(context_ids), "fixture expects a merge across the boundary"
    tokenized = tokenize_request(lambda texts: encode_many(texts, tokenizer), context, (continuation,))
    assert tokenized.continuations[0].tokens == tuple(joint_ids[prefix:])
    _assert_matches_reference(lm, [LoglikRequest("merge", "m", context, (continuation, "ntry folk"))])


def test_packing_is_independent_of_batch_composition(lm):
    spec, tokenizer, model = lm
    encode_texts = lambda texts: encode_many(texts, tokenizer)  # noqa: E731
    alone = tokenize_request(encode_texts, "short context (", ("A)", "B)"))
    other = tokenize_request(encode_texts, _sentence(random.Random(3), 60), ("x", "y z"))
    solo = score_rows(model, pack_rows([alone], 2048), tokenizer.pad_token_id, CPU)[0]
    rows = pack_rows([other, alone], 2048)
    mixed = score_rows(model, rows, tokenizer.pad_token_id, CPU)[1]
    assert mixed == pytest.approx(solo, abs=1e-4)


def test_empty_continuation_scores_zero(lm):
    result = answer(lm[0], [LoglikRequest("e", "k", "some context", ("", " answer"))], {"device": "cpu"})
    assert result.loc[0, "k_logprob"][0] == 0.0
    assert result.loc[0, "k_ntokens"][0] == 0 and result.loc[0, "k_ntokens"][1] >= 1


def test_continuation_without_anything_to_condition_on_is_an_error():
    with pytest.raises(GlobalrepError, match="nothing to be predicted from"):
        tokenize_request(lambda texts: [[ord(c) for c in text] for text in texts], "", ("abc",))


def test_reward_request_to_a_language_model_is_refused(lm):
    from globalrep.engine import RewardRequest

    with pytest.raises(GlobalrepError, match="reward requests need kind: reward"):
        answer(lm[0], [RewardRequest("r", "k", (Chat((("user", "hi"), ("assistant", "hello"))),))], {})


def test_requests_sharing_item_and_key_are_refused(lm):
    requests = [LoglikRequest("q", "k", "context", (" a",)), LoglikRequest("q", "k", "other context", (" b",))]
    with pytest.raises(GlobalrepError, match="item 'q' share the key 'k'"):
        answer(lm[0], requests, {"device": "cpu"})


def test_a_context_absorbed_by_the_merge_is_named():
    one_token_per_text = lambda texts: [[len(text)] for text in texts]  # noqa: E731
    with pytest.raises(GlobalrepError, match="after context 'In': the context's only token merges"):
        tokenize_request(one_token_per_text, "In", ("dia",))


def test_repeated_continuations_are_scored_once_and_tie_exactly(lm):
    request = LoglikRequest("r", "k", "Where are you from? I am from", (" Paris", " the world", " Paris"))
    result = _assert_matches_reference(lm, [request])
    logprobs, ntokens = result.loc["r", "k_logprob"], result.loc["r", "k_ntokens"]
    assert logprobs[0] == logprobs[2] and ntokens[0] == ntokens[2]


@pytest.fixture(scope="module")
def short_window_lm(tiny_tokenizer, tmp_path_factory):
    from globalrep.demo import build_causal_lm

    path = build_causal_lm(tiny_tokenizer, tmp_path_factory.mktemp("short_window"), 0, max_position_embeddings=32)
    spec = ModelSpec(name="short", path=str(path), dtype="float32", batch_size=2)
    return spec, load_tokenizer(spec), load_causal_lm(spec, CPU)


def test_contexts_over_the_window_are_shortened_from_the_left_and_counted(short_window_lm, caplog):
    from globalrep.engine.loglik import fit_window

    spec, tokenizer, model = short_window_lm
    rng = random.Random(4)
    long = LoglikRequest("long", "k", _sentence(rng, 60), (" the world", " news"))
    short = LoglikRequest("short", "k", _sentence(rng, 3), (" a", " city"))
    with caplog.at_level("INFO"):
        result = answer(spec, [long, short], {"device": "cpu"}).set_index("item_id")
    assert "1 of 2 log-likelihood contexts exceeded the model's window (32 tokens)" in caplog.text
    tokenized = tokenize_request(lambda texts: encode_many(texts, tokenizer), long.context, long.continuations)
    fitted, cut = fit_window(tokenized, 32, keep_first=True)
    assert cut > 0 and fitted.context[0] == tokenizer.bos_token_id
    assert max(c.prefix_len + len(c.tokens) for c in fitted.continuations) == 32
    expected = loglik_one_forward_per_continuation(model, fitted, CPU)
    assert result.loc["long", "k_logprob"] == pytest.approx(expected, abs=1e-4)
    assert result.loc["long", "k_ntokens"] == [len(c.tokens) for c in tokenized.continuations]
    assert result.loc["short", "k_logprob"] == pytest.approx(_reference(spec, tokenizer, model, short), abs=1e-4)


def test_a_continuation_longer_than_the_window_is_an_error(short_window_lm):
    request = LoglikRequest("huge", "k", "context", (" " + _sentence(random.Random(5), 60),))
    with pytest.raises(GlobalrepError, match="item huge, k: a continuation of .* does not fit the model's window of 32"):
        answer(short_window_lm[0], [request], {"device": "cpu"})
