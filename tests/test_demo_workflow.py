"""The embedded demo end to end, and Snakemake's caching: only what changed reruns.

One temporary copy of the workflow runs the whole demo once (a few minutes on 2 CPU cores); the
tests after it edit that copy's config, look at what Snakemake plans, and restore the config.
(Reruns themselves, after damage or a kill, are run in test_faults.py.)
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml
from workflow_runs import copy_workflow, edit_config, job_stats, output_of, planned_jobs, snakemake

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
