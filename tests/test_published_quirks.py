"""The published backend on what the paper's complete repository holds beyond the sample: values
missing for one item (empty cells, ``nan``, ``NaN``, ``None``, absent TyDiQA ids), an extra
``using_chat_template`` column, ties; and structural problems that must stop the run. The
fixtures are the sample's files with the quirks written in."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pandas as pd
import pytest

from globalrep import missing_answers
from globalrep.engine import published
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec
from globalrep.tasks import askreddit, global_opinions, md3_taboo, tydiqa_goldp, where_from

GAMES_PER_DIALECT = 4


def answer_with(task, items, path, kind="lm", options=None):
    model = ModelSpec(name="m", path="org/model", kind=kind, backend="published", published={task.NAME: str(path)})
    return published.answer(
        task.NAME, model, items, task.requests(items, options or {}, kind), task.read_published
    ).assign(model="m")


@pytest.fixture
def md3_file(shared_data, tmp_path):
    """The first games of each dialect of a sample MD3 file, in the paper's order, with the
    qwen1.5-chat quirks: an extra column, a game without probabilities, a `nan` among the
    distractors' probabilities and an empty generation."""
    sample = shared_data / "paper_outputs" / "md3-game" / "Mistral-7B-v0.1_8bit-no-answers.csv"
    games = pd.read_csv(sample, dtype=str, keep_default_na=False).groupby("dialect", sort=False).head(GAMES_PER_DIALECT)
    games = games.reset_index(drop=True).assign(using_chat_template="True")
    games.loc[0, "correct_answer_prob"] = ""
    games.loc[0, "distractor_probs"] = "[nan, nan, nan, nan, nan]"
    games.loc[0, ["chose_correct_answer", "chose_correct_answer_num"]] = [
        "False",
        "0",
    ]  # the paper put a distractor first
    games.loc[1, "distractor_probs"] = "[0.1, NaN, 0.2, 0.3, 0.1]"
    games.loc[2, "generated_answer"] = ""
    path = tmp_path / "qwen1.5_chat_8bit-no-answers.csv"
    games.to_csv(path, index=False)
    return path


def test_md3_missing_values_are_counted_and_scored_as_the_paper_did(md3_file, caplog):
    items = md3_taboo.prepare({"items_csv": str(md3_file)})
    with caplog.at_level("WARNING"):
        predictions = answer_with(md3_taboo, items, md3_file)
    assert "3 of 12 items have a missing value" in caplog.text
    missing = predictions.set_index("item_id")["missing_answer"]
    assert missing[items["item_id"][:3]].all() and not missing[items["item_id"][3:]].any()
    scores = md3_taboo.score(items, predictions, {}).set_index(["item_id", "metric"])["value"]
    assert scores[(items["item_id"][0], "chose_correct")] == 0.0
    assert scores[(items["item_id"][1], "chose_correct")] == 0.0
    assert scores[(items["item_id"][2], "generated_correct")] == 0.0


def paper_answer_positions(path) -> list[int]:
    """The positions the paper drew: random.seed(221), randint(0, n - 1) per game in file order."""
    games = pd.read_csv(path, dtype=str, keep_default_na=False)
    draw = random.Random(221)
    return [draw.randint(0, len(json.loads(d.replace("'", '"'))) - 1) for d in games["distractors"]]


def test_md3_ties_go_to_the_first_choice_in_the_papers_order(md3_file, tmp_path):
    games = pd.read_csv(md3_file, dtype=str, keep_default_na=False)
    positions = paper_answer_positions(md3_file)
    # A tie between the answer and the first distractor: the answer wins iff the paper put it first.
    for index in range(3, len(games)):
        games.loc[index, "correct_answer_prob"] = "0.3"
        games.loc[index, "distractor_probs"] = "[0.3, 0.1, 0.1, 0.1, 0.1]"
        games.loc[index, "chose_correct_answer"] = str(positions[index] == 0)  # as the paper recorded it
    tied = tmp_path / "tied.csv"
    games.to_csv(tied, index=False)
    items = md3_taboo.prepare({"items_csv": str(tied)})
    scores = md3_taboo.score(items, answer_with(md3_taboo, items, tied), {})
    chose = scores[scores["metric"] == "chose_correct"].set_index("item_id")["value"]
    expected = [float(position == 0) for position in positions[3:]]
    assert chose[items["item_id"][3:]].tolist() == expected
    assert 0 < sum(expected) < len(expected)  # both outcomes occur, whatever our own positions


def test_md3_games_without_probabilities_take_the_papers_argmax_choice(md3_file, tmp_path):
    """qwen1.5's files hold games whose probabilities are all NaN; the paper's torch.argmax took
    the first NaN, so such a game "chose" the first choice in the paper's order: correct exactly
    where the paper put the answer first, as the file's ``chose_correct_answer`` records."""
    games = pd.read_csv(md3_file, dtype=str, keep_default_na=False)
    positions = paper_answer_positions(md3_file)
    games["correct_answer_prob"] = ""
    games["distractor_probs"] = "[nan, nan, nan, nan, nan]"
    games["chose_correct_answer"] = [str(position == 0) for position in positions]
    no_probs = tmp_path / "qwen1.5_8bit-no-answers.csv"
    games.to_csv(no_probs, index=False)
    items = md3_taboo.prepare({"items_csv": str(no_probs)})
    predictions = answer_with(md3_taboo, items, no_probs)
    assert predictions["missing_answer"].all()  # still counted as missing values
    scores = md3_taboo.score(items, predictions, {})
    chose = scores[scores["metric"] == "chose_correct"].set_index("item_id")["value"]
    assert chose[items["item_id"]].tolist() == [float(position == 0) for position in positions]
    assert 0 < sum(position == 0 for position in positions) < len(positions)

    games.loc[2, "chose_correct_answer"] = "False"  # a record that the paper's rule does not give
    games.to_csv(no_probs, index=False)
    with pytest.raises(
        GlobalrepError,
        match=r"qwen1.5_8bit-no-answers.csv: 1 row\(s\) \(first: row 2, counting "
        r"from 0\) whose 'chose_correct_answer' disagrees",
    ):
        answer_with(md3_taboo, items, no_probs)


def test_md3_games_out_of_the_papers_order_are_refused(md3_file, tmp_path):
    games = pd.read_csv(md3_file, dtype=str, keep_default_na=False)
    shuffled = tmp_path / "shuffled.csv"
    games.iloc[::-1].to_csv(shuffled, index=False)
    items = md3_taboo.prepare({"items_csv": str(shuffled)})
    with pytest.raises(GlobalrepError, match=r"shuffled.csv: the games are not in the paper's order"):
        answer_with(md3_taboo, items, shuffled)


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("correct_answer_prob", "high", r"row 4 \(counting from 0\): not a number: 'high'"),
        ("distractor_probs", "[0.1, 0.2]", r"row 4 \(counting from 0\): expected a list of 5 probabilities"),
        ("distractor_probs", "0.1 0.2", r"row 4 \(counting from 0\): expected a list of 5 probabilities"),
    ],
)
def test_md3_structural_problems_name_the_file_and_row(md3_file, column, value, message):
    games = pd.read_csv(md3_file, dtype=str, keep_default_na=False)
    games.loc[4, column] = value
    games.to_csv(md3_file, index=False)
    items = md3_taboo.prepare({"items_csv": str(md3_file)})
    with pytest.raises(GlobalrepError, match=message):
        answer_with(md3_taboo, items, md3_file)


def test_md3_missing_column_and_unreadable_file(md3_file, tmp_path):
    items = md3_taboo.prepare({"items_csv": str(md3_file)})
    games = pd.read_csv(md3_file, dtype=str, keep_default_na=False)
    no_probs = tmp_path / "no_probs.csv"
    games.drop(columns=["distractor_probs"]).to_csv(no_probs, index=False)
    with pytest.raises(GlobalrepError, match=r"no_probs.csv.*distractor_probs"):
        answer_with(md3_taboo, items, no_probs)
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\xff\xfe\x00\x00binary\x00")
    with pytest.raises(GlobalrepError, match=r"garbage.csv: cannot be read"):
        answer_with(md3_taboo, items, garbage)


def test_tydiqa_absent_ids_and_nulls_are_missing_answers(shared_data, tmp_path):
    sample = shared_data / "paper_outputs" / "tydiqa-goldp" / "{Mistral-7B-v0.1_8bit}" / "greedy" / "1-shot"
    folder = tmp_path / "{qwen1.5_chat_8bit}" / "greedy" / "1-shot"
    shutil.copytree(sample, folder)
    generations = json.loads((folder / "english.json").read_text(encoding="utf-8"))
    ids = list(generations)[:5]
    del generations[ids[0]]
    generations[ids[1]] = None
    (folder / "english.json").write_text(json.dumps(generations), encoding="utf-8")
    items = pd.DataFrame({"item_id": ids, "group": "english", "context": "c", "question": "q", "answers": [["a"]] * 5,
                          "shot_contexts": [[]] * 5, "shot_questions": [[]] * 5, "shot_answers": [[]] * 5})  # fmt: skip
    predictions = answer_with(tydiqa_goldp, items, folder, options={"num_shots": 0}).set_index("item_id")
    assert predictions["missing_answer"].tolist() == [True, True, False, False, False]
    assert (
        predictions.loc[ids[0], "answer_text"] == "" and predictions.loc[ids[2], "answer_text"] == generations[ids[2]]
    )
    (folder / "korean.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(GlobalrepError, match=r"korean.json: not readable as JSON"):
        answer_with(tydiqa_goldp, items.assign(group="korean"), folder, options={"num_shots": 0})


def test_askreddit_empty_cells_are_missing(shared_data, tmp_path):
    sample = shared_data / "paper_outputs" / "ask-reddit-perplexity-testing" / "Mistral-7B-v0.1-reformatted.csv"
    frame = pd.read_csv(sample, dtype=str, keep_default_na=False)
    frame.loc[0, "Japan"] = ""
    frame.loc[1, "Canada"] = "None"
    path = tmp_path / "qwen1.5_chat_8bit-reformatted.csv"
    frame.to_csv(path, index=False)
    items = askreddit.prepare({}, str(shared_data / "askreddit_countries" / "AskRedditCountries_final.csv"))
    predictions = answer_with(askreddit, items, path)
    assert predictions["missing_answer"].sum() == 2
    scores = askreddit.score(items, predictions, {})
    assert {"rank", "nll"} <= set(scores["metric"])
    frame.loc[2, "Japan"] = "tall"
    frame.to_csv(path, index=False)
    with pytest.raises(GlobalrepError, match=r"row 2 \(counting from 0\), column 'Japan': not a number: 'tall'"):
        answer_with(askreddit, items, path)


def test_global_opinions_nan_probabilities_and_extra_column(shared_data, tmp_path):
    sample = shared_data / "paper_outputs" / "globalopinionsqa" / "Mistral-7B-v0.1_8bit.csv"
    frame = pd.read_csv(sample, dtype=str, keep_default_na=False).head(20).assign(using_chat_template="False")
    frame.loc[0, "probs"] = "nan"
    frame.loc[1, "probs"] = "[" + ", ".join(["nan"] * len(eval(frame.loc[1, "probs"]))) + "]"
    path = tmp_path / "qwen1.5_chat_8bit.csv"
    frame.to_csv(path, index=False)
    items = global_opinions.prepare({}, str(path))
    assert "using_chat_template" not in set(items["countries"].explode())
    predictions = answer_with(global_opinions, items, path)
    assert predictions["missing_answer"].sum() == 2
    assert np.isnan(predictions["choice_logprob"].iloc[0]).all()


def test_where_from_empty_reward_is_missing(shared_data, tmp_path):
    sample = shared_data / "paper_outputs" / "reward-testing" / "where_from_starling-rm-7b-alpha.csv"
    frame = pd.read_csv(sample, dtype=str, keep_default_na=False)
    frame.loc[frame["country"] == "Japan", "reward"] = "NaN"
    path = tmp_path / "where_from.csv"
    frame.to_csv(path, index=False)
    items = where_from.prepare({})
    predictions = answer_with(where_from, items, path, kind="reward")
    assert predictions["missing_answer"].sum() == 1


def test_missing_answers_are_counted_per_model_for_the_report(tmp_path):
    flagged, plain = tmp_path / "flagged.parquet", tmp_path / "plain.parquet"
    pd.DataFrame({"item_id": ["a", "b", "c"], "missing_answer": [True, False, True]}).to_parquet(flagged)
    pd.DataFrame({"item_id": ["a", "b"]}).to_parquet(plain)  # a backend that never misses one
    counts = missing_answers.count({"qwen": [flagged, plain], "hf-model": [plain]})
    assert counts == {"qwen": (2, 5)}
    notes = missing_answers.with_notes({"md3_taboo": "No published outputs for x.", "belebele": ""},
                                       {"md3_taboo": {"qwen": [flagged]}, "tydiqa_goldp": {"m": [plain]}})  # fmt: skip
    assert notes == {"md3_taboo": "No published outputs for x. Missing answers (no value in a published file, or "
                                  "a non-finite score; not correct where choices are ranked, else left out): "
                                  "qwen: 2 of 3 items."}  # fmt: skip
