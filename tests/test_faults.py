"""Fault injection end to end: a killed run, damaged intermediates, two runs at once.

One temporary copy of the workflow with the smallest useful config (one task with extra tables,
two models, one shard each) runs once uninterrupted; every case then breaks something, checks the
message (the file named, no traceback for a data error), and checks that plain reruns end with
tables byte-identical to the uninterrupted run. The cases share the copy and run in file order.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from workflow_runs import REPO, copy_workflow, edit_config, job_stats, output_of, snakemake

pytestmark = pytest.mark.slow

TASK = "md3_taboo"
CORES = ("--cores", "2")


def small_config(config: dict) -> None:
    config["models"] = {name: config["models"][name] for name in ("demo-base", "demo-sft")}
    config["chains"] = {"demo": ["demo-base", "demo-sft"]}
    config["tasks"] = {TASK: config["tasks"][TASK]}
    config["dialects"] = []


def tables(workdir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((workdir / "results/tables").glob("*.csv"))}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The workflow copy and the tables of its uninterrupted run."""
    workdir = copy_workflow(tmp_path_factory.mktemp("faults"))
    edit_config(workdir, small_config)
    result = snakemake(workdir, *CORES, timeout=900)
    assert result.returncode == 0, output_of(result)[-5000:]
    reference = tables(workdir)
    assert {f"{TASK}.csv", f"{TASK}_deltas.csv", f"{TASK}_gaps.csv"} <= set(reference)
    shutil.copytree(workdir / "results", workdir.with_name("pristine") / "results", copy_function=shutil.copy2)
    shutil.copytree(workdir / ".snakemake", workdir.with_name("pristine") / ".snakemake", copy_function=shutil.copy2)
    return workdir, reference


def outputs(workdir: Path) -> set[Path]:
    """Every file under results/ but the logs, relative to it."""
    results = workdir / "results"
    found = (path.relative_to(results) for path in results.rglob("*") if path.is_file())
    return {path for path in found if path.parts[0] != "logs"}


@pytest.fixture
def uninterrupted(run):
    """The workflow copy as the uninterrupted run left it (files, times and Snakemake's records),
    so that each case starts from the same state, whatever the case before it left behind."""
    workdir, reference = run
    for folder in ("results", ".snakemake"):
        shutil.rmtree(workdir / folder)
        shutil.copytree(workdir.with_name("pristine") / folder, workdir / folder, copy_function=shutil.copy2)
    return workdir, reference


def rerun_recovers(workdir: Path, reference: dict[str, bytes]) -> None:
    """The next plain run rebuilds every file the uninterrupted run left (what the fault deleted
    included, as the error messages promise), with byte-identical tables."""
    result = snakemake(workdir, *CORES, timeout=900)
    assert result.returncode == 0, output_of(result)[-5000:]
    assert outputs(workdir) == outputs(workdir.with_name("pristine"))
    assert tables(workdir) == reference
    assert "Nothing to be done" in output_of(snakemake(workdir, "-n"))


def start_snakemake(workdir: Path, log_name: str, *args: str, **popen) -> subprocess.Popen:
    """Snakemake in the background (as :func:`test_workflow.snakemake` runs it), output to a file."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    with open(workdir / log_name, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "snakemake", *CORES, *args],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            **popen,
        )


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def fails_naming(workdir: Path, damaged: Path) -> str:
    """Run; it must fail, name ``damaged`` without a traceback, and have deleted it."""
    result = snakemake(workdir, *CORES, timeout=900)
    out = output_of(result)
    assert result.returncode != 0, out[-3000:]
    assert str(damaged.relative_to(workdir)) in out, out[-3000:]
    assert re.search(r"(?i)rerun snakemake|run snakemake again", out), out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert not damaged.exists(), "the damaged file is deleted so that the next run rebuilds it"
    return out


@pytest.mark.parametrize(
    "damaged",
    [
        f"results/prepared/{TASK}.parquet",
        f"results/scores/{TASK}.parquet",
        f"results/predictions/{TASK}/demo-sft/shard-0-of-1.parquet",
        f"results/tables/{TASK}.csv",
    ],
)
def test_a_damaged_intermediate_is_named_deleted_and_rebuilt(uninterrupted, damaged):
    workdir, reference = uninterrupted
    truncate(workdir / damaged)
    fails_naming(workdir, workdir / damaged)
    if "/predictions/" in damaged:
        # The failed scoring left no table behind, and only the damaged shard is recomputed.
        assert not (workdir / f"results/tables/{TASK}.csv").exists()
        assert job_stats(output_of(snakemake(workdir, "-n"))).get("infer") == 1
    rerun_recovers(workdir, reference)


def test_a_run_killed_during_forced_inference_recovers_after_unlock(uninterrupted):
    """SIGKILL while `--forcerun infer` recomputes a shard (which Snakemake deleted first): after
    `snakemake --unlock`, a plain run recomputes it, as docs/troubleshooting.md says."""
    workdir, reference = uninterrupted
    shard = workdir / f"results/predictions/{TASK}/demo-sft/shard-0-of-1.parquet"
    shard_log = workdir / f"results/logs/infer/{TASK}/demo-sft/shard-0-of-1.log"
    shard_log.unlink()  # the job's new log says that it started
    killed = start_snakemake(workdir, "killed.out", "--forcerun", "infer", start_new_session=True)
    deadline = time.monotonic() + 300
    while not shard_log.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert killed.poll() is None, "the run ended before its inference job started"
    time.sleep(1.0)  # inside the job: imports and model loading
    os.killpg(killed.pid, signal.SIGKILL)  # the whole process group: Snakemake and its jobs
    killed.wait()
    assert not shard.exists(), "the kill interrupted the job computing this shard"
    # Whatever the kill interrupted left no file that looks complete but is not.
    for path in (workdir / f"results/predictions/{TASK}").rglob("*.parquet"):
        pd.read_parquet(path)
    unlock = snakemake(workdir, "--unlock")
    assert unlock.returncode == 0, output_of(unlock)
    rerun_recovers(workdir, reference)


def test_a_second_run_in_the_same_directory_is_refused(uninterrupted):
    workdir, reference = uninterrupted
    (workdir / f"results/tables/{TASK}.csv").unlink()  # work for the first run: scoring and after
    first = start_snakemake(workdir, "first.out")
    deadline = time.monotonic() + 300
    while not list((workdir / ".snakemake/locks").glob("*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    second = snakemake(workdir, *CORES, timeout=600)
    assert first.wait(timeout=900) == 0, (workdir / "first.out").read_text()[-5000:]
    # Snakemake refuses it either at the lock or, when it sees the first run's jobs in progress
    # while planning, at their incomplete outputs; both leave the first run alone.
    refused = ("cannot be locked", "seem to be incomplete")
    assert second.returncode != 0 and any(reason in output_of(second) for reason in refused), output_of(second)[-3000:]
    assert tables(workdir) == reference
    assert "Nothing to be done" in output_of(snakemake(workdir, "-n"))


def test_another_models_shard_copied_over_is_named_and_rebuilt(uninterrupted):
    workdir, reference = uninterrupted
    shard = "shard-0-of-1.parquet"
    base = workdir / f"results/predictions/{TASK}/demo-base/{shard}"
    shutil.copy(workdir / f"results/predictions/{TASK}/demo-sft/{shard}", base)
    out = fails_naming(workdir, base)
    assert "made for model 'demo-sft', expected 'demo-base'" in out
    assert (workdir / f"results/predictions/{TASK}/demo-sft/{shard}").exists(), "the valid shard stays"
    rerun_recovers(workdir, reference)


@pytest.mark.parametrize("keep_record", [True, False], ids=["record-kept", "rewritten-by-pandas"])
def test_scores_that_lost_a_row_are_named_and_rebuilt(uninterrupted, keep_record):
    import pyarrow.parquet as pq

    workdir, reference = uninterrupted
    scores = workdir / f"results/scores/{TASK}.parquet"
    if keep_record:
        table = pq.read_table(scores)
        pq.write_table(table.slice(1), scores)
    else:
        pd.read_parquet(scores).iloc[1:].to_parquet(scores, index=False)
    out = fails_naming(workdir, scores)
    assert ("its rows do not match the digest" if keep_record else "records nothing about what made it") in out
    rerun_recovers(workdir, reference)


def test_a_deleted_figure_is_redrawn_by_a_plain_run(uninterrupted):
    workdir, reference = uninterrupted
    figure = workdir / f"results/figures/{TASK}/{TASK}_chose_correct.png"
    figure.unlink()
    rerun_recovers(workdir, reference)
    assert figure.is_file()
