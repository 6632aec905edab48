"""The packed log-likelihood path equals one forward per continuation."""

import random

import pytest
import torch
from oracles import loglik_one_forward_per_continuation

from globalrep.engine import Chat, LoglikRequest, answer
from globalrep.engine.loading import load_causal_lm, load_tokenizer
from globalrep.engine.loglik import (
    _tree_mask,
    build_trie,
    common_prefix_len,
    item_level_tokens,
    pack_tree_rows,
    score_requests,
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
        LoglikRequest(
            f"q{i}",
            "choice",
            _sentence(rng, rng.randint(1, 80)) + " (",
            ("A)", "B)", "C) " + _sentence(rng, 7), " " + _sentence(rng, 2)),
        )
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
    assert len(pack_tree_rows(build_trie([tokenized]), max_row_tokens=64)) > 1
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


def _score(lm, tokenized, max_row_tokens=2048, batch_size=3):
    _, tokenizer, model = lm
    return score_requests(model, tokenized, max_row_tokens, batch_size, tokenizer.pad_token_id, CPU, "test", False)


def test_packing_is_independent_of_batch_composition(lm):
    spec, tokenizer, model = lm
    encode_texts = lambda texts: encode_many(texts, tokenizer)  # noqa: E731
    alone = tokenize_request(encode_texts, "short context (", ("A)", "B)"))
    other = tokenize_request(encode_texts, _sentence(random.Random(3), 60), ("x", "y z"))
    solo = _score(lm, [alone])[0][0]
    mixed = _score(lm, [other, alone])[0][1]
    assert mixed == pytest.approx(solo, abs=1e-5)


def _shared_prefix_requests(tokenizer, rng, passages=4, per_passage=2):
    """Belebele's shape: one instruction, passages asked about twice, 4 choices (scored labels)."""
    instruction = "Read the context, then answer the question. " + _sentence(rng, 12)
    requests = []
    for _ in range(passages):
        passage = _sentence(rng, rng.randint(20, 40))
        for _ in range(per_passage):
            context = f"{instruction}\nContext: {passage}\nQuestion: {_sentence(rng, 6)}?\nAnswer: ("
            requests.append(
                tokenize_request(
                    lambda texts: encode_many(texts, tokenizer), context, ("A)", "B)", "C)", "D) " + _sentence(rng, 3))
                )
            )
    return requests


def test_shared_prefixes_across_requests_are_forwarded_once_and_match_the_oracle(lm):
    spec, tokenizer, model = lm
    requests = _shared_prefix_requests(tokenizer, random.Random(6))
    logprobs, counts = _score(lm, requests)
    for request, values in zip(requests, logprobs):
        assert values == pytest.approx(loglik_one_forward_per_continuation(model, request, CPU), abs=2e-6)
    trie = build_trie(requests)
    assert counts.unique == len(trie.tokens) and counts.rows == 1 and counts.forwarded == counts.unique
    assert counts.item_level == item_level_tokens(requests) > 1.5 * counts.unique
    # Item-level packing: the same numbers, prefixes shared only within a request.
    item_level, item_counts = score_requests(
        model, requests, 2048, 3, tokenizer.pad_token_id, CPU, "test", False, share_across_requests=False
    )
    assert item_counts.unique > 1.5 * counts.unique
    for ours, theirs in zip(logprobs, item_level):
        assert ours == pytest.approx(theirs, abs=2e-6)


@pytest.mark.parametrize("max_row_tokens", [1, 24, 60, 150])
def test_splitting_the_trie_across_rows_changes_no_number(lm, max_row_tokens):
    spec, tokenizer, model = lm
    requests = _shared_prefix_requests(tokenizer, random.Random(7))
    whole, whole_counts = _score(lm, requests)
    split, counts = _score(lm, requests, max_row_tokens)
    assert whole_counts.rows == 1 and counts.rows > 1
    # Each row repeats the ancestors of its first node, nothing else.
    assert counts.forwarded > counts.unique == whole_counts.unique
    for a, b in zip(whole, split):
        assert a == pytest.approx(b, abs=2e-6)


def test_each_token_sees_exactly_its_ancestors(lm):
    _, tokenizer, _ = lm
    trie = build_trie(_shared_prefix_requests(tokenizer, random.Random(8), passages=3))
    rows = pack_tree_rows(trie, max_row_tokens=40)
    length = max(len(row.tokens) for row in rows) + 3  # padding too
    mask = _tree_mask(rows, length, torch.float32)[:, 0] == 0
    for i, row in enumerate(rows):
        pad = length - len(row.tokens)
        assert mask[i, :pad, :pad].equal(torch.eye(pad, dtype=torch.bool))  # padding sees itself only
        assert not mask[i, pad:, :pad].any() and not mask[i, :pad, pad:].any()
        for q, node in enumerate(row.nodes):
            ancestors = {node}
            while trie.parents[node] >= 0:
                node = trie.parents[node]
                ancestors.add(node)
            seen = {row.nodes[k] for k in range(len(row.nodes)) if mask[i, pad + q, pad + k]}
            assert seen == ancestors
            assert row.positions[q] == len(ancestors) - 1


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
    with pytest.raises(
        GlobalrepError, match="item huge, k: a continuation of .* does not fit the model's window of 32"
    ):
        answer(short_window_lm[0], [request], {"device": "cpu"})


def test_contexts_as_long_as_the_window_are_forwarded_once(tiny_tokenizer, tmp_path):
    """Issue 29's long-context shape: contexts at 100% and 150% of the window (shortened to fit),
    4 short continuations each, rows of the window's size. A row that split an item's subtree
    would repeat the whole context once per continuation; the trie forwards each context once."""
    from globalrep.demo import build_causal_lm
    from globalrep.engine.loglik import fit_window
    from globalrep.engine.memory import OVERFLOW_SHARE

    window = 64  # its 1/OVERFLOW_SHARE (8 tokens) holds the 4 continuations
    spec = ModelSpec(name="w64", path=str(build_causal_lm(tiny_tokenizer, tmp_path, 0, max_position_embeddings=window)))
    tokenizer, model = load_tokenizer(spec), load_causal_lm(spec, CPU)
    rng = random.Random(9)
    encode_texts = lambda texts: encode_many(texts, tokenizer)  # noqa: E731
    continuations = (" a", " city", " the world", " news")
    requests = []
    for share in (1.0, 1.5, 1.0, 1.5):
        words = [rng.choice(WORDS)]
        while len(encode(" ".join(words), tokenizer)) < share * window:
            words.append(rng.choice(WORDS))
        tokenized = tokenize_request(encode_texts, " ".join(words), continuations)
        requests.append(fit_window(tokenized, window, keep_first=True)[0])
    assert all(max(c.prefix_len + len(c.tokens) for c in r.continuations) == window for r in requests)
    assert sum(len(c.tokens) for c in requests[0].continuations) <= window // OVERFLOW_SHARE
    logprobs, counts = score_requests(model, requests, window, 2, tokenizer.pad_token_id, CPU, "test", False)
    # One row per item: its context once (repeating only the BOS the items share), then its
    # continuations; before, one row per continuation repeated the context (3.6x the trie here).
    assert counts.rows == len(requests) and counts.forwarded <= counts.unique + len(requests)
    assert counts.forwarded <= 1.05 * counts.unique and counts.forwarded <= counts.item_level
    for request, values in zip(requests, logprobs):
        assert values == pytest.approx(loglik_one_forward_per_continuation(model, request, CPU), abs=2e-6)


def test_query_blocks_attend_as_the_dense_mask_and_read_fewer_keys(lm):
    """The CPU attention path (globalrep.engine.tree_attention): each block of queries reads the
    path above it, not the whole row, and gives the dense mask's output."""
    from globalrep.engine.loglik import _ranks_and_ends
    from globalrep.engine.tree_attention import _attention, plan_blocks

    _, tokenizer, _ = lm
    requests = _shared_prefix_requests(tokenizer, random.Random(10), passages=8)
    rows = pack_tree_rows(build_trie(requests), max_row_tokens=400)
    length = 32 * -(-max(len(row.tokens) for row in rows) // 32) + 32  # padding too
    plan = plan_blocks(*_ranks_and_ends(rows, length), torch.float32, chunk=32)
    assert len(rows) > 1 and plan.chunk == 32 and plan.n_keys < length / 2
    torch.manual_seed(0)
    query, key, value = (torch.randn(len(rows), 2, length, 16) for _ in range(3))
    blocks, _ = _attention(torch.nn.Module(), query, key, value, None, tree_blocks=plan)
    dense = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=_tree_mask(rows, length, torch.float32)
    )
    assert torch.allclose(blocks.transpose(1, 2), dense, atol=1e-6)
