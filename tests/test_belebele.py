import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from globalrep.errors import GlobalrepError
from globalrep.sharding import shard_items
from globalrep.tables import group_table
from globalrep.tasks import belebele
from globalrep.tasks.base import FigureContext

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "belebele.jsonl"


def record(**changes):
    base = {
        "link": "https://example.org/a", "question_number": 1, "flores_passage": "A passage.",
        "question": "What?", "mc_answer1": "one", "mc_answer2": "two", "mc_answer3": "three",
        "mc_answer4": "four", "correct_answer_num": "2", "dialect": "eng_Latn",
    }  # fmt: skip
    return {**base, **changes}


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_prompt_lists_context_question_and_lettered_choices_in_the_papers_layout():
    assert belebele.build_prompt("P.", "Q?", ["w", "x", "y", "z"]) == (
        "Read the context, then answer the question by picking one of the four choices. Answer in this layout:\n\n"
        "Context: a passage that holds the answer.\nQuestion: the question to answer.\n"
        "Choices: the four possible answers, (A) to (D).\n"
        "From the choices, the answer is: the letter of the right choice, (A), (B), (C) or (D).\n\n---\n\n"
        "Context: P.\nQuestion: Q?\nChoices:\n(A) w\n(B) x\n(C) y\n(D) z\nFrom the choices, the answer is: "
    )
    assert belebele.CONTINUATIONS == ("(A)", "(B)", "(C)", "(D)")  # right after "the answer is: "


def test_prepare_reads_the_demo_with_readable_language_names():
    items = belebele.prepare({}, str(DEMO))
    assert len(items) == 24 and items["item_id"].is_unique
    names = dict(zip(items["group"], items["group_name"]))
    assert names == {"eng_Latn": "English", "deu_Latn": "German", "fra_Latn": "French"}
    first = items.iloc[0]
    assert list(first["choices"]) == ["Sweet rolls", "Rye bread", "White bread", "Fruit cake"] and first["answer"] == 1


@pytest.mark.parametrize(("where", "per_language"), [("sample", 3), ("paper", 900)])
def test_belebele_files_and_language_selection(request, test_data, where, per_language):
    """A folder of per-language files: the project's sample (tests/data), and the real files."""
    folder = test_data / "belebele" if where == "sample" else request.getfixturevalue("shared_data") / "belebele"
    items = belebele.prepare({"languages": ["deu_Latn"]}, str(folder))
    assert len(items) == per_language and set(items["group"]) == {"deu_Latn"}
    assert items["answer"].between(0, 3).all() and items["item_id"].is_unique
    both = belebele.prepare({}, str(folder))
    assert both.groupby("group").size().to_dict() == {"deu_Latn": per_language, "eng_Latn": per_language}
    # Sorted by language, 2 shards = one language per inference job.
    assert set(shard_items(both, 2, 0)["group"]) == {"deu_Latn"}


def test_unknown_language_and_bad_rows_are_named(tmp_path):
    path = write_jsonl(
        tmp_path / "b.jsonl", [record(), record(question_number=2, question="Which row?", correct_answer_num="5")]
    )
    with pytest.raises(GlobalrepError, match=r"row 1 .*Which row\?.*correct_answer_num must be 1-4"):
        belebele.prepare({}, str(path))
    with pytest.raises(GlobalrepError, match=r"no questions for language\(s\) \['swh_Latn'\]"):
        belebele.prepare({"languages": ["swh_Latn"]}, str(write_jsonl(tmp_path / "c.jsonl", [record()])))
    thin = write_jsonl(tmp_path / "thin.jsonl", [{"question": "Q?"}])
    with pytest.raises(GlobalrepError, match="missing column.*flores_passage"):
        belebele.prepare({}, str(thin))


def test_score_picks_the_highest_per_token_mean():
    items = belebele.prepare({}, str(DEMO)).head(2)  # answers: B, C
    predictions = pd.DataFrame({
        "model": ["m", "m"],
        "item_id": items["item_id"],
        # Item 1: A has the larger sum, but B's is spread over 4 tokens: -3/4 per token beats -2/1.
        "choice_logprob": [[-2.0, -3.0, -9.0, -9.0], [-4.0, -4.0, -2.0, -4.0]],
        "choice_ntokens": [[1, 4, 1, 1], [1, 1, 1, 1]],
    })  # fmt: skip
    scores = belebele.score(items, predictions, {})
    assert list(scores["predicted"]) == ["B", "C"]
    assert list(scores["value"]) == [100.0, 100.0] and set(scores["metric"]) == {"accuracy"}
    predictions.loc[0, "choice_ntokens"] = [1, 1, 1, 1]
    assert belebele.score(items, predictions, {})["value"].tolist() == [0.0, 100.0]
    table = group_table(belebele.score(items, predictions, {}))
    assert list(table.columns[:3]) == ["model", "group", "group_name"] and table.loc[0, "group_name"] == "English"


def test_requests_are_one_loglik_per_question():
    items = belebele.prepare({}, str(DEMO))
    requests = belebele.requests(items, {})
    assert [r.item_id for r in requests] == list(items["item_id"])
    assert requests[0].continuations == belebele.CONTINUATIONS
    assert requests[0].context.endswith("(D) Fruit cake\nFrom the choices, the answer is: ")
    assert np.all([r.key == "choice" for r in requests])


def per_item_scores(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            (model, f"{group}-{i}", group, "accuracy", v)
            for (model, group), vs in values.items()
            for i, v in enumerate(vs)
        ],
        columns=["model", "item_id", "group", "metric", "value"],
    )


def test_from_base_figures_and_the_nine_tydiqa_languages(tmp_path):
    from globalrep.tables import deltas_table

    scores = per_item_scores({
        ("base", "eng_Latn"): [100, 100, 0, 0], ("sft", "eng_Latn"): [100, 0, 0, 0], ("pt", "eng_Latn"): [100, 100, 100, 0],
        ("base", "acm_Arab"): [0, 0, 100, 100], ("sft", "acm_Arab"): [0, 0, 0, 100], ("pt", "acm_Arab"): [100, 0, 100, 100],
        ("base", "deu_Latn"): [0, 100, 0, 100], ("sft", "deu_Latn"): [0, 100, 0, 100], ("pt", "deu_Latn"): [0, 100, 0, 100],
    })  # fmt: skip
    chains = {"c": ["base", "sft", "pt"]}
    from_base = belebele.EXTRA_TABLES["from_base"](scores, chains, {})
    pairs = from_base.set_index(["to_model", "group"])["delta"]
    assert set(from_base["from_model"]) == {"base"}
    assert pairs[("pt", "eng_Latn")] == pytest.approx(25.0) and pairs[("sft", "acm_Arab")] == pytest.approx(-25.0)
    context = FigureContext(tmp_path, chains, {"base": "base", "sft": "sft", "pt": "pt"}, {"from_base": from_base})
    paths = belebele.figures(group_table(scores), deltas_table(scores, chains), context, {})
    names = {p.name for p in paths if p.suffix == ".png"}
    assert {"belebele_from_base_chain-c.png", "belebele_tydiqa_languages_from_base_chain-c.png",
            "belebele_tydiqa_languages_models.png", "belebele_models.png"} <= names  # fmt: skip

    german = group_table(scores[scores["group"] == "deu_Latn"])
    paths = belebele.figures(german, deltas_table(scores.iloc[:0], {}), FigureContext(tmp_path / "de"), {})
    assert "belebele_tydiqa_languages.png" in {p.name for p in paths}  # the notice: none of the nine


def test_unavailable_task_gets_the_generic_notice_and_the_nine_language_one(tmp_path):
    from globalrep.stages import empty_tables, task_figures

    empty_tables(tmp_path / "t.csv", tmp_path / "d.csv")
    written = task_figures("belebele", {}, tmp_path / "t.csv", tmp_path / "d.csv", {}, {}, tmp_path / "figs",
                           unavailable="No published outputs for m.")  # fmt: skip
    assert sorted(p.name for p in written) == [
        "belebele_not_evaluated.pdf", "belebele_not_evaluated.png",
        "belebele_tydiqa_languages.pdf", "belebele_tydiqa_languages.png",
    ]  # fmt: skip
