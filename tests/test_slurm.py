"""The workflow on a real Slurm cluster, through `--profile profiles/slurm` as shipped.

Needs a running Slurm whose jobs can reach this checkout (CI starts a single-node one with
.ci/slurm-up: no accounting, so job status must come from squeue). Without one the tests skip;
with CI=true they fail. One copy of the workflow runs a demo subset that covers every stage
(prepare, infer, score, figures, report); the second test cancels a running inference job and
checks that the retry recovers the same tables.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import yaml
from workflow_runs import REPO, copy_workflow, output_of, snakemake

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

TASK = "global_opinions"
PROFILE = ("--profile", "profiles/slurm")
# The demo's three chained models on one task, one shard each: every stage, few jobs.
CONFIG = "slurm-subset.yaml"


def slurm_problem() -> str | None:
    """Why no Slurm cluster can take jobs from here, or None when one can."""
    if not shutil.which("sbatch"):
        return "no Slurm commands (sbatch) on PATH"
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return f"no Slurm controller answers `scontrol ping`: {(ping.stdout + ping.stderr).strip()}"
    return None


@pytest.fixture(scope="module")
def slurm_cluster():
    problem = slurm_problem()
    if problem:
        message = f"{problem}; the cluster tests need a running Slurm (CI starts one with .ci/slurm-up)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run them", pytrace=False)
        pytest.skip(message)


def slurm_job_ids(output: str) -> list[str]:
    return re.findall(r"has been submitted with SLURM jobid (\d+)", output)


def slurm_jobs(ids: list[str]) -> dict[str, dict[str, str]]:
    """Slurm's view of the given jobs (kept MinJobAge after they end): id -> comment (the plugin
    names the rule and wildcards there), state, CPUs, memory."""
    result = subprocess.run(
        ["squeue", "--noheader", "--states=all", f"--jobs={','.join(ids)}", "--format=%i|%k|%T|%C|%m"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    jobs = {}
    for line in result.stdout.splitlines():
        job_id, comment, state, cpus, memory = line.split("|")
        jobs[job_id] = {"comment": comment, "state": state, "cpus": cpus, "memory": memory}
    return jobs


def table_digests(workdir) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((workdir / "results/tables").glob("*.csv"))
    }


@pytest.fixture(scope="module")
def cluster_run(slurm_cluster, tmp_path_factory):
    """A copy of the workflow after the subset ran through the Slurm profile: (workdir, output)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm"))
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["models"] = {name: config["models"][name] for name in config["chains"]["demo"]}
    config["tasks"] = {TASK: {**config["tasks"][TASK], "shards": 1}}
    (workdir / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    result = snakemake(workdir, *PROFILE, "--configfile", CONFIG, timeout=1200)
    assert result.returncode == 0, output_of(result)[-5000:]
    return workdir, output_of(result)


def test_the_profile_runs_every_stage_on_slurm(cluster_run):
    workdir, output = cluster_run
    assert (workdir / f"results/tables/{TASK}.csv").stat().st_size > 0
    assert {".pdf", ".png"} <= {path.suffix for path in (workdir / f"results/figures/{TASK}").iterdir()}
    assert (workdir / "results/report.html").stat().st_size > 0
    jobs = slurm_jobs(slurm_job_ids(output))
    rules = {re.match(r"rule_([a-z_]+?)(?:_wildcards_|$)", job["comment"]).group(1) for job in jobs.values()}
    assert rules >= {"build_demo_models", "prepare_task", "infer", "score_task", "plot_task_figures", "build_report"}
    assert all(job["state"] == "COMPLETED" for job in jobs.values()), jobs
    config = yaml.safe_load((workdir / CONFIG).read_text())
    for job in jobs.values():
        # Threads from the config (engine.threads), memory the rule's own.
        if job["comment"].startswith("rule_infer_"):
            assert job["cpus"] == str(config["engine"].get("threads", 1)), job
        if job["comment"].startswith("rule_prepare_task_"):
            assert job["memory"] == "4000M", job


def running_job(comment_prefix: str, timeout: float) -> str:
    """The id of the first running Slurm job whose comment starts with ``comment_prefix``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = subprocess.run(
            ["squeue", "--noheader", "--states=RUNNING", "--format=%i|%k"], capture_output=True, text=True
        ).stdout
        for line in listed.splitlines():
            job_id, comment = line.split("|")
            if comment.startswith(comment_prefix):
                return job_id
        time.sleep(1)
    raise AssertionError(f"no running Slurm job {comment_prefix}* within {timeout} s")


def test_a_cancelled_job_is_retried_and_the_tables_are_unchanged(cluster_run):
    workdir, _ = cluster_run
    before = table_digests(workdir)
    # Snakemake rebuilds a missing intermediate only for a missing output: take both away.
    for path in (f"results/predictions/{TASK}/demo-sft/shard-0-of-1.parquet", f"results/tables/{TASK}.csv"):
        (workdir / path).unlink()
    # The previous run's log of that job: never to be shown as the cancelled job's log.
    log = workdir / f"results/logs/infer/{TASK}/demo-sft/shard-0-of-1.log"
    log.write_text("STALE LOG OF AN EARLIER RUN\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    run = subprocess.Popen(
        [sys.executable, "-m", "snakemake", f"results/tables/{TASK}.csv", *PROFILE, "--configfile", CONFIG],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        cancelled = running_job(f"rule_infer_wildcards_{TASK}_demo-sft_0_1", timeout=300)
        subprocess.run(["scancel", cancelled], check=True)
        output, _ = run.communicate(timeout=900)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, output[-5000:]
    assert f"SLURM-job '{cancelled}' failed, SLURM status is: 'CANCELLED'" in output, output[-5000:]
    assert "STALE LOG" not in output
    # retries: 1 in the profile resubmitted the job, and the retry completed.
    infer_jobs = {job_id: job["state"] for job_id, job in slurm_jobs(slurm_job_ids(output)).items()
                  if job["comment"].startswith("rule_infer_")}  # fmt: skip
    assert sorted(infer_jobs.values()) == ["CANCELLED", "COMPLETED"] and infer_jobs[cancelled] == "CANCELLED"
    assert table_digests(workdir) == before
