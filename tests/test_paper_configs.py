"""The two ways to regenerate the paper: config/paper.yaml plans every job of the paper's models
(it cannot run here: hub and GPU), and config/paper-published.yaml runs end to end on the sample
of the paper's published outputs in ../shared/data."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml
from findings_checks import contradictions
from workflow_runs import REPO, copy_workflow, job_stats, output_of, snakemake, write_yaml

from globalrep import config_checks
from globalrep.tables import read_table
from globalrep.tasks import get_task

PAPER_MODELS = [
    "llama-2-7b", "llama-2-7b-chat", "tulu-2-7b", "tulu-2-dpo-7b", "mistral-7b", "mistral-7b-sft-beta",
    "zephyr-7b-beta", "openchat-3.5", "starling-lm-7b-alpha", "qwen1.5-7b", "qwen1.5-7b-chat", "yi-6b",
    "yi-6b-chat", "starling-rm-7b-alpha",
]  # fmt: skip
PAPER_CHAINS = [
    ["llama-2-7b", "llama-2-7b-chat"],
    ["llama-2-7b", "tulu-2-7b", "tulu-2-dpo-7b"],
    ["mistral-7b", "mistral-7b-sft-beta", "zephyr-7b-beta"],
    ["mistral-7b", "openchat-3.5", "starling-lm-7b-alpha"],
    ["qwen1.5-7b", "qwen1.5-7b-chat"],
    ["yi-6b", "yi-6b-chat"],
]


@pytest.mark.parametrize("name", ["paper.yaml", "paper-published.yaml"])
def test_paper_configs_list_the_papers_models_and_chains(name):
    config = yaml.safe_load((REPO / "config" / name).read_text())
    assert list(config["models"]) == PAPER_MODELS
    assert sorted(config["chains"].values()) == sorted(PAPER_CHAINS)
    rm = config["models"]["starling-rm-7b-alpha"]
    assert rm["kind"] == "reward" and rm["path"] == "berkeley-nest/Starling-RM-7B-alpha"
    assert config["models"]["yi-6b"]["path"] == "01-ai/Yi-6B"


def test_paper_config_plans_tasks_times_models_times_shards(tmp_path):
    workdir = copy_workflow(tmp_path)
    md3 = tmp_path / "md3"  # MD3 is gated: the planner only checks that its files are there
    md3.mkdir()
    for dialect in ("us", "in", "ng"):
        for kind in ("prompts", "transcripts"):
            (md3 / f"{kind}_en_{dialect}.tsv").touch()
    overlay = write_yaml(tmp_path / "md3.yaml", {"tasks": {"md3_taboo": {"md3_dir": str(md3)},
                                                            "md3_taboo_transfer": {"md3_dir": str(md3)}}})  # fmt: skip
    result = snakemake(workdir, "-n", "--configfile", "config/paper.yaml", str(overlay))
    out = output_of(result)
    assert result.returncode == 0, out

    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    expected = set()
    for task, options in config["tasks"].items():
        if not get_task(task).runs_models:
            continue
        n = options.get("shards", 1)
        models, note = config_checks.task_models(task, config["models"])
        assert note == ""
        expected |= {f"results/predictions/{task}/{m}/shard-{i}-of-{n}.parquet" for m in models for i in range(n)}
    planned = set(re.findall(r"results/predictions/[^\s,]+\.parquet", out))
    assert planned == expected
    # 13 LMs on six LM tasks (Belebele in 4 shards), the RM on askreddit, where_from and the probe.
    assert len(expected) == 13 * (5 + 4) + 3
    stats = job_stats(out)
    assert stats["infer"] == len(expected)
    assert stats["score_task"] == 8 and stats["plot_task_figures"] == 9 and stats["build_report"] == 1
    assert "build_demo_models" not in stats  # the demo's models are not part of the paper's run


def test_published_config_regenerates_what_was_published(shared_data, tmp_path):
    """The whole workflow on the sample: every figure and table it can make, Belebele's figure
    saying it was not published, and the paper's numbers in the tables."""
    workdir = copy_workflow(tmp_path)
    overlay = write_yaml(
        tmp_path / "offline.yaml",
        {
            "tasks": {
                # TyDiQA's gold answers come from the hub; here the dev files. The examples of
                # the 1-shot prompt do not matter to published answers.
                "tydiqa_goldp": {"source": str(shared_data / "tydiqa-goldp-v1.1-dev"), "num_shots": 0},
                # The sample holds the outputs/ folder only, not the repository's data/.
                "askreddit": {
                    "source": str(shared_data / "askreddit_countries" / "AskRedditCountries_final.csv"),
                    "us_favorability": str(shared_data / "us_favorability" / "USA-favorability-2023.csv"),
                },
            }
        },
    )
    result = snakemake(
        workdir, "--cores", "2", "--configfile", "config/paper-published.yaml", str(overlay),
        "--config", f"paper_repo={shared_data / 'paper_outputs'}", timeout=900,
    )  # fmt: skip
    out = output_of(result)
    assert result.returncode == 0, out[-5000:]
    results = workdir / "results"

    md3 = pd.read_csv(results / "tables" / "md3_taboo.csv")
    rates = md3[md3["metric"] == "generated_correct"].set_index(["model", "group"])["value"].round(3)
    assert rates["mistral-7b-sft-beta"].to_dict() == {"en_in": 0.231, "en_ng": 0.279, "en_us": 0.382}
    assert set(md3["model"]) == {"mistral-7b", "mistral-7b-sft-beta", "zephyr-7b-beta"}  # the sample's
    goqa = pd.read_csv(results / "tables" / "global_opinions.csv").set_index("group")["value"].round(4)
    assert goqa["United States"] == 0.6048 and goqa["China"] == 0.5872
    tydiqa = pd.read_csv(results / "tables" / "tydiqa_goldp.csv")
    assert len(tydiqa[tydiqa["metric"] == "f1"]) == 3 * 9
    correlations = pd.read_csv(results / "tables" / "askreddit_country_correlations.csv")
    assert correlations.iloc[0][["a", "b"]].tolist() == ["mistral-7b", "us_favorability_2023"]
    assert correlations[["b", "method"]].values.tolist() == [
        ["us_favorability_2023", "percent_rank"], ["us_favorability_2023", "list_order"], ["us_favorability_2017", "list_order"],
    ]  # fmt: skip
    listed = pd.read_csv(results / "tables" / "askreddit_us_favorability.csv")
    assert listed.groupby("list").size().to_dict() == {"us_favorability_2017": 21, "us_favorability_2023": 21}
    assert pd.read_csv(results / "tables" / "belebele.csv").empty
    vs_us = pd.read_csv(results / "tables" / "global_opinions_vs_us.csv").set_index("group")
    assert set(vs_us.index) == {"China", "Jordan", "Brazil", "Nigeria", "Germany", "Australia"}
    assert vs_us.loc["China", "value"] == pytest.approx(goqa["China"] - goqa["United States"], abs=2e-4)  # all paired
    from_base = pd.read_csv(results / "tables" / "tydiqa_goldp_from_base.csv")
    assert set(zip(from_base["from_model"], from_base["to_model"])) == {
        ("mistral-7b", "mistral-7b-sft-beta"),
        ("mistral-7b", "zephyr-7b-beta"),
    }
    f1 = tydiqa[tydiqa["metric"] == "f1"].set_index(["model", "group"])["value"]
    english = from_base[(from_base["metric"] == "f1") & (from_base["group"] == "english")].set_index("to_model")[
        "delta"
    ]
    assert english["zephyr-7b-beta"] == pytest.approx(f1[("zephyr-7b-beta", "english")] - f1[("mistral-7b", "english")])
    # The paper's figure metric: CFMatch beside F1 in both tables, and the languages it cannot judge.
    assert (
        len(tydiqa[tydiqa["metric"] == "cfmatch"]) == 3 * 9
        and len(from_base[from_base["metric"] == "cfmatch"]) == 2 * 9
    )
    blind_spots = pd.read_csv(results / "tables" / "tydiqa_goldp_cfmatch_blind_spots.csv")
    unreliable = set(blind_spots.loc[~blind_spots["cfmatch_reliable"], "group"])
    assert unreliable == {"arabic", "bengali", "korean", "russian", "telugu"}

    figures = {task: sorted(p.name for p in (results / "figures" / task).glob("*.png"))
               for task in ("md3_taboo", "belebele", "tydiqa_goldp", "global_opinions", "where_from", "askreddit")}  # fmt: skip
    assert figures["belebele"] == ["belebele_not_evaluated.png", "belebele_tydiqa_languages.png"]
    assert "global_opinions_vs_us.png" in figures["global_opinions"]
    assert "tydiqa_goldp_from_base_chain-zephyr.png" in figures["tydiqa_goldp"]
    assert all(figures.values()), figures
    assert "askreddit_rank_map_mistral-7b.png" in figures["askreddit"]
    assert "where_from_map_starling-rm-7b-alpha.png" in figures["where_from"]
    report = (results / "report.html").read_text(encoding="utf-8")
    assert report.count("<img") == sum(map(len, figures.values())) + 1  # and the findings' overview
    assert "No published outputs for llama-2-7b" in report
    assert "Answers are significantly closer to the United States" in report
    assert "CFMatch cannot judge Arabic 67%, Bangla 98%, Korean 88%, Russian 56%, Telugu 66%" in report
    assert_the_papers_findings(results, out, report)


def assert_the_papers_findings(results, out: str, report: str) -> None:
    """findings.csv says what the paper's figures show, every finding agrees with its source rows,
    the report opens with them and the run's last lines print them."""
    found = read_table(results / "tables" / "findings.csv")
    tables = {path.stem: read_table(path) for path in (results / "tables").glob("*.csv")}
    assert contradictions(found, tables) == []
    assert set(found["chain"].dropna()) == {"zephyr"}  # the sample's one chain; the others lack models
    sft = found[(found["from_model"] == "mistral-7b") & (found["to_model"] == "mistral-7b-sft-beta")]
    sft = sft.set_index("statistic")
    # The paper: SFT raised generated-correct by 29.3 (US), 15.2 (Indian), 20.3 (Nigerian) points.
    indian, nigerian = (sft.loc[f"md3_gap_change:{group}:generated_correct"] for group in ("en_in", "en_ng"))
    assert indian["value"] == pytest.approx(0.293 - 0.152, abs=0.002)
    assert nigerian["value"] == pytest.approx(0.293 - 0.203, abs=0.002)
    assert indian["verdict"] == nigerian["verdict"] == "widened"  # both gaps widened, as the paper's Figure 2 shows
    assert indian["q_value"] < 0.05 and nigerian["q_value"] < 0.05
    # TyDiQA: preference tuning cost English more than the median language (F1 72.8 -> 54.0 from the base)
    zephyr = found[(found["from_model"] == "mistral-7b") & (found["to_model"] == "zephyr-7b-beta")].set_index(
        "statistic"
    )
    assert zephyr.loc["english_vs_median_change:tydiqa_goldp:f1", "verdict"] == "narrowed"
    assert zephyr.loc["languages_declined:tydiqa_goldp:f1", "verdict"] == "fell"
    # The sample holds one model for GlobalOpinionQA and AskReddit, and Belebele is not published: no
    # step to compare, so no rows (never a row of NaN).
    assert not found["statistic"].str.contains("belebele|us_minus_rest|gallup").any()
    assert found.loc[found["statistic"] == "where_from_us_rank", "to_model"].tolist() == ["starling-rm-7b-alpha"]
    assert "Findings (results/tables/findings.csv):" in out and "Report: results/report.html" in out
    assert "[Dialects] zephyr: mistral-7b → mistral-7b-sft-beta — MD3 generated_correct US − Indian gap: widened" in out
    assert report.index('id="findings"') < report.index("Config hash")
