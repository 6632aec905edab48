"""The embedded demo end to end, and Snakemake's caching: only what changed reruns.

One temporary copy of the workflow runs the whole demo once (a few minutes on 2 CPU cores); the
tests after it edit that copy's config, look at what Snakemake plans, and restore the config.
(Reruns themselves, after damage or a kill, are run in test_faults.py.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from workflow_runs import REPO, copy_workflow, edit_config, job_stats, output_of, planned_jobs, snakemake, write_yaml

from globalrep import findings

pytestmark = pytest.mark.slow

TASK = "global_opinions"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A copy of the workflow after a complete demo run."""
    workdir = copy_workflow(tmp_path_factory.mktemp("demo"))
    result = snakemake(workdir, "--cores", "2", timeout=900)
    assert result.returncode == 0, output_of(result)[-5000:]
    return workdir


def test_demo_writes_tables_figures_and_report(demo):
    table = pd.read_csv(demo / f"results/tables/{TASK}.csv")
    assert list(table.columns) == ["model", "group", "metric", "value", "ci_low", "ci_high", "n"]
    assert set(table["model"]) == {"demo-base", "demo-sft", "demo-pt"}
    deltas = pd.read_csv(demo / f"results/tables/{TASK}_deltas.csv")
    assert {("demo-base", "demo-sft"), ("demo-sft", "demo-pt")} <= set(zip(deltas["from_model"], deltas["to_model"]))
    figures = list((demo / f"results/figures/{TASK}").iterdir())
    assert {".pdf", ".png"} <= {path.suffix for path in figures}
    assert (demo / "results/report.html").stat().st_size > 0
    assert list(pd.read_csv(demo / "results/tables/findings.csv").columns) == findings.COLUMNS
    for log in ("build_demo_models.log", f"prepare_task/{TASK}.log", f"infer/{TASK}/demo-sft/shard-0-of-2.log"):
        assert (demo / "results/logs" / log).stat().st_size > 0, log
    assert "items/s" in (demo / f"results/logs/infer/{TASK}/demo-sft/shard-0-of-2.log").read_text()


def test_nothing_to_do_after_the_run(demo):
    result = snakemake(demo, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in output_of(result)


def planned_after_edit(workdir, change) -> str:
    """What a dry run plans once ``change`` is applied to the config (which is then restored)."""
    original = (workdir / "config.yaml").read_text()
    edit_config(workdir, change)
    try:
        result = snakemake(workdir, "-n")
    finally:
        (workdir / "config.yaml").write_text(original)
    assert result.returncode == 0, output_of(result)
    return output_of(result)


def test_batch_size_does_not_rerun_inference(demo):
    out = planned_after_edit(demo, lambda c: c["models"]["demo-sft"].update(batch_size=3))
    assert not re.search(r"^rule infer:", out, re.M), out


def test_editing_one_model_reruns_only_its_jobs(demo):
    out = planned_after_edit(demo, lambda c: c["models"]["demo-sft"].update(dtype="bfloat16"))
    shards = yaml.safe_load((demo / "config.yaml").read_text())["tasks"][TASK]["shards"]
    stats = job_stats(out)
    infer_outputs = [path for rule, outputs in planned_jobs(out) if rule == "infer" for path in outputs]
    assert stats.pop("infer") == len(infer_outputs)
    assert set(stats) <= {
        "score_task", "score_extra_table", "plot_task_figures", "findings", "plot_findings", "build_report", "all"
    }, stats  # fmt: skip
    # Every task that evaluates demo-sft reruns its shards, and nothing of another model.
    assert all("/demo-sft/" in path for path in infer_outputs), infer_outputs
    assert sorted(path for path in infer_outputs if f"/{TASK}/" in path) == [
        f"results/predictions/{TASK}/demo-sft/shard-{i}-of-{shards}.parquet" for i in range(shards)
    ]


# A task's new scores change its tables, so the findings drawn from them, their overview and the report.
AFTER_SCORING = {
    "score_task": 1,
    "score_extra_table": 1,
    "plot_task_figures": 1,
    "findings": 1,
    "plot_findings": 1,
    "build_report": 1,
}


@pytest.mark.parametrize(
    "missing, planned",
    [
        # Only the table's own job: the items are not rewritten (that would rerun inference).
        ("results/tables/md3_taboo_transfer_rewrites.csv", {"summarize_rewrites": 1}),
        (f"results/predictions/{TASK}/demo-sft/shard-1-of-2.parquet", {"infer": 1, **AFTER_SCORING}),
        (f"results/prepared/{TASK}.parquet", {"prepare_task": 1, "infer": 6, **AFTER_SCORING}),
    ],
)
def test_a_missing_intermediate_is_rebuilt_by_a_plain_run(demo, missing, planned):
    """Every intermediate is a target: deleted (as a job does with a damaged one, or by hand), the
    next plain run rebuilds it and reruns what depends on it, nothing else. (test_faults.py runs
    such reruns.)"""
    path, aside = demo / missing, demo / "aside"
    path.rename(aside)
    try:
        result = snakemake(demo, "-n")
    finally:
        aside.rename(path)
    assert result.returncode == 0, output_of(result)
    assert job_stats(output_of(result)) == {**planned, "all": 1}


# What snakedeploy writes into a study's workflow/Snakefile (docs/deploying.md), with a local clone.
DEPLOYED_SNAKEFILE = """configfile: "config/config.yaml"


module globalrep:
    snakefile:
        {snakefile!r}
    config:
        config


use rule * from globalrep
"""
# One of the demo's tasks, the one with most stages (Multi-VALUE's rewrites, in the C locale).
DEPLOYED_TASKS = ("md3_taboo_transfer",)


def test_a_deployed_workflow_runs_the_demo_with_the_same_tables(demo, tmp_path):
    """Deployed as Snakemake workflows are (docs/deploying.md): the package installed (not
    editable) into a folder of its own, a study whose Snakefile uses the workflow as a `module`,
    from a clone without src/; in the C locale with Python's UTF-8 mode off. The demo run's models
    are reused; the deployed run's tables are the demo run's, byte for byte."""
    source, site, clone, study = (tmp_path / name for name in ("source", "site", "globalrep", "study"))
    source.mkdir()
    shutil.copy(REPO / "pyproject.toml", source)
    shutil.copy(REPO / "README.md", source)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target"]
    subprocess.run([*install, str(site), str(source)], check=True, capture_output=True, timeout=300)
    clone.mkdir()
    copy_workflow(clone)
    assert not (clone / "src").exists()
    (study / "workflow").mkdir(parents=True)
    (study / "workflow/Snakefile").write_text(DEPLOYED_SNAKEFILE.format(snakefile=str(clone / "Snakefile")))
    shutil.copytree(clone / "config", study / "config")
    shutil.copytree(clone / "data", study / "data")
    config = yaml.safe_load((clone / "config.yaml").read_text())
    config["tasks"] = {task: config["tasks"][task] for task in DEPLOYED_TASKS}
    write_yaml(study / "config/config.yaml", config)
    shutil.copytree(demo / "results/demo/models", study / "results/demo/models", copy_function=shutil.copy2)
    env = {**os.environ, "PYTHONPATH": str(site), "LC_ALL": "C", "PYTHONUTF8": "0"}
    if (demo / "results/nltk_data").is_dir():
        env.setdefault("NLTK_DATA", str(demo / "results/nltk_data"))
    imported = subprocess.run([sys.executable, "-c", "import globalrep; print(globalrep.__file__)"], env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
    assert imported.stdout.startswith(str(site)), imported.stdout
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2"], cwd=study, env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, output_of(result)[-5000:]
    assert job_stats(output_of(result)).get("build_demo_models") is None, "the demo run's models are reused"
    # findings.csv summarises every task that ran, so the deployed study's (one task) is its own.
    deployed = sorted(path for path in (study / "results/tables").glob("*.csv") if path.name != "findings.csv")
    assert {path.name for path in deployed} >= {f"{task}.csv" for task in DEPLOYED_TASKS}
    for path in deployed:
        assert path.read_bytes() == (demo / "results/tables" / path.name).read_bytes(), path.name
