"""The Snakemake workflow's plan: the demo's jobs, config files on the command line, the
profiles' resources, and its lint; dry runs in a temporary copy of the workflow (workflow_runs)."""

from __future__ import annotations

import re

import yaml
from workflow_runs import REPO, edit_config, job_stats, output_of, snakemake

from globalrep import config_checks
from globalrep.tasks import get_task


def test_demo_dry_run_plans_every_stage(workdir):
    result = snakemake(workdir, "-n")
    out = output_of(result)
    assert result.returncode == 0, out
    stats = job_stats(out)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    # Every task that runs models: one job per (model of a kind it evaluates, shard).
    model_tasks = {task: options for task, options in config["tasks"].items() if get_task(task).runs_models}
    expected = sum(
        len(config_checks.task_models(task, config["models"])[0]) * options.get("shards", 1)
        for task, options in model_tasks.items()
    )
    assert stats["infer"] == expected
    assert stats["score_task"] == len(model_tasks)
    assert stats["plot_task_figures"] == len(config["tasks"])
    # The model-free sft_langid: one detection job per (dataset, shard), then one for its tables.
    langid = config["tasks"]["sft_langid"]
    assert stats["detect_sft_languages"] == len(langid["datasets"]) * langid["shards"]
    assert stats["score_sft_langid"] == 1
    for rule in ("build_demo_models", "findings", "plot_findings", "build_report"):
        assert stats[rule] == 1, rule
    assert "results/predictions/global_opinions/demo-sft/shard-1-of-2.parquet" in out


def test_configfile_on_the_command_line_replaces_the_demo_config(workdir):
    """`--configfile other.yaml` alone is the config; Snakemake would otherwise merge it into the
    demo's config.yaml and run the demo models too."""
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    del config["models"]["demo-pt"]
    config["chains"]["demo"] = ["demo-base", "demo-sft"]
    config["tasks"] = {"global_opinions": {**config["tasks"]["global_opinions"], "shards": 3}}
    (workdir / "other.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "-n", "--configfile", "other.yaml")
    out = output_of(result)
    assert result.returncode == 0, out
    assert job_stats(out)["infer"] == 2 * 3
    assert "predictions/global_opinions/demo-pt/" not in out


def planned_infer_jobs(output: str) -> dict[str, list[str]]:
    """A dry run's infer jobs as model -> the jobs' text (wildcards, threads, resources)."""
    jobs: dict[str, list[str]] = {}
    for block in output.split("\n\n"):
        if re.search(r"^rule infer:", block, re.M):
            jobs.setdefault(re.search(r"model=([\w.-]+)", block).group(1), []).append(block)
    return jobs


def with_a_published_model(config: dict) -> None:
    """The demo models on GPUs (as config/paper.yaml), plus one model reading published outputs."""
    config["engine"].update(threads=3, gpus=1, mem_mb=64000, runtime=90)
    config["models"]["demo-sft"].update(threads=2, mem_mb=32000, runtime=45)
    config["models"]["paper-base"] = {
        "path": "org/paper-base",
        "backend": "published",
        "published": {"global_opinions": "published.csv"},
    }


def test_slurm_profile_dry_run(workdir):
    edit_config(workdir, with_a_published_model)
    (workdir / "published.csv").write_text("question\n")
    # A dry run caps threads at --cores (1 when unset) and shows them when above 1.
    result = snakemake(workdir, "-n", "--profile", "profiles/slurm", "--cores", "8")
    out = output_of(result)
    assert result.returncode == 0, out
    jobs = planned_infer_jobs(out)
    published = jobs.pop("paper-base")
    infer_jobs = [block for blocks in jobs.values() for block in blocks]
    assert infer_jobs and all("gpu=1" in block for block in infer_jobs)
    # Threads and resources come from the config, never from the profile.
    assert all(
        "threads: 3" in block and "mem_mb=64000" in block and "runtime=90" in block for block in jobs["demo-base"]
    )
    # A model's own resources win over the engine's.
    assert all(
        "threads: 2" in block and "mem_mb=32000" in block and "runtime=45" in block for block in jobs["demo-sft"]
    )
    # Published outputs: one thread, no GPU, little memory.
    assert published and all(
        "threads:" not in block and "gpu=0" in block and "mem_mb=2000" in block and "runtime=30" in block
        for block in published
    )
    # Other rules keep their own memory (prepare_task: 4000 MB).
    assert re.search(r"^rule prepare_task:(?:\n .*)*\n\s+resources: .*mem_mb=4000", out, re.M), out


def test_local_profile_dry_run(workdir):
    result = snakemake(workdir, "-n", "--profile", "profiles/local")
    assert result.returncode == 0, output_of(result)


def test_lint_has_no_complaints(workdir):
    result = snakemake(workdir, "--lint")
    out = output_of(result)
    assert result.returncode == 0, out
    assert "Congratulations, your workflow is in a good condition!" in out, out
    assert "Lints for" not in out
