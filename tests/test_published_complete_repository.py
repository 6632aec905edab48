"""config/paper-published.yaml on a tree laid out like the paper's complete repository: one file
per model and task under its real name (the table in ../shared/README.md), written from the
sample's files cut to a few items, with the quirks the real files hold (TyDiQA folders such as
``{qwen1.5_8bit}`` that Snakemake would read as wildcards; missing values in qwen1.5-chat's)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from workflow_runs import copy_workflow, output_of, snakemake, write_yaml

from globalrep.tasks import global_opinions

# our name: (md3-game/, tydiqa-goldp/, globalopinionsqa/, ask-reddit-perplexity-testing/)
PAPER_FILES = {
    "llama-2-7b": ("Llama-2-7b-hf_8bit-no-answers.csv", "{Llama-2-7b-hf_8bit}", "Llama-2-7b-hf_8bit.csv", "Llama-2-7b-hf-reformatted.csv"),
    "llama-2-7b-chat": ("Llama-2-7b-chat-hf_8bit-no-answers.csv", "{Llama-2-7b-chat-hf_8bit}", "Llama-2-7b-chat-hf_8bit.csv", "Llama-2-7b-chat-hf-reformatted.csv"),
    "tulu-2-7b": ("Tulu-2-SFT_8bit-no-answers.csv", "{Tulu-2-SFT_8bit}", "Tulu-2-SFT_8bit.csv", "Tulu-2-SFT_8bit-reformatted.csv"),
    "tulu-2-dpo-7b": ("Tulu-2-DPO_8bit-no-answers.csv", "{Tulu-2-DPO_8bit}", "Tulu-2-DPO_8bit.csv", "Tulu-2-DPO_8bit-reformatted.csv"),
    "mistral-7b": ("Mistral-7B-v0.1_8bit-no-answers.csv", "{Mistral-7B-v0.1_8bit}", "Mistral-7B-v0.1_8bit.csv", "Mistral-7B-v0.1-reformatted.csv"),
    "mistral-7b-sft-beta": ("Mistral-SFT-7B_8bit-no-answers.csv", "{Mistral-SFT-7B_8bit}", "Mistral-SFT-7B_8bit.csv", "Mistral-SFT-7B_8bit-reformatted.csv"),
    "zephyr-7b-beta": ("zephyr-7b-beta_8bit-no-answers.csv", "{zephyr-7b-beta_8bit}", "zephyr-7b-beta_8bit.csv", "zephyr-7b-beta_8bit-reformatted.csv"),
    "openchat-3.5": ("OpenChat3.5_8bit-no-answers.csv", "{OpenChat3.5-7B_8bit}", "OpenChat3.5-7B_8bit.csv", "OpenChat3.5_8bit-reformatted.csv"),
    "starling-lm-7b-alpha": ("starling-alpha-7b_8bit-no-answers.csv", "{Starling-7B-alpha_8bit}", "starling-alpha-7b_8bit.csv", "starling-alpha-7b-reformatted.csv"),
    "qwen1.5-7b": ("qwen1.5_8bit-no-answers.csv", "{qwen1.5_8bit}", "qwen1.5_8bit.csv", "qwen1.5_8bit-reformatted.csv"),
    "qwen1.5-7b-chat": ("qwen1.5_chat_8bit-no-answers.csv", "{qwen1.5_chat_8bit}", "qwen1.5_chat_8bit.csv", "qwen1.5_chat_8bit-reformatted.csv"),
    "yi-6b": ("yi-8b_8bit-no-answers.csv", "{yi-8b_8bit}", "yi-8b_8bit.csv", "yi-8b_8bit-reformatted.csv"),
    "yi-6b-chat": ("yi-8b-chat_8bit-no-answers.csv", "{yi-8b-chat_8bit}", "yi-8b-chat_8bit.csv", "yi-8b-chat_8bit-reformatted.csv"),
}  # fmt: skip
GAMES_PER_DIALECT = 3
QUESTIONS = 6  # per TyDiQA language, GlobalOpinionQA and AskReddit


def cut_tydiqa_dev(source: Path, dest: Path) -> set[str]:
    """The first questions of each dev file (one per article), in the SQuAD layout; returns their ids."""
    dest.mkdir(parents=True)
    ids = set()
    for file in sorted(source.glob("*.json")):
        data = json.loads(file.read_text(encoding="utf-8"))
        data["data"] = data["data"][:QUESTIONS]
        ids |= {qa["id"] for article in data["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]}
        (dest / file.name).write_text(json.dumps(data), encoding="utf-8")
    return ids


def write_complete_repository(shared: Path, repo: Path) -> None:
    """The paper's repository layout (outputs/ and data/) with every model's files."""
    sample, outputs = shared / "paper_outputs", repo / "outputs"
    md3 = pd.read_csv(sample / "md3-game" / "Mistral-7B-v0.1_8bit-no-answers.csv", dtype=str, keep_default_na=False)
    md3 = md3.groupby("dialect", sort=False).head(GAMES_PER_DIALECT).reset_index(drop=True)
    goqa = pd.read_csv(sample / "globalopinionsqa" / "Mistral-7B-v0.1_8bit.csv", dtype=str, keep_default_na=False)
    asked = (
        goqa[list(global_opinions.FOCUS_COUNTRIES)].apply(pd.to_numeric, errors="coerce") != global_opinions.NOT_ASKED
    )
    goqa = goqa[asked.all(axis=1)].head(QUESTIONS).reset_index(drop=True)  # the table needs all focus countries
    questions = pd.read_csv(shared / "askreddit_countries" / "AskRedditCountries_final.csv").head(QUESTIONS)
    askreddit = pd.read_csv(
        sample / "ask-reddit-perplexity-testing" / "Mistral-7B-v0.1-reformatted.csv", dtype=str, keep_default_na=False
    )
    askreddit = askreddit[askreddit["Question"].isin(questions["Questions"])]
    ids = cut_tydiqa_dev(shared / "tydiqa-goldp-v1.1-dev", repo / "tydiqa-dev")
    for folder in (
        "md3-game",
        "globalopinionsqa",
        "ask-reddit-perplexity-testing",
        "ask-reddit-reward-testing",
        "reward-testing",
    ):
        (outputs / folder).mkdir(parents=True)
    for model, (md3_name, tydiqa_dir, goqa_name, askreddit_name) in PAPER_FILES.items():
        games, opinions, perplexities = md3.copy(), goqa.copy(), askreddit.copy()
        if model == "qwen1.5-7b-chat":  # the quirks of the real file, and their kin in the others
            games = games.assign(using_chat_template="True")
            # no probabilities: the paper's argmax "chose" its first choice, here a distractor
            games.loc[0, ["correct_answer_prob", "distractor_probs", "chose_correct_answer"]] = [
                "",
                "[nan, nan, nan, nan, nan]",
                "False",
            ]
            games.loc[1, "generated_answer"] = ""
            opinions.loc[0, "probs"] = "nan"
            perplexities.iloc[0, -1] = ""
        games.to_csv(outputs / "md3-game" / md3_name, index=False)
        opinions.to_csv(outputs / "globalopinionsqa" / goqa_name, index=False)
        perplexities.to_csv(outputs / "ask-reddit-perplexity-testing" / askreddit_name, index=False)
        generations = outputs / "tydiqa-goldp" / tydiqa_dir / "greedy" / "1-shot"
        generations.mkdir(parents=True)
        for file in (sample / "tydiqa-goldp" / "{Mistral-7B-v0.1_8bit}" / "greedy" / "1-shot").glob("*.json"):
            kept = {k: v for k, v in json.loads(file.read_text(encoding="utf-8")).items() if k in ids}
            if model == "qwen1.5-7b-chat":
                kept.pop(next(iter(kept)))  # a question id the file lacks
            (generations / file.name).write_text(json.dumps(kept), encoding="utf-8")
    rewards = askreddit.rename(columns={"model": "reward_model"}).drop(columns=["use_chat_template"])
    rewards.to_csv(outputs / "ask-reddit-reward-testing" / "starling-rm-7b-alpha-reformatted.csv", index=False)
    where_from = sample / "reward-testing" / "where_from_starling-rm-7b-alpha.csv"
    (outputs / "reward-testing" / where_from.name).write_bytes(where_from.read_bytes())
    (repo / "data" / "askreddit_countries").mkdir(parents=True)
    questions.to_csv(repo / "data" / "askreddit_countries" / "AskRedditCountries_final.csv", index=False)
    (repo / "data" / "countries").mkdir(parents=True)
    favorability = shared / "us_favorability" / "USA-favorability-2023.csv"
    (repo / "data" / "countries" / favorability.name).write_bytes(favorability.read_bytes())


@pytest.fixture
def complete_run(shared_data, tmp_path):
    """The workflow and its command line on the complete-repository tree."""
    repo = tmp_path / "unintended-impacts-of-alignment"
    write_complete_repository(shared_data, repo)
    overlay = write_yaml(
        tmp_path / "offline.yaml",
        {"tasks": {"tydiqa_goldp": {"source": str(repo / "tydiqa-dev"), "num_shots": 0}}},  # gold answers: not the hub
    )
    (tmp_path / "workflow").mkdir()
    workdir = copy_workflow(tmp_path / "workflow")
    args = ("--configfile", "config/paper-published.yaml", str(overlay), "--config", f"paper_repo={repo}")
    return workdir, args


def test_the_dag_of_the_complete_repository_is_built(complete_run):
    workdir, args = complete_run
    result = snakemake(workdir, "-n", *args)
    out = output_of(result)
    assert result.returncode == 0, out[-5000:]
    for model in PAPER_FILES:  # every model, whatever its folder names, on each of its four tasks
        for task in ("md3_taboo", "tydiqa_goldp", "global_opinions", "askreddit"):
            assert f"results/predictions/{task}/{model}/shard-0-of-1.parquet" in out, (task, model)


@pytest.mark.slow
def test_the_complete_repository_regenerates_every_table_and_figure(complete_run):
    workdir, args = complete_run
    result = snakemake(workdir, "--cores", "2", *args, timeout=1500)
    out = output_of(result)
    assert result.returncode == 0, out[-5000:]
    results = workdir / "results"
    md3 = pd.read_csv(results / "tables" / "md3_taboo.csv")
    assert set(md3["model"]) == set(PAPER_FILES)
    assert set(pd.read_csv(results / "tables" / "tydiqa_goldp.csv")["model"]) == set(PAPER_FILES)
    for task in ("md3_taboo", "tydiqa_goldp", "global_opinions", "where_from", "askreddit"):
        assert list((results / "figures" / task).glob("*.png")), task
    log = (results / "logs" / "infer" / "md3_taboo" / "qwen1.5-7b-chat" / "shard-0-of-1.log").read_text()
    assert "2 of 9 items have a missing value" in log
    report = (results / "report.html").read_text(encoding="utf-8")
    assert "qwen1.5-7b-chat: 2 of 9 items" in report
