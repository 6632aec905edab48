"""The two dialect tasks: md3_taboo_transfer (MD3 games in SAE and rewritten dialects, paired) and
rm_dialect_probe (reward models on SAE vs dialect user turns). Rewrites here are stand-ins
(test_dialects.py runs Multi-VALUE itself), so these tests need no Multi-VALUE."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import TOP_LEVEL_SCHEMA

from globalrep import config_schema, dialect_pairs, stages, tables
from globalrep.atomic import write_parquet_atomic
from globalrep.engine.requests import GenerateRequest, LoglikRequest, RewardRequest
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec
from globalrep.tasks import md3_taboo, md3_taboo_transfer, rm_dialect_probe

REPO = Path(__file__).resolve().parents[1]
DEMO_MD3 = REPO / "data" / "demo" / "md3"
DEMO_PROBE = REPO / "data" / "demo" / "rm_dialect_probe.csv"


def shout(items: pd.DataFrame, column: str) -> pd.DataFrame:
    """A stand-in dialect rewrite: the column's text in capitals, as the dialect stage writes it."""
    if column == "transcript":
        text = items[column].map(lambda lines: [[speaker, str(t).upper()] for speaker, t in lines])
    else:
        text = items[column].str.upper()
    return items.assign(**{column: text}, dialect_rules=[["shout"]] * len(items), rewrite_failed=False)


@pytest.fixture
def games() -> pd.DataFrame:
    """The demo's US English games, as written (sae) and 'shouted', paired."""
    sae = md3_taboo_transfer.prepare({"md3_dir": str(DEMO_MD3)})
    return dialect_pairs.combine(sae, {"shout": shout(sae, "transcript")})


# ------------------------------------------------------------------------ md3_taboo_transfer


def test_transfer_prepares_the_us_games_as_sae():
    sae = md3_taboo_transfer.prepare({"md3_dir": str(DEMO_MD3)})
    us = md3_taboo.prepare({"md3_dir": str(DEMO_MD3), "dialects": ["en_us"]})
    assert list(sae["item_id"]) == list(us["item_id"]) and len(sae) == 3
    assert set(sae["group"]) == {"sae"}


def test_transfer_takes_the_papers_427_us_games(shared_data):
    path = str(shared_data / "md3_game" / "md3_game_items.csv")
    options = {"items_csv": path}
    assert md3_taboo_transfer.resolve_source(options) == path
    assert len(md3_taboo_transfer.prepare(options)) == 427


def test_transfer_source_errors(tmp_path):
    with pytest.raises(GlobalrepError, match="tasks.md3_taboo_transfer' needs exactly one of 'md3_dir'"):
        md3_taboo_transfer.resolve_source({})
    with pytest.raises(GlobalrepError, match="lacks prompts_en_us.tsv.*Kaggle"):
        md3_taboo_transfer.resolve_source({"md3_dir": str(tmp_path)})
    with pytest.raises(GlobalrepError, match="tasks.md3_taboo_transfer.items_csv"):
        md3_taboo_transfer.resolve_source({"items_csv": str(tmp_path / "nope.csv")})


def test_every_version_of_a_game_gets_the_same_choices(games):
    built = md3_taboo_transfer.requests(games, {"seed": 3})
    assert {r.item_id for r in built} == set(games["item_id"])
    choices = {r.item_id: r for r in built if isinstance(r, LoglikRequest)}
    guesses = {r.item_id: r for r in built if isinstance(r, GenerateRequest)}
    for game in games[games["group"] == "sae"].itertuples():
        sae, loud = choices[game.item_id], choices[f"{game.pair_id}@shout"]
        assert sae.continuations == loud.continuations  # same answer position in both versions
        assert sae.context != loud.context and loud.context == guesses[loud.item_id].prompt
        assert game.transcript[0][1].upper() in loud.context and "Speaker" in loud.context


def test_transfer_scores_pair_up(games):
    """Game 0: only the shouted version guessed right; game 1: both; game 2: neither."""
    answers = dict(zip(games["item_id"], games["answer"]))
    right = {f"{games['pair_id'][0]}@shout", f"{games['pair_id'][1]}@sae", f"{games['pair_id'][1]}@shout"}
    predictions = pd.DataFrame(
        {
            "model": "m",
            "item_id": games["item_id"],
            "generated_text": [answers[i] if i in right else "no idea" for i in games["item_id"]],
            "choice_logprob": [[-1.0] * 6] * len(games),
            "choice_ntokens": [[1] * 6] * len(games),
        }
    )
    scores = md3_taboo_transfer.score(games, predictions, {})
    generated = scores[scores["metric"] == "generated_correct"].set_index("item_id")
    assert generated["value"].to_dict() == {i: float(i in right) for i in games["item_id"]}
    assert (generated["pair_id"] == games.set_index("item_id")["pair_id"]).all()
    rows = md3_taboo_transfer.table_scores(scores, {})
    gap = rows[rows["metric"] == "generated_correct_vs_sae"]
    assert sorted(gap["value"]) == [0.0, 0.0, 1.0]
    table = md3_taboo_transfer.EXTRA_TABLES["dialect_pairs"](rows, {}, {})
    row = table[table["metric"] == "generated_correct"].iloc[0]
    assert (row["sae"], row["dialect_value"], row["p_value"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0)
    with pytest.raises(GlobalrepError, match="not in the prepared items"):
        md3_taboo_transfer.score(games, predictions.assign(item_id="md3-x@sae"), {})


# ------------------------------------------------------------------------ rm_dialect_probe


def test_probe_prepares_prompts_and_replies(tmp_path):
    items = rm_dialect_probe.prepare({"source": str(DEMO_PROBE)}, str(DEMO_PROBE))
    raw = pd.read_csv(DEMO_PROBE)
    assert list(items["prompt"]) == list(raw["prompt"]) and list(items["response"]) == list(raw["response"])
    assert items["item_id"].is_unique and set(items["group"]) == {"sae"}
    questions = tmp_path / "questions.csv"
    pd.DataFrame({"Questions": ["Why is it late?", "Why is it late?", "Where is it?"]}).to_csv(questions, index=False)
    fixed = rm_dialect_probe.prepare({"prompt_column": "Questions", "response": "It depends."}, str(questions))
    assert list(fixed["prompt"]) == ["Why is it late?", "Where is it?"] and set(fixed["response"]) == {"It depends."}


def test_probe_input_errors(tmp_path):
    questions = tmp_path / "questions.csv"
    pd.DataFrame({"Questions": ["Why?", ""]}).to_csv(questions, index=False)
    with pytest.raises(GlobalrepError, match="no column 'prompt'.*prompt_column.*columns: Questions"):
        rm_dialect_probe.prepare({}, str(questions))
    with pytest.raises(GlobalrepError, match="no column 'response'.*tasks.rm_dialect_probe.response'"):
        rm_dialect_probe.prepare({"prompt_column": "Questions"}, str(questions))
    with pytest.raises(GlobalrepError, match="row 1 .* empty prompt"):
        rm_dialect_probe.prepare({"prompt_column": "Questions", "response": "Hm."}, str(questions))


def test_probe_reads_askredditcountries(shared_data):
    path = shared_data / "askreddit_countries" / "AskRedditCountries_final.csv"
    options = {"prompt_column": "Questions", "response": "That depends on what you value most."}
    items = rm_dialect_probe.prepare(options, str(path))
    raw = pd.read_csv(path)
    assert len(items) == raw["Questions"].str.strip().nunique() > 500


def test_probe_requests_score_only_the_user_turn_change(tmp_path):
    sae = rm_dialect_probe.prepare({}, str(DEMO_PROBE))
    items = dialect_pairs.combine(sae, {"shout": shout(sae, "prompt")})
    built = rm_dialect_probe.requests(items, {})
    assert all(isinstance(r, RewardRequest) and len(r.conversations) == 1 for r in built)
    by_id = {r.item_id: r.conversations[0].messages for r in built}
    for item in sae.itertuples():
        (_, sae_user), (_, sae_reply) = by_id[f"{item.item_id}@sae"]
        (_, loud_user), (_, loud_reply) = by_id[f"{item.item_id}@shout"]
        assert loud_user == sae_user.upper() and loud_reply == sae_reply == item.response
    predictions = pd.DataFrame(
        {"model": "rm", "item_id": items["item_id"], "probe_reward": [[float(len(p))] for p in items["prompt"]]}
    )
    scores = rm_dialect_probe.score(items, predictions, {})
    assert list(scores.columns) == ["model", "item_id", "group", "metric", "value", "pair_id"]
    rows = rm_dialect_probe.table_scores(scores, {})
    assert (rows.loc[rows["metric"] == "reward_vs_sae", "value"] == 0).all()  # same length, same reward
    with pytest.raises(GlobalrepError, match="not in the prepared items"):
        rm_dialect_probe.score(items, predictions.assign(item_id="rmp-x@sae"), {})


# ------------------------------------------------------------------------ engine, tables, figures


def _paired_items(task: str, options: dict, column: str, out: Path) -> Path:
    """What the dialect stage writes for ``task``: its SAE items and one stand-in dialect."""
    sae_path = out / f"{task}@sae.parquet"
    stages.prepare_task(task, options, sae_path)
    sae = pd.read_parquet(sae_path)
    shout_path = out / f"{task}@shout.parquet"
    write_parquet_atomic(shout(sae, column), shout_path)
    prepared = out / f"{task}.parquet"
    dialect_pairs.combine_task_items(sae_path, {"shout": shout_path}, prepared)
    dialect_pairs.summarize_rewrites({"shout": shout_path}, out / f"{task}_rewrites.csv")
    return prepared


@pytest.mark.parametrize(
    "task, options, column, model",
    [
        ("md3_taboo_transfer", {"md3_dir": str(DEMO_MD3), "max_new_tokens": 2}, "transcript", "lm"),
        ("rm_dialect_probe", {"source": str(DEMO_PROBE)}, "prompt", "reward"),
    ],
)
def test_infer_score_tables_and_figures_with_tiny_models(
    tmp_path, task, options, column, model, tiny_lm_dirs, tiny_rm_dir
):
    prepared = _paired_items(task, options, column, tmp_path)
    rewrites = pd.read_csv(tmp_path / f"{task}_rewrites.csv")
    assert rewrites.set_index("rule").loc["shout", "share"] == 1.0
    if model == "lm":
        specs = [
            ModelSpec(name=stage, path=str(path), dtype="float32", stage=stage)
            for stage, path in list(tiny_lm_dirs.items())[:2]
        ]
    else:
        specs = [ModelSpec(name="rm", path=str(tiny_rm_dir), kind="reward", dtype="float32", stage="pt")]
    shards = {}
    for spec in specs:
        shards[spec.name] = [tmp_path / f"{spec.name}.parquet"]
        stages.infer_shard(task, options, spec, prepared, 1, 0, {"device": "cpu"}, shards[spec.name][0])
    chains = {"c": [spec.name for spec in specs]} if len(specs) > 1 else {}
    outs = [tmp_path / name for name in ("scores.parquet", "table.csv", "deltas.csv")]
    stages.score_task(task, options, prepared, shards, chains, *outs)
    table = tables.read_table(outs[1])
    assert {"sae", "shout"} == set(table["group"])
    assert set(table.loc[table["group"] == "shout", "metric"]) > set(table.loc[table["group"] == "sae", "metric"])
    stages.extra_table(task, options, outs[0], chains, "dialect_pairs", tmp_path / "pairs.csv")
    pairs = pd.read_csv(tmp_path / "pairs.csv")
    with_q = dialect_pairs.COMPARISON_COLUMNS.copy()
    with_q.insert(with_q.index("p_value") + 1, "q_value")
    assert list(pairs.columns) == with_q and set(pairs["dialect"]) == {"shout"}
    models_stage = {spec.name: spec.stage for spec in specs}
    written = stages.task_figures(task, options, outs[1], outs[2], chains, models_stage, tmp_path / "figures")
    assert len(written) >= 4 and all(p.stat().st_size > 1000 for p in written)


def test_schema_and_demo_config_cover_the_dialect_tasks():
    schema = config_schema.assemble(TOP_LEVEL_SCHEMA)
    assert {"md3_taboo_transfer", "rm_dialect_probe"} <= set(schema["properties"]["tasks"]["properties"])
    demo = yaml.safe_load((REPO / "config.yaml").read_text())
    assert demo["dialects"] == ["indian", "nigerian"]
    assert demo["tasks"]["rm_dialect_probe"] == {"source": "data/demo/rm_dialect_probe.csv"}
    assert schema["properties"]["dialect_seed"]["default"] == 1


def test_workflow_plans_the_dialect_stage(tmp_path):
    """Per dialect task: its SAE items, then one job for its rewrites and their pairing (not
    prepare_task) and one for its rewrites table, a target of the run; the NLTK data once. An
    unknown dialect stops the run before any job."""
    from workflow_runs import (
        copy_workflow,
        edit_config,
        job_stats,
        output_of,
        snakemake,
    )

    workdir = copy_workflow(tmp_path)
    edit_config(workdir, lambda c: c.update(dialects=["indian", "nigerian", "kenyan"]))
    result = snakemake(
        workdir, "-n", "results/prepared/md3_taboo_transfer.parquet", "results/prepared/rm_dialect_probe.parquet"
    )
    out = output_of(result)
    assert result.returncode == 0, out
    stats = job_stats(out)
    assert stats["rewrite_dialects"] == 2 and stats["prepare_sae_items"] == 2
    assert "prepare_task" not in stats
    assert stats.get("build_nltk_data", 0) <= 1
    assert "results/prepared/rm_dialect_probe@kenyan.parquet" in out
    every_job = job_stats(output_of(snakemake(workdir, "-n")))
    assert every_job["summarize_rewrites"] == 2 and every_job["rewrite_dialects"] == 2
    edit_config(workdir, lambda c: c.update(dialects=["indian", "klingon"]))
    result = snakemake(workdir, "-n")
    assert result.returncode != 0 and "config key 'dialects.1'" in output_of(result)
