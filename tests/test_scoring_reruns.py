"""Scoring and figures follow the code: a change to a task's metric code reruns its scoring,
figures and report, never its inference. One small run with the published backend (where-from
rewards from a made-up published file), then a dry run after editing the task's code."""

from __future__ import annotations

import shutil

import pytest
import yaml
from workflow_runs import REPO, copy_workflow, output_of, planned_jobs, snakemake

from globalrep.countries import load_countries

pytestmark = pytest.mark.slow
# What new scores rerun: tables, figures, the findings (and their overview) and the report.
RESCORED = {"score_task", "score_extra_table", "plot_task_figures", "findings", "plot_findings", "build_report"}


def write_published_where_from(path) -> None:
    """A where-from file in the paper's layout (``country,reward``): one made-up reward per country."""
    names = load_countries()["name"]
    path.write_text("country,reward\n" + "".join(f'"{name}",{-5 + len(name) / 10}\n' for name in names))


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("reruns"))
    # The workflow uses its own src/ when it has one: edits to this copy stay here.
    shutil.copytree(REPO / "src", workdir / "src", ignore=shutil.ignore_patterns("__pycache__"))
    write_published_where_from(workdir / "where_from.csv")
    config = {
        "models": {
            "rm": {
                "path": "org/rm",
                "kind": "reward",
                "backend": "published",
                "published": {"where_from": "where_from.csv"},
            }
        },
        "tasks": {"where_from": {}},
    }
    (workdir / "only.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--cores", "1", "--configfile", "only.yaml", timeout=600)
    assert result.returncode == 0, output_of(result)[-5000:]
    return workdir


def planned_rules_after_edit(workdir, module: str, old: str, new: str) -> set[str]:
    """The rules a dry run plans once ``old`` is replaced by ``new`` in globalrep's ``module``
    (a path under src/globalrep); the module is restored afterwards."""
    path = workdir / "src" / "globalrep" / module
    original = path.read_text()
    assert old in original, f"{old!r} is no longer in {module}: update the test's edit"
    path.write_text(original.replace(old, new))
    try:
        result = snakemake(workdir, "-n", "--configfile", "only.yaml")
    finally:
        path.write_text(original)
    assert result.returncode == 0, output_of(result)
    return {rule for rule, _ in planned_jobs(output_of(result))}


def test_metric_code_reruns_scoring_figures_and_report_only(scored):
    assert "Nothing to be done" in output_of(snakemake(scored, "-n", "--configfile", "only.yaml"))
    rules = planned_rules_after_edit(
        scored, "tasks/where_from.py", '"metric": "reward",', '"metric": "reward_per_country",'
    )
    assert {"score_task", "plot_task_figures", "findings", "build_report"} <= rules  # where_from feeds the findings
    assert rules <= {*RESCORED, "all"}


def test_figure_code_reruns_figures_and_report_only(scored):
    rules = planned_rules_after_edit(
        scored, "figures/maps.py", "def plot_model_maps(", "def plot_model_maps(  # edited\n"
    )
    assert rules == {"plot_task_figures", "build_report", "all"}
    assert "Nothing to be done" in output_of(snakemake(scored, "-n", "--configfile", "only.yaml"))


def test_the_multiple_comparison_correction_reruns_scoring_not_inference(scored):
    config = yaml.safe_load((scored / "only.yaml").read_text())
    (scored / "holm.yaml").write_text(yaml.safe_dump({**config, "stats": {"correction": "holm"}}))
    result = snakemake(scored, "-n", "--configfile", "holm.yaml")
    assert result.returncode == 0, output_of(result)
    rules = {rule for rule, _ in planned_jobs(output_of(result))}
    assert "score_task" in rules and "infer" not in rules
    assert rules <= {*RESCORED, "all"}
