import logging
from pathlib import Path

import pandas as pd
import pytest

from globalrep import cfmatch, demo
from globalrep.engine import GenerateRequest, answer
from globalrep.engine.loading import load_tokenizer
from globalrep.engine.prompts import encode
from globalrep.engine.truncation import fit_prompt
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec
from globalrep.tasks import tydiqa_goldp as tydiqa
from globalrep.tasks.base import FigureContext

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
DEMO_OPTIONS = {"train_source": str(DEMO / "tydiqa_goldp_train.json")}


# ------------------------------------------------------------------------------ scoring


@pytest.mark.parametrize(
    ("text", "normal"),
    [("The  Cat's hat!", "cats hat"), ("an apple, a pear", "apple pear"), ("Theory", "theory"), ("¿Qué?", "¿qué")],
)
def test_squad_normalisation(text, normal):
    assert tydiqa.normalize_answer(text) == normal


def test_f1_and_exact_match_by_hand():
    # "the cat sat" -> [cat, sat]; "a cat sat down" -> [cat, sat, down]: P = 1, R = 2/3, F1 = 0.8.
    assert tydiqa.f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert tydiqa.f1("cat cat", "cat") == pytest.approx(2 * 0.5 * 1 / 1.5)  # repeated tokens count once each
    assert tydiqa.f1("dog", "cat") == 0.0 and tydiqa.f1("", "cat") == 0.0
    assert tydiqa.exact_match("An Apple.", "apple") == 1.0 and tydiqa.exact_match("apples", "apple") == 0.0


def test_answer_is_the_text_before_the_first_blank_line():
    assert tydiqa.extract_answer(" Paris \n\nContext: more text") == "Paris"
    assert tydiqa.extract_answer("Paris\nFrance\n \nQuestion: x") == "Paris\nFrance"
    assert tydiqa.extract_answer("\n\nParis") == ""


def test_score_takes_the_best_gold_answer():
    items = pd.DataFrame(
        {
            "item_id": ["q"],
            "group": ["english"],
            "group_name": ["English"],
            "question": ["Which river?"],
            "answers": [["the Sandel River", "Sandel"]],
        }
    )
    predictions = pd.DataFrame({"model": ["m"], "item_id": ["q"], "answer_text": ["Sandel River\n\nContext: x"]})
    scores = tydiqa.score(items, predictions, {}).set_index("metric")
    assert scores.loc["exact_match", "value"] == 100.0 and scores.loc["f1", "value"] == 100.0
    predictions["answer_text"] = ["the river Sandel"]  # F1 vs "the Sandel River": P = R = 1 -> 100; vs "Sandel": 2/3
    scores = tydiqa.score(items, predictions, {}).set_index("metric")
    assert scores.loc["exact_match", "value"] == 0.0 and scores.loc["f1", "value"] == pytest.approx(100.0)


def test_cfmatch_is_scored_in_percent_on_the_cut_answer_against_every_gold_answer():
    golds = ["Paris", "the city of Paris"]
    items = pd.DataFrame(
        {
            "item_id": ["q1", "q2"],
            "group": ["english", "bengali"],
            "group_name": ["English", "Bangla"],
            "question": ["What is the capital of France?", "বাংলাদেশের রাজধানী কী?"],
            "answers": [golds, ["ঢাকা"]],
        }
    )
    predictions = pd.DataFrame(
        {"model": "m", "item_id": ["q1", "q2"], "answer_text": ["Paris.\n\nQuestion: Berlin?", "ঢাকা"]}
    )
    scores = tydiqa.score(items, predictions, {}).set_index(["item_id", "metric"])
    each, _ = cfmatch.scores(golds, ["Paris."] * 2, ["What is the capital of France?"] * 2)
    assert scores.loc[("q1", "cfmatch"), "value"] == pytest.approx(100 * each.max(), abs=1e-12)
    assert scores.loc[("q1", "cf_match"), "value"] == 100.0
    # An exact answer outside the vocabulary's script: exact match, but CFMatch says incorrect.
    assert scores.loc[("q2", "exact_match"), "value"] == 100.0
    assert scores.loc[("q2", "cfmatch"), "value"] < 5 and scores.loc[("q2", "cf_match"), "value"] == 0.0
    # What an exact answer scores, per item, whatever the model answered.
    exact_answer = scores["exact_answer_cfmatch"].groupby(level="item_id").agg(["min", "max"])
    assert (exact_answer["min"] == exact_answer["max"]).all()
    assert exact_answer.loc["q2", "min"] == scores.loc[("q2", "cfmatch"), "value"]
    assert exact_answer.loc["q1", "min"] > 50


def test_blind_spots_count_exact_answers_that_cfmatch_scores_under_half():
    rows = [  # model, item, group, metric, value, exact_answer_cfmatch
        ("a", "e1", "english", "exact_match", 100.0, 90.0), ("a", "e1", "english", "cfmatch", 90.0, 90.0),
        ("a", "e2", "english", "exact_match", 0.0, 40.0), ("a", "e2", "english", "cfmatch", 10.0, 40.0),
        ("a", "b1", "bengali", "exact_match", 100.0, 1.0), ("a", "b1", "bengali", "cfmatch", 1.0, 1.0),
        ("b", "b1", "bengali", "exact_match", 100.0, 1.0), ("b", "b1", "bengali", "cfmatch", 1.0, 1.0),
        ("a", "b2", "bengali", "exact_match", 0.0, 60.0), ("a", "b2", "bengali", "cfmatch", 2.0, 60.0),
        ("a", "b3", "bengali", "exact_match", 0.0, 2.0), ("a", "b3", "bengali", "cfmatch", 2.0, 2.0),
    ]  # fmt: skip
    scores = pd.DataFrame(rows, columns=["model", "item_id", "group", "metric", "value", "exact_answer_cfmatch"])
    scores["group_name"] = scores["group"].str.title()
    table = tydiqa.cfmatch_blind_spots(scores, {}, {}).set_index("group")
    assert table.loc["english", ["questions", "exact_matches"]].tolist() == [2, 1]
    assert table.loc["english", "exact_answer_below_half"] == 50.0 and table.loc["english", "cfmatch_reliable"]
    assert table.loc["bengali", "exact_answer_below_half"] == pytest.approx(200 / 3)
    assert table.loc["bengali", ["exact_matches", "exact_matches_below_half"]].tolist() == [2, 100.0]
    assert not table.loc["bengali", "cfmatch_reliable"]
    summary = tydiqa.blind_spots_summary(table.reset_index())
    assert "cannot judge Bengali 67%" in summary and "it can judge English 50%" in summary


# ------------------------------------------------------------------------------ prepare and prompts


def test_prepare_reads_squad_files_and_draws_one_shot_per_language():
    items = tydiqa.prepare(DEMO_OPTIONS, str(DEMO / "tydiqa_goldp_dev.json"))
    assert items.groupby("group").size().to_dict() == {"english": 6, "finnish": 6, "indonesian": 6}
    assert dict(zip(items["group"], items["group_name"]))["finnish"] == "Finnish"
    for _, frame in items.groupby("group"):
        shots = {tuple(s) for s in frame["shot_questions"]}
        assert len(shots) == 1 and len(next(iter(shots))) == 1  # the same one example for the whole language
    english = items[items["group"] == "english"].iloc[0]
    assert list(english["shot_answers"]) == ["1802"]


def test_shots_are_seeded_and_independent_of_other_languages(test_data):
    dev, train = str(test_data / "tydiqa_dev"), str(test_data / "tydiqa_train")

    def shots(languages, seed=0):
        items = tydiqa.prepare({"languages": languages, "train_source": train, "num_shots": 2, "seed": seed}, dev)
        return items.groupby("group")["shot_questions"].first().map(tuple).to_dict()

    both = shots(["english", "swahili"])
    assert shots(["swahili"])["swahili"] == both["swahili"]
    assert shots(["english", "swahili"]) == both
    assert shots(["english"], seed=1)["english"] != both["english"]


def test_shots_can_be_drawn_afresh_for_each_question_as_the_paper_did(shared_data):
    dev, train = str(shared_data / "tydiqa-goldp-v1.1-dev"), str(shared_data / "tydiqa-goldp-train-subset")
    options = {"languages": ["english", "swahili"], "train_source": train, "num_shots": 1}
    fresh = tydiqa.prepare({**options, "shot_sampling": "per_question"}, dev)
    for _, frame in fresh.groupby("group"):
        assert frame["shot_questions"].map(tuple).nunique() > len(frame) / 2  # not one example per language
    assert all(len(shots) == 1 for shots in fresh["shot_questions"])
    again = tydiqa.prepare({**options, "shot_sampling": "per_question", "languages": ["english"]}, dev)
    english = fresh[fresh["group"] == "english"].set_index("item_id")["shot_questions"]
    assert again.set_index("item_id")["shot_questions"].equals(english)  # seeded by the question alone
    assert not tydiqa.prepare({**options, "shot_sampling": "per_question", "seed": 1}, dev)["shot_questions"].equals(
        fresh["shot_questions"]
    )


def test_prompt_has_instruction_examples_then_the_question():
    prompt = tydiqa.build_prompt("Ctx.", "Q?", (["C1"], ["Q1"], ["A1"]))
    assert prompt == (
        "Answer the question by extracting a span of text from the context. Reply with the extracted span only."
        "\n\nAnswer in this layout:\nContext: a passage that holds the answer.\nQuestion: the question to answer.\n"
        "Extracted Answer: the answer, copied word for word from the context."
        "\n\nContext: C1\nQuestion: Q1\nExtracted Answer: A1\n\n"
        "Context: Ctx.\nQuestion: Q?\nExtracted Answer:"
    )
    items = tydiqa.prepare({**DEMO_OPTIONS, "max_new_tokens": 7}, str(DEMO / "tydiqa_goldp_dev.json"))
    request = tydiqa.requests(items, {"max_new_tokens": 7})[0]
    assert request.max_new_tokens == 7 and request.stop == ("\n\n",) and request.key == "answer"
    assert request.truncatable == items.loc[0, "context"] and request.prompt.endswith("Extracted Answer:")


def test_missing_train_pool_and_languages_are_named(tmp_path, test_data):
    dev = str(DEMO / "tydiqa_goldp_dev.json")
    with pytest.raises(GlobalrepError, match="train_source' is unset"):
        tydiqa.prepare({}, dev)
    with pytest.raises(GlobalrepError, match=r"language\(s\) \['telugu'\]"):
        tydiqa.prepare({**DEMO_OPTIONS, "languages": ["telugu"]}, dev)
    subset = str(test_data / "tydiqa_train")  # english and swahili only, as the real subset lacks arabic
    with pytest.raises(GlobalrepError, match="0 train question.*'arabic'"):
        tydiqa.prepare({"languages": ["arabic"], "train_source": subset}, str(test_data / "tydiqa_dev"))
    (tmp_path / "bad.json").write_text(
        '{"data": [{"paragraphs": [{"context": "C", "qas": [{"id": "english-1", "question": "Q?"}]}]}]}'
    )
    with pytest.raises(GlobalrepError, match="bad.json: not SQuAD-1.1 JSON"):
        tydiqa.prepare({"num_shots": 0}, str(tmp_path / "bad.json"))


# ------------------------------------------------------------------------------ truncation


def test_fit_prompt_cuts_the_passage_from_the_left_only():
    encode_chars = list  # one token per character
    text = "Instruction.\nContext: 0123456789abcdefghij\nQuestion: Why?"
    ids, cut = fit_prompt(text, "0123456789abcdefghij", encode_chars, 45, "q")
    assert cut and "".join(ids) == "Instruction.\nContext: cdefghij\nQuestion: Why?"  # 57 chars - 12
    assert fit_prompt(text, "0123456789abcdefghij", encode_chars, 100, "q") == (list(text), False)
    with pytest.raises(GlobalrepError, match="names no passage"):
        fit_prompt(text, "", encode_chars, 45, "q")
    with pytest.raises(GlobalrepError, match="even without its passage"):
        fit_prompt(text, "0123456789abcdefghij", encode_chars, 20, "q")


def test_engine_shortens_long_passages_to_the_window_and_logs_it(tiny_tokenizer, tmp_path, caplog):
    window = 192  # room for the instruction and legend, not for a 300-word passage
    path = demo.build_causal_lm(tiny_tokenizer, tmp_path / "short-window", seed=0, max_position_embeddings=window)
    spec = ModelSpec(name="short", path=str(path), dtype="float32")
    passage = " ".join(f"word{i}" for i in range(300))
    long = GenerateRequest("long", "answer", tydiqa.build_prompt(passage, "Which word?"), 16, ("\n\n",), passage)
    short = GenerateRequest("short", "answer", tydiqa.build_prompt("Tiny.", "Which word?"), 16, ("\n\n",), "Tiny.")
    with caplog.at_level(logging.INFO):
        answers = answer(spec, [long, short], {"device": "cpu"})
    assert set(answers["item_id"]) == {"long", "short"}
    assert f"1 of 2 prompts exceeded the model's window ({window} tokens)" in caplog.text
    tokenizer = load_tokenizer(spec)
    assert len(encode(short.prompt, tokenizer)) <= window - 16 < len(encode(long.prompt, tokenizer))
    kept, cut = fit_prompt(long.prompt, passage, lambda t: encode(t, tokenizer), window - 16, "long")
    assert (
        cut
        and window - 28 <= len(kept) <= window - 16
        and tokenizer.decode(kept).rstrip().endswith("Which word?\nExtracted Answer:")
    )


# ------------------------------------------------------------------------------ figures


def test_figure_3_per_chain_from_the_standard_tables(tmp_path):
    from globalrep.figures.languages import by_score, group_label

    rows = [("base", "english", 70.0), ("base", "swahili", 60.0), ("base", "telugu", 40.0),
            ("sft", "english", 65.0), ("sft", "swahili", 62.0), ("sft", "telugu", 40.0)]  # fmt: skip
    table = pd.DataFrame(rows, columns=["model", "group", "value"]).assign(
        metric="f1", ci_low=0.0, ci_high=100.0, n=10, group_name=lambda t: t["group"].map(tydiqa.named_language)
    )
    deltas = pd.DataFrame(
        {
            "chain": "c",
            "from_model": "base",
            "to_model": "sft",
            "group": ["english", "swahili", "telugu"],
            "metric": "f1",
            "delta": [-5.0, 2.0, 0.0],
            "ci_low": -9.0,
            "ci_high": 9.0,
            "p_value": 0.5,
        }
    )
    assert list(by_score(table, "base")["group"]) == ["english", "swahili", "telugu"]
    assert group_label("deu_Latn", "German") == "German (deu_Latn)" and group_label("english", "English") == "English"
    chains = {"c": ["base", "sft"], "lonely": ["base", "other"]}
    paths = tydiqa.figures(table, deltas, FigureContext(tmp_path, chains, {"base": "base", "sft": "sft"}), {})
    names = sorted(p.name for p in paths)
    assert names == [
        "tydiqa_goldp_chain-c.pdf",
        "tydiqa_goldp_chain-c.png",
        "tydiqa_goldp_models.pdf",
        "tydiqa_goldp_models.png",
    ]


def test_the_cfmatch_figure_marks_languages_it_cannot_judge_and_keeps_the_papers_limits(tmp_path, monkeypatch):
    from globalrep.figures import languages

    drawn = {}
    monkeypatch.setattr(languages, "save_figure", lambda fig, prefix: drawn.setdefault(Path(prefix).name, fig) and [])
    groups = ["english", "bengali"]
    table = pd.DataFrame(
        {"model": ["base", "base", "pt", "pt"], "group": groups * 2, "group_name": ["English", "Bangla"] * 2,
         "metric": "cfmatch", "value": [80.0, 3.0, 82.0, 1.0], "ci_low": 0.0, "ci_high": 100.0, "n": 10}
    )  # fmt: skip
    changes = pd.DataFrame(
        {"chain": "c", "from_model": "base", "to_model": "pt", "group": groups, "metric": "cfmatch",
         "delta": [2.0, -30.0], "ci_low": -40.0, "ci_high": 5.0, "p_value": 0.5}
    )  # fmt: skip
    blind_spots = pd.DataFrame(
        {"group": groups, "group_name": ["English", "Bangla"], "exact_answer_below_half": [0.0, 98.0],
         "cfmatch_reliable": [True, False]}
    )  # fmt: skip
    context = FigureContext(
        tmp_path, {"c": ["base", "pt"]}, {}, {"from_base": changes, "cfmatch_blind_spots": blind_spots}
    )
    options = {"figure_metric": "cfmatch", "figure_change_limits": [-15, 10]}
    tydiqa.figures(table, changes, context, options)
    figure = drawn["tydiqa_goldp_from_base_chain-c"]
    ax = figure.axes[0]
    assert ax.get_xlim() == (-15.0, 10.0) and "cfmatch" in ax.get_xlabel()
    assert [label.get_text() for label in ax.get_yticklabels()] == ["English", "Bangla (bengali) †"]
    assert "CFMatch cannot judge" in figure.get_supxlabel() and "Bangla 98%" in figure.get_supxlabel()
    chain = drawn["tydiqa_goldp_chain-c"]
    assert "Bangla (bengali) †" in [label.get_text() for label in chain.axes[0].get_yticklabels()]
    # F1 (the default) has no caveat and fitted limits.
    drawn.clear()
    f1_changes = changes.assign(metric="f1")
    f1_context = FigureContext(tmp_path, context.chains, {}, {**context.extra_tables, "from_base": f1_changes})
    tydiqa.figures(table.assign(metric="f1"), f1_changes, f1_context, {})
    figure = drawn["tydiqa_goldp_from_base_chain-c"]
    assert figure.get_supxlabel() == "" and figure.axes[0].get_xlim() != (-15.0, 10.0)
    assert "†" not in "".join(label.get_text() for label in figure.axes[0].get_yticklabels())


def test_the_figure_options_change_no_inference():
    from globalrep.config_checks import inference_options

    options = {"num_shots": 1, "figure_metric": "cfmatch", "figure_change_limits": [-15, 10]}
    assert inference_options("tydiqa_goldp", options) == {"num_shots": 1}
