"""The MD3 Taboo task: raw MD3 preparation rules, the items CSV, requests, scoring (reproducing the
paper's Mistral chain from its published outputs), gap tables and Figure 2."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TOP_LEVEL_SCHEMA

from globalrep import config_checks, config_schema, md3, stages, tables
from globalrep.atomic import write_parquet_atomic
from globalrep.engine.requests import GenerateRequest, LoglikRequest
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec
from globalrep.sharding import shard_items
from globalrep.stats import unpaired_difference
from globalrep.tasks import md3_taboo as task
from globalrep.tasks.base import FigureContext

REPO = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO / "data" / "demo" / "md3"
PAPER_CHAIN = {  # our name -> published file
    "mistral-7b": "Mistral-7B-v0.1_8bit-no-answers.csv",
    "mistral-7b-sft-beta": "Mistral-SFT-7B_8bit-no-answers.csv",
    "zephyr-7b-beta": "zephyr-7b-beta_8bit-no-answers.csv",
}
# Clips the shipped curation names (see src/globalrep/data/md3_curation.yaml).
SKIPPED, KEPT_WHOLE, ALTERNATIVE = "6c2o0pur_r03_s1_p000", "03hxmcfy_r03_s1_p003", "03hxmcfy_r02_s1_p002"

PROMPT_HEADER = ["clip_identifier", "game_type", "prompt_status", "correct_word/image", "distractors"]
TRANSCRIPT_HEADER = ["clip_identifier", "start_time", "speaker_id", "transcript"]
DISTRACTORS = "['Alpha', 'Beta', 'Gamma', 'Delta', 'Epsilon']"


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_md3(folder: Path, prompts: dict[str, list[list[str]]], transcripts: dict[str, list[list[str]]]) -> Path:
    """A raw MD3 folder; dialects without rows get header-only files."""
    folder.mkdir(parents=True, exist_ok=True)
    for code in ("us", "in", "ng"):
        write_tsv(folder / f"prompts_en_{code}.tsv", PROMPT_HEADER, prompts.get(code, []))
        write_tsv(folder / f"transcripts_en_{code}.tsv", TRANSCRIPT_HEADER, transcripts.get(code, []))
    return folder


def game(clip: str, answer: str, game_type: str = "word", status: str = "win") -> list[str]:
    return [clip, game_type, status, answer, DISTRACTORS]


@pytest.fixture
def raw_md3(tmp_path) -> Path:
    """One fixture exercising every preparation rule."""
    us = [
        game("c1", "Lighthouse"),
        game("c2", "Pancake"),
        game("c3", "Bicycle", game_type="image"),
        game("c4", "Snowman", status="lose"),
        game("c5", "Volcano"),  # never said
        game(SKIPPED, "Football"),
        game(KEPT_WHOLE, "Umbrella"),
        game(ALTERNATIVE, "Egyptian"),
        game("c6", "Kettle"),  # said in the first line: nothing is left, as in the paper's 5 such games
        game("c2", "Pancake"),  # a duplicate prompt row
    ]
    lines = [
        ["c1", "0.1", "Speaker0", "A tall building by the sea."],
        ["c1", "0.1", "Speaker0", "A tall building by the sea."],  # duplicate row: dropped
        ["c1", "0.5", "Speaker1", "Okay."],
        ["c1", "0.9", "", "[noise]"],  # no speaker: skipped
        ["c1", "1.2", "Speaker0", "It has a light on top."],
        ["c1", "1.6", "Speaker1", "Okay."],  # the same as Speaker1's previous line: skipped
        ["c1", "2.0", "Speaker0", "Okay."],  # the same words from another speaker: kept
        ["c1", "2.4", "Speaker0", "   "],  # no text: skipped
        ["c1", "2.8", "Speaker1", "A LightHouse?"],  # the answer, case-insensitive: cut here
        ["c1", "3.2", "Speaker0", "Yes."],
        ["c2", "0.1", "Speaker1", "Flat, round, with syrup."],
        ["c2", "0.5", "Speaker0", "Pancake."],
        ["c3", "0.1", "Speaker0", "Two wheels."],
        ["c4", "0.1", "Speaker0", "Made of snow."],
        ["c5", "0.1", "Speaker0", "An angry mountain."],
        [SKIPPED, "0.1", "Speaker0", "Do you like football?"],
        [KEPT_WHOLE, "0.1", "Speaker0", "It keeps the rain off."],
        [KEPT_WHOLE, "0.5", "Speaker1", "An umbrella, right?"],  # kept: this clip shows everything
        [ALTERNATIVE, "0.1", "Speaker0", "From the land of pyramids."],
        [ALTERNATIVE, "0.5", "Speaker1", "Someone from Egypt?"],  # the curated spoken form: cut here
        [ALTERNATIVE, "0.9", "Speaker0", "Yes, Egyptian."],
        ["c6", "0.1", "Speaker0", "Kettle, no, sorry."],
    ]
    ng = [game("n1", "Jollof")]
    ng_lines = [["n1", "0.1", "Speaker0", "The red rice."], ["n1", "0.5", "Speaker1", "Jollof!"]]
    return write_md3(tmp_path / "md3", {"us": us, "ng": ng}, {"us": lines, "ng": ng_lines})


def by_answer(items: pd.DataFrame) -> dict[str, pd.Series]:
    return {item.answer: item for _, item in items.iterrows()}


def lines_of(item) -> list[tuple[str, str]]:
    return [tuple(line) for line in item.transcript]


# ---------------------------------------------------------------------------- preparation


def test_raw_md3_follows_every_preparation_rule(raw_md3, caplog):
    with caplog.at_level(logging.INFO, logger="globalrep.md3"):
        items = task.prepare({"md3_dir": str(raw_md3)})
    games = by_answer(items)
    assert set(games) == {"Lighthouse", "Pancake", "Umbrella", "Egyptian", "Kettle", "Jollof"}
    assert lines_of(games["Lighthouse"]) == [
        ("Speaker0", "A tall building by the sea."),
        ("Speaker1", "Okay."),
        ("Speaker0", "It has a light on top."),
        ("Speaker0", "Okay."),
    ]
    assert lines_of(games["Pancake"]) == [("Speaker1", "Flat, round, with syrup.")]
    assert lines_of(games["Umbrella"]) == [("Speaker0", "It keeps the rain off."), ("Speaker1", "An umbrella, right?")]
    assert lines_of(games["Egyptian"]) == [("Speaker0", "From the land of pyramids.")]
    assert lines_of(games["Kettle"]) == []
    assert games["Jollof"]["group"] == "en_ng" and games["Lighthouse"]["group"] == "en_us"
    assert list(games["Lighthouse"]["distractors"]) == ["Alpha", "Beta", "Gamma", "Delta", "Epsilon"]
    assert games["Egyptian"]["clip_identifier"] == ALTERNATIVE
    assert items["item_id"].is_unique and list(items.columns) == md3.ITEM_COLUMNS
    log = caplog.text
    assert "prompts_en_us.tsv: 7 won word games: 5 kept, 1 skipped by the curation, 1 dropped" in log
    assert "c5" in log  # the game whose answer never appears is named


def test_dialects_option_restricts_the_games(raw_md3):
    items = task.prepare({"md3_dir": str(raw_md3), "dialects": ["en_ng"]})
    assert list(items["answer"]) == ["Jollof"]


def test_demo_md3_prepares(tmp_path):
    items = task.prepare({"md3_dir": str(DEMO_DIR)})
    assert items["group"].value_counts().to_dict() == {"en_us": 3, "en_in": 5, "en_ng": 4}
    clips = set(items["clip_identifier"])
    assert ALTERNATIVE in clips and KEPT_WHOLE in clips and SKIPPED not in clips
    for item in items.itertuples():
        if item.clip_identifier != KEPT_WHOLE:
            assert item.answer.lower() not in md3.render(item.transcript).lower()


def test_missing_md3_says_where_to_get_it(tmp_path):
    with pytest.raises(GlobalrepError, match=r"'.*nowhere'.*jacobeis99/md3en.*md3_dir"):
        task.resolve_source({"md3_dir": str(tmp_path / "nowhere")})
    folder = write_md3(tmp_path / "partial", {}, {})
    (folder / "transcripts_en_in.tsv").unlink()
    with pytest.raises(GlobalrepError, match=r"lacks transcripts_en_in\.tsv.*Kaggle"):
        config_checks.resolve_source("md3_taboo", {"md3_dir": str(folder)})
    # Restricted to the dialects that are there, the folder is fine.
    assert task.resolve_source({"md3_dir": str(folder), "dialects": ["en_us", "en_ng"]}) == str(folder)


def test_exactly_one_source_key(tmp_path):
    with pytest.raises(GlobalrepError, match="exactly one of 'md3_dir'.*got neither"):
        task.resolve_source({"shards": 1})
    with pytest.raises(GlobalrepError, match="got md3_dir and items_csv"):
        task.resolve_source({"md3_dir": "a", "items_csv": "b.csv"})
    with pytest.raises(GlobalrepError, match=r"'gone\.csv'.*tasks\.md3_taboo\.items_csv"):
        task.resolve_source({"items_csv": "gone.csv"})


def test_source_files_of_a_folder_are_its_files(raw_md3):
    files = config_checks.source_files("md3_taboo", {"md3_dir": str(raw_md3)})
    assert [Path(f).name for f in files] == sorted(
        f"{kind}_en_{code}.tsv" for kind in ("prompts", "transcripts") for code in ("in", "ng", "us")
    )


def test_bad_raw_input_names_file_row_and_column(tmp_path):
    folder = write_md3(tmp_path / "md3", {"us": [["c1", "word", "win", "Kettle", "Alpha, Beta"]]}, {})
    with pytest.raises(GlobalrepError, match=r"prompts_en_us\.tsv: row 0 \(clip c1\), column 'distractors'"):
        task.prepare({"md3_dir": str(folder)})
    write_tsv(folder / "prompts_en_us.tsv", ["clip_identifier", "game_type"], [["c1", "word"]])
    with pytest.raises(GlobalrepError, match=r"prompts_en_us\.tsv: missing column\(s\) prompt_status"):
        task.prepare({"md3_dir": str(folder)})
    write_md3(folder, {"us": [game("c1", "Kettle"), game("c1", "Teapot")]}, {})
    with pytest.raises(GlobalrepError, match=r"clip\(s\) \['c1'\] have several different word games"):
        task.prepare({"md3_dir": str(folder)})


def test_items_csv_errors_name_the_row(tmp_path):
    path = tmp_path / "items.csv"
    good = {"dialect": "en_us", "transcript": "Speaker0: hi", "correct_answer": "Kettle", "distractors": '["Pot"]'}
    pd.DataFrame([good, {**good, "transcript": "no speaker here"}]).to_csv(path, index=False)
    with pytest.raises(GlobalrepError, match=r"row 1 \(counting from 0\), column 'transcript', line 1"):
        task.prepare({"items_csv": str(path)})
    pd.DataFrame([{**good, "dialect": "en_gb"}]).to_csv(path, index=False)
    with pytest.raises(GlobalrepError, match=r"unknown dialect\(s\) \['en_gb'\]"):
        task.prepare({"items_csv": str(path)})


def test_curation_ships_the_papers_facts(shared_data):
    """Our data file holds the same curation facts as the paper's list."""
    paper = pd.read_csv(shared_data / "md3_game" / "md3_curation.csv", keep_default_na=False)
    curation = md3.load_curation()
    ours = {(clip, "skip", "", note) for clip, note in curation.skip.items()}
    ours |= {(clip, "keep_full_transcript", "", "") for clip in curation.keep_full_transcript}
    ours |= {(clip, "cut_at_alternative", spoken, "") for clip, spoken in curation.cut_at_alternative.items()}
    assert ours == set(paper.itertuples(index=False, name=None))
    assert len(ours) == 174


def test_items_csv_loads_the_papers_894_games(shared_data):
    path = shared_data / "md3_game" / "md3_game_items.csv"
    items = task.prepare({"items_csv": str(path)})
    assert len(items) == 894 and items["item_id"].is_unique
    assert items["group"].value_counts().to_dict() == {"en_us": 427, "en_ng": 251, "en_in": 216}
    raw = pd.read_csv(path, keep_default_na=False)
    assert [md3.render(t) for t in items["transcript"]] == list(raw["transcript"])  # lossless
    assert (items["distractors"].map(len) == 5).all()
    only_in = task.prepare({"items_csv": str(path), "dialects": ["en_in"]})
    assert len(only_in) == 216


# ------------------------------------------------------------------------------- requests


def test_prompt_is_a_versioned_template():
    assert task.PROMPT_VERSION == "3"
    assert md3.build_prompt([("Speaker0", "It is hot."), ("Speaker1", "The sun?")]) == (
        "Taboo is a word-guessing game for two players. One player knows a secret word and describes "
        "it without saying it; the other player tries to guess the word. Below is the transcript of "
        "a game, stopped before the secret word was said. What is the secret word?\n\n"
        "Answer in this layout:\nTranscript: what the two players said.\n"
        "Secret Word: the word the describing player has in mind.\n\n---\n\n"  # the paper's legend and line
        'Transcript: "Speaker0: It is hot.\nSpeaker1: The sun?"\n\n'
        "Secret Word:"
    )


def test_requests_generate_and_rank_the_answer_at_a_seeded_position():
    items = task.prepare({"md3_dir": str(DEMO_DIR)})
    built = task.requests(items, {"seed": 7}, "lm")
    assert len(built) == 2 * len(items)
    generate = [r for r in built if isinstance(r, GenerateRequest)]
    choice = [r for r in built if isinstance(r, LoglikRequest)]
    assert all(r.max_new_tokens == 10 and r.key == "generated" for r in generate)
    assert task.requests(items, {"max_new_tokens": 3})[0].max_new_tokens == 3
    positions = []
    for request, item in zip(choice, items.itertuples()):
        assert request.context == md3.build_prompt(item.transcript)
        position = md3.answer_position(item.item_id, 5, 7)
        # The words right after "Secret Word:", as the paper scored them.
        assert request.continuations[position] == item.answer
        assert [c for i, c in enumerate(request.continuations) if i != position] == list(item.distractors)
        positions.append(position)
    assert len(set(positions)) > 1  # not always in the same place
    # The position depends on seed and item only, not on which items share a shard.
    half = shard_items(items, 2, 1)
    alone = [r for r in task.requests(half, {"seed": 7}) if isinstance(r, LoglikRequest)]
    assert {r.item_id: r.continuations for r in alone}.items() <= {r.item_id: r.continuations for r in choice}.items()
    other_seed = [r.continuations for r in task.requests(items, {"seed": 8}) if isinstance(r, LoglikRequest)]
    assert other_seed != [r.continuations for r in choice]


# ---------------------------------------------------------------------------------- scoring


@pytest.mark.parametrize(
    "text, correct",
    [
        ("Electronics.", True),  # the answer inside a longer word counts, as in the paper
        (" ELECTRON", True),
        ("Atom or electron", False),  # a distractor too
        ("Proton", False),
        ("", False),
    ],
)
def test_generated_correct(text, correct):
    assert md3.generated_correct(text, "Electron", ["Atom", "Proton", "Molecule"]) is correct


def test_chose_correct_uses_the_per_token_mean():
    # The answer's sum (-3 over 3 tokens) is below the distractor's (-2 over 1), its mean above.
    assert md3.chose_correct([-2.0, -3.0], [1, 3], answer_index=1)
    assert not md3.chose_correct([-2.0, -3.0], [1, 1], answer_index=1)
    assert md3.chose_correct([-1.0, -1.0], [1, 1], answer_index=0)  # a tie goes to the earlier choice


def test_chose_correct_under_the_papers_rule_takes_ties_and_nan_as_its_argmax_did():
    nan = float("nan")
    order = [1, 2, 0]  # choice 2 was scored first, then choice 0, then choice 1
    paper = {"tiebreak": order, "paper_rule": True}
    assert md3.chose_correct([-1.0, -2.0, -1.0], [1, 1, 1], answer_index=2, **paper)  # tie: first scored
    # No scores: torch.argmax took the first NaN, the choice scored first.
    assert md3.chose_correct([nan, nan, nan], [1, 1, 1], answer_index=2, **paper)
    assert not md3.chose_correct([nan, nan, nan], [1, 1, 1], answer_index=0, **paper)
    assert md3.chose_correct([-5.0, nan, -1.0], [1, 1, 1], answer_index=1, **paper)  # a NaN beats any score


def test_chose_correct_of_our_own_runs_never_chooses_a_nan_or_inf():
    nan, inf = float("nan"), float("inf")
    for answer_index in range(3):
        assert not md3.chose_correct([nan, nan, nan], [1, 1, 1], answer_index)
        assert not md3.chose_correct([-5.0, nan, -1.0], [1, 1, 1], answer_index, tiebreak=[1, 2, 0])
        assert not md3.chose_correct([-5.0, -inf, inf], [1, 1, 1], answer_index)


def published_predictions(shared_data: Path, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items and our predictions of the paper's Mistral chain, read by the ``published`` backend,
    plus the paper's own ``chose_correct_answer`` per game (``published_chose``)."""
    from globalrep.engine import published

    folder = shared_data / "paper_outputs" / "md3-game"
    items = task.prepare({"items_csv": str(folder / PAPER_CHAIN["mistral-7b"])})
    requests = task.requests(items, {"seed": seed})
    frames = []
    for model, name in PAPER_CHAIN.items():
        spec = ModelSpec(name=model, path="hub/id", backend="published", published={"md3_taboo": str(folder / name)})
        answers = published.answer("md3_taboo", spec, items, requests, task.read_published)
        paper = pd.read_csv(folder / name, keep_default_na=False)
        chose = (paper["chose_correct_answer"].astype(str) == "True").astype(float)
        answers["published_chose"] = answers["item_id"].map(
            dict(zip(md3.read_items_csv(folder / name)["item_id"], chose))
        )
        frames.append(answers.assign(model=model))
    assert len(items) == 894 and all(len(frame) == 894 for frame in frames)
    return items, pd.concat(frames, ignore_index=True)


def test_scoring_reproduces_the_papers_mistral_chain(shared_data):
    items, predictions = published_predictions(shared_data)
    scores = task.score(items, predictions, {})
    table = tables.group_table(scores)
    rate = {(r.model, r.group, r.metric): r.value for r in table.itertuples()}
    expected = {
        "mistral-7b": (0.089, 0.079, 0.076),
        "mistral-7b-sft-beta": (0.382, 0.231, 0.279),
        "zephyr-7b-beta": (0.464, 0.264, 0.303),
    }
    for model, values in expected.items():
        got = tuple(round(rate[(model, g, "generated_correct")], 3) for g in ("en_us", "en_in", "en_ng"))
        assert got == values, model
    # The paper's gains (+29.3 US, +15.2 Indian, +20.3 Nigerian) are differences of the rounded
    # rates; the exact paired deltas (29.27, 15.28, 20.32 points) round to within 0.1 of them.
    gains = {
        g: round(100 * (round(rate[("mistral-7b-sft-beta", g, "generated_correct")], 3)
                        - round(rate[("mistral-7b", g, "generated_correct")], 3)), 1)
        for g in ("en_us", "en_in", "en_ng")
    }  # fmt: skip
    assert gains == {"en_us": 29.3, "en_in": 15.2, "en_ng": 20.3}
    deltas = tables.deltas_table(scores, {"mistral": list(PAPER_CHAIN)})
    sft = deltas[(deltas["to_model"] == "mistral-7b-sft-beta") & (deltas["metric"] == "generated_correct")]
    for row in sft.itertuples():
        assert abs(100 * row.delta - gains[row.group]) < 0.1
        assert row.ci_low > 0 and row.p_value < 0.01
    # The choice metric matches the paper's chose_correct_answer game by game.
    chose = scores[scores["metric"] == "chose_correct"].merge(predictions, on=["model", "item_id"])
    assert (chose["value"] == chose["published_chose"]).all()
    assert round(rate[("zephyr-7b-beta", "en_us", "chose_correct")], 3) == 0.724


def test_gap_tables_on_the_papers_outputs(shared_data):
    """US English pulls away along the Mistral chain: the US − Indian gap widens at SFT."""
    items, predictions = published_predictions(shared_data)
    scores = task.score(items, predictions, {})
    gaps = task.EXTRA_TABLES["gaps"](scores, {}, {})
    assert list(gaps.columns) == tables.GAP_COLUMNS
    row = gaps[
        (gaps["model"] == "mistral-7b-sft-beta") & (gaps["group"] == "en_in") & (gaps["metric"] == "generated_correct")
    ].iloc[0]
    assert round(row.gap, 3) == round(0.381733 - 0.231481, 3)
    assert row.ci_low < row.gap < row.ci_high and row.ci_low > 0 and (row.n_reference, row.n_group) == (427, 216)
    chains = {"mistral": list(PAPER_CHAIN)}
    changes = task.EXTRA_TABLES["gap_changes"](scores, chains, {})
    assert list(changes.columns) == tables.GAP_CHANGE_COLUMNS
    widening = changes[(changes["to_model"] == "mistral-7b-sft-beta") & (changes["metric"] == "generated_correct")]
    assert set(widening["group"]) == {"en_in", "en_ng"}
    base_gap = gaps[(gaps["model"] == "mistral-7b") & (gaps["metric"] == "generated_correct")].set_index("group")["gap"]
    sft_gap = gaps[(gaps["model"] == "mistral-7b-sft-beta") & (gaps["metric"] == "generated_correct")].set_index(
        "group"
    )["gap"]
    for r in widening.itertuples():
        assert math.isclose(r.change, sft_gap[r.group] - base_gap[r.group])
    assert widening.set_index("group").loc["en_in", "ci_low"] > 0


def test_gap_tables_by_hand():
    scores = pd.DataFrame(
        [
            # model, item, group, value
            ("a", "u1", "en_us", 1.0), ("a", "u2", "en_us", 0.0), ("a", "i1", "en_in", 0.0), ("a", "i2", "en_in", 0.0),
            ("b", "u1", "en_us", 1.0), ("b", "u2", "en_us", 1.0), ("b", "i1", "en_in", 1.0), ("b", "i2", "en_in", 0.0),
        ],
        columns=["model", "item_id", "group", "value"],
    ).assign(metric="m")  # fmt: skip
    gaps = tables.gaps_table(scores, "en_us").set_index("model")
    assert gaps.loc["a", "gap"] == 0.5 and gaps.loc["b", "gap"] == 0.5
    changes = tables.gap_changes_table(scores, "en_us", {"c": ["a", "b"]})
    # US rose by 0.5 per item on average, Indian by 0.5: the gap did not change.
    assert changes["change"].tolist() == [0.0] and changes["group"].tolist() == ["en_in"]
    assert tables.gaps_table(scores[scores["group"] != "en_us"], "en_us").empty


def test_unpaired_difference():
    rng = np.random.default_rng(1)
    first, second = rng.normal(1.0, 1.0, 200), rng.normal(0.0, 1.0, 150)
    diff, low, high, p = unpaired_difference(first, second)
    assert diff == pytest.approx(first.mean() - second.mean())
    assert low < diff < high and low > 0.5 and p < 0.01
    assert unpaired_difference(first, second) == (diff, low, high, p)  # seeded
    same = unpaired_difference(rng.normal(0, 1, 100), rng.normal(0, 1, 100))
    assert same[1] < 0 < same[2] and same[3] > 0.05
    one = unpaired_difference([1.0], [0.0, 1.0])  # one value: no spread to resample
    assert one[:3] == (0.5, 0.5, 0.5) and math.isnan(one[3])
    assert unpaired_difference([1.0, 1.0], [1.0, 1.0]) == (0.0, 0.0, 0.0, 1.0)
    assert all(math.isnan(v) for v in unpaired_difference([], [1.0]))


def test_score_rejects_predictions_that_do_not_fit():
    items = task.prepare({"md3_dir": str(DEMO_DIR)})
    one = items.iloc[0]
    good = {
        "model": "m",
        "item_id": one.item_id,
        "generated_text": "x",
        "choice_logprob": [-1.0] * 6,
        "choice_ntokens": [1] * 6,
    }
    with pytest.raises(GlobalrepError, match="5 choice scores for 6 choices"):
        task.score(items, pd.DataFrame([{**good, "choice_logprob": [-1.0] * 5}]), {})
    with pytest.raises(GlobalrepError, match="not in the prepared items"):
        task.score(items, pd.DataFrame([{**good, "item_id": "md3-unknown"}]), {})
    with pytest.raises(GlobalrepError, match="lack column.*generated_text"):
        task.score(items, pd.DataFrame([good]).drop(columns="generated_text"), {})


# ----------------------------------------------------------------- pipeline, figures, engine


def test_infer_and_score_with_a_tiny_model(tmp_path, tiny_lm_dir):
    """The engine answers the task's requests in the columns the scorer reads."""
    prepared = tmp_path / "prepared.parquet"
    stages.prepare_task("md3_taboo", {"md3_dir": str(DEMO_DIR)}, prepared)
    spec = ModelSpec(name="tiny", path=str(tiny_lm_dir), dtype="float32")
    shard = tmp_path / "shard.parquet"
    options = {"md3_dir": str(DEMO_DIR), "max_new_tokens": 2}
    stages.infer_shard("md3_taboo", options, spec, prepared, 4, 0, {"device": "cpu"}, shard)
    outs = [tmp_path / name for name in ("scores.parquet", "table.csv", "deltas.csv")]
    stages.score_task("md3_taboo", options, prepared, {"tiny": [shard, *_empty_shards(tmp_path, prepared)]}, {}, *outs)
    scores = pd.read_parquet(outs[0])
    assert len(scores) == 2 * len(pd.read_parquet(prepared)) and set(scores["value"]) <= {0.0, 1.0}
    answered = set(pd.read_parquet(shard)["item_id"])
    assert len(answered) == 3 and answered <= set(scores["item_id"])
    stages.extra_table("md3_taboo", options, outs[0], {}, "gaps", tmp_path / "gaps.csv")
    assert list(pd.read_csv(tmp_path / "gaps.csv").columns) == tables.GAP_COLUMNS


def _empty_shards(tmp_path: Path, prepared: Path) -> list[Path]:
    """Shards 1-3 of 4, answered by a fake: right items, fixed answers (only shard 0 runs the model)."""
    items = pd.read_parquet(prepared)
    paths = []
    for shard in (1, 2, 3):
        part = shard_items(items, 4, shard)
        frame = pd.DataFrame(
            {
                "item_id": part["item_id"],
                "generated_text": part["answer"],
                "choice_logprob": [[-1.0] * 6] * len(part),
                "choice_ntokens": [[1] * 6] * len(part),
            }
        )
        path = tmp_path / f"fake-{shard}.parquet"
        write_parquet_atomic(frame, path, stages.shard_made_by("md3_taboo", "tiny", "", shard, 4, part["item_id"]))
        paths.append(path)
    return paths


def test_figure_2_layout(tmp_path):
    rows = []
    for model, stage_value in (("base", 0.1), ("sft", 0.3), ("pt", 0.4)):
        for group, drop in (("en_us", 0.0), ("en_in", 0.1), ("en_ng", 0.05)):
            value = stage_value - drop
            rows += [(model, group, metric, value, value - 0.05, value + 0.05, 10) for metric in md3.METRICS]
    table = pd.DataFrame(rows, columns=tables.GROUP_COLUMNS)
    chains = {"one": ["base", "sft", "pt"], "two": ["base", "pt"]}
    context = FigureContext(tmp_path, chains, {"base": "base", "sft": "sft", "pt": "pt"})
    written = task.figures(table, pd.DataFrame(), context, {})
    assert sorted(p.name for p in written) == sorted(
        f"md3_taboo_{metric}.{suffix}" for metric in md3.METRICS for suffix in ("pdf", "png")
    )
    assert all(p.stat().st_size > 1000 for p in written)


def test_schema_block_covers_the_options():
    schema = config_schema.assemble(TOP_LEVEL_SCHEMA)
    keys = set(schema["$defs"]["md3_taboo"]["properties"])
    assert keys == {"md3_dir", "items_csv", "dialects", "max_new_tokens", "seed", "shards", "prompt_template"}
    demo = yaml.safe_load((REPO / "config.yaml").read_text())
    assert demo["tasks"]["md3_taboo"] == {"md3_dir": "data/demo/md3"}
