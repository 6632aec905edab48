"""The Snakemake workflow's layout and its checks of bad input, without running inference.

Snakemake runs in a temporary copy of the workflow (Snakefile, workflow/, config, data, profiles,
envs), so editing the config there never touches the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from globalrep import config_checks, config_schema, stages
from globalrep.engine.backends import BACKENDS
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec, inference_resources
from globalrep.atomic import write_parquet_atomic
from globalrep.sharding import shard_items
from globalrep.tasks import get_task
from globalrep.tasks.base import Task
from conftest import TOP_LEVEL_SCHEMA

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "config.yaml", "workflow", "config", "data", "profiles", "envs")
# The config schema as the workflow validates with it: the top level plus every task's block.
SCHEMA = config_schema.assembled_file(TOP_LEVEL_SCHEMA)


# ------------------------------------------------------------------------------ helpers


def copy_workflow(dest: Path) -> Path:
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run Snakemake in ``workdir``; the package comes from this checkout's src/."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def output_of(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def edit_config(workdir: Path, edit) -> None:
    path = workdir / "config.yaml"
    config = yaml.safe_load(path.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture
def workdir(tmp_path) -> Path:
    return copy_workflow(tmp_path)


# ------------------------------------------------------------------------------ the demo config


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
    for rule in ("build_demo_models", "build_report"):
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


def job_stats(output: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake run or dry run: rule -> number of jobs."""
    table = output.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


# ------------------------------------------------------------------------------ (a) the schema


def test_unknown_key_names_itself(workdir):
    edit_config(workdir, lambda c: c["models"]["demo-sft"].update(dtyp="float32"))
    result = snakemake(workdir, "-n")
    assert result.returncode != 0
    assert "unknown config key 'models.demo-sft.dtyp'" in output_of(result)


def test_unknown_top_level_key_names_itself(workdir):
    edit_config(workdir, lambda c: c.update(bootstrapp={"seed": 1}))
    result = snakemake(workdir, "-n")
    assert result.returncode != 0
    assert "unknown config key 'bootstrapp'" in output_of(result)


def test_wrong_type_names_the_key(workdir):
    edit_config(workdir, lambda c: c["tasks"]["global_opinions"].update(shards="two"))
    result = snakemake(workdir, "-n")
    assert result.returncode != 0
    out = output_of(result)
    assert "tasks.global_opinions.shards" in out and "'two' is not of type 'integer'" in out


def validation_error(config: dict) -> str:
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    with pytest.raises(WorkflowError) as caught:
        validate(config, SCHEMA)
    return config_checks.config_error_message(caught.value.__context__)


def test_schema_errors_name_keys_directly():
    base = {"models": {"m": {"path": "org/m"}}, "tasks": {"global_opinions": {}}}
    bad_enum = {**base, "models": {"m": {"path": "org/m", "dtype": "float64"}}}
    assert "config key 'models.m.dtype'" in validation_error(bad_enum)
    bad_task = {**base, "tasks": {"global_opinionz": {}}}
    assert "unknown config key 'tasks.global_opinionz'" in validation_error(bad_task)
    short_chain = {**base, "chains": {"c": ["m"]}}
    assert "config key 'chains.c'" in validation_error(short_chain)
    no_path = {**base, "models": {"m": {"stage": "sft"}}}
    assert "'path' is a required property" in validation_error(no_path)


def test_schema_fills_defaults_that_match_model_spec():
    from snakemake.utils import validate

    config = {"models": {"m": {"path": "org/m"}}, "tasks": {"global_opinions": {}}}
    validate(config, SCHEMA)
    spec = ModelSpec.from_config("m", config["models"]["m"])
    assert spec == ModelSpec(name="m", path="org/m")
    assert config["engine"]["device"] == "auto" and config["chains"] == {}
    assert config["tasks"]["global_opinions"]["shards"] == 1


def test_every_schema_key_is_described_and_closed():
    schema = config_schema.assemble(TOP_LEVEL_SCHEMA)

    def walk(node, where):
        if isinstance(node, dict):
            # allOf's if/then: conditions on the model's keys, which the model's own node closes
            if "properties" in node and ".allOf." not in where:
                assert node.get("additionalProperties") is False, f"{where} is open"
                for key, sub in node["properties"].items():
                    assert "description" in sub or "$ref" in sub, f"{where}.{key} has no description"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for sub in node:
                walk(sub, where)

    walk(schema, "schema")


# ------------------------------------------------------------------------------ (b), (c) bad paths


def test_missing_model_path_fails_before_any_job(workdir):
    edit_config(workdir, lambda c: c["models"]["demo-sft"].update(path="checkpoints/nowhere/sft"))
    result = snakemake(workdir, "--cores", "1")
    out = output_of(result)
    assert result.returncode != 0
    assert "model 'demo-sft'" in out and "models.demo-sft.path" in out and "checkpoints/nowhere/sft" in out
    assert not (workdir / "results").exists(), "a job ran before the check"


def test_missing_task_source_names_file_and_key(workdir):
    edit_config(workdir, lambda c: c["tasks"]["global_opinions"].update(source="data/missing.csv"))
    result = snakemake(workdir, "--cores", "1")
    out = output_of(result)
    assert result.returncode != 0
    assert "data/missing.csv" in out and "tasks.global_opinions.source" in out
    assert not (workdir / "results").exists()


def test_chain_of_undefined_model_is_named(workdir):
    edit_config(workdir, lambda c: c["chains"].update(demo=["demo-base", "demo-sfft"]))
    result = snakemake(workdir, "-n")
    out = output_of(result)
    assert result.returncode != 0
    assert "'demo-sfft'" in out and "chains.demo" in out


def test_check_model_paths(tmp_path):
    (tmp_path / "here").mkdir()
    models = {
        "hub": {"path": "org/name"},
        "local": {"path": str(tmp_path / "here")},
        "built": {"path": "./results/demo/models/demo-base"},
        "gone": {"path": str(tmp_path / "gone")},
        "body": {"path": "org/rm", "base_model": str(tmp_path / "nobody")},
    }
    with pytest.raises(GlobalrepError) as caught:
        config_checks.check_models(models, ["results/demo/models/demo-base"])
    message = str(caught.value)
    assert "models.gone.path" in message and "models.body.base_model" in message
    assert "'hub'" not in message and "'local'" not in message and "'built'" not in message


def test_value_head_without_body_and_missing_relative_paths_are_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    models = {
        "rm": {"path": "org/rm", "kind": "reward", "head": "value-head"},
        "ckpt": {"path": "checkpoints/nosuch"},
        "weights": {"path": "rm.safetensors"},
        "hub": {"path": "org/name"},
        "rm-ok": {"path": "org/rm", "kind": "reward", "head": "value-head", "base_model": "org/body"},
    }
    with pytest.raises(GlobalrepError) as caught:
        config_checks.check_models(models)
    message = str(caught.value)
    assert "models.rm.base_model" in message and "models.ckpt.path" in message and "models.weights.path" in message
    assert "'hub'" not in message and "'rm-ok'" not in message and "./name" in message


def test_resolve_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "items.csv").write_text("question\n")
    assert config_checks.resolve_source("t", {"source": "items.csv"}) == "items.csv"
    assert config_checks.resolve_source("t", {"source": "Anthropic/llm_global_opinions"}) == "Anthropic/llm_global_opinions"
    with pytest.raises(GlobalrepError, match=r"'data/gone\.csv'.*'tasks\.t\.source'"):
        config_checks.resolve_source("t", {"source": "data/gone.csv"})


def test_task_chains_keep_the_task_models_only():
    chains = {"lm": ["a", "b", "c"], "mixed": ["a", "rm"], "two": ["b", "c"]}
    assert config_checks.task_chains(chains, ["a", "b", "c"]) == {"lm": ["a", "b", "c"], "two": ["b", "c"]}


# ------------------------------------------------------------------------------ (d) Slurm, (e) lint


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
        "path": "org/paper-base", "backend": "published", "published": {"global_opinions": "published.csv"},
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
    assert all("threads: 3" in block and "mem_mb=64000" in block and "runtime=90" in block for block in jobs["demo-base"])
    # A model's own resources win over the engine's.
    assert all("threads: 2" in block and "mem_mb=32000" in block and "runtime=45" in block for block in jobs["demo-sft"])
    # Published outputs: one thread, no GPU, little memory.
    assert published and all(
        "threads:" not in block and "gpu=0" in block and "mem_mb=2000" in block and "runtime=30" in block
        for block in published
    )
    # Other rules keep their own memory (prepare_task: 4000 MB).
    assert re.search(r"^rule prepare_task:(?:\n .*)*\n\s+resources: .*mem_mb=4000", out, re.M), out


def test_inference_resources_per_model():
    engine = {"threads": 4, "gpus": 1, "mem_mb": 64000, "runtime": 360}
    assert inference_resources({"path": "org/m"}, engine) == engine
    assert inference_resources({"path": "org/m", "gpus": 2, "runtime": 20}, engine) == {**engine, "gpus": 2, "runtime": 20}
    assert inference_resources({"path": "p", "backend": "published"}, engine) == {
        "threads": 1, "gpus": 0, "mem_mb": 2000, "runtime": 30}
    assert inference_resources({"path": "p", "backend": "published", "mem_mb": 500}, engine)["mem_mb"] == 500
    # Resources size jobs; they are not the model's and never rerun its inference.
    spec = ModelSpec.from_config("m", {"path": "org/m", "threads": 8, "gpus": 2, "mem_mb": 1})
    assert spec == ModelSpec("m", "org/m")


def test_local_profile_dry_run(workdir):
    result = snakemake(workdir, "-n", "--profile", "profiles/local")
    assert result.returncode == 0, output_of(result)


def test_lint_has_no_complaints(workdir):
    result = snakemake(workdir, "--lint")
    out = output_of(result)
    assert result.returncode == 0, out
    assert "Congratulations, your workflow is in a good condition!" in out, out
    assert "Lints for" not in out


# ------------------------------------------------------------------------------ (f) shards


ITEMS = pd.DataFrame({"item_id": [f"i{k}" for k in range(7)], "group": list("aabbbcc")})


def write_shards(root: Path, model: str, n: int) -> list[Path]:
    paths = []
    for shard in range(n):
        part = shard_items(ITEMS, n, shard)
        path = root / model / f"shard-{shard}-of-{n}.parquet"
        made_by = stages.shard_made_by("global_opinions", model, "", shard, n, part["item_id"])
        write_parquet_atomic(part[["item_id"]].assign(x_logprob=[[-1.0, -2.0]] * len(part)), path, made_by)
        paths.append(path)
    return paths


def test_corrupt_shard_is_deleted_and_named(tmp_path):
    prepared = tmp_path / "prepared.parquet"
    write_parquet_atomic(ITEMS, prepared)
    good = write_shards(tmp_path, "m1", 2)
    other = write_shards(tmp_path, "m2", 2)
    other[1].write_bytes(b"PAR1 this is not parquet")
    outs = [tmp_path / name for name in ("scores.parquet", "table.csv", "deltas.csv")]
    with pytest.raises(GlobalrepError) as caught:
        stages.score_task("global_opinions", {}, prepared, {"m1": good, "m2": other}, {}, *outs)
    message = str(caught.value)
    assert str(other[1]) in message and "Rerun snakemake" in message
    assert not other[1].exists(), "the corrupt shard must be deleted so that Snakemake recomputes it"
    assert all(path.exists() for path in [*good, other[0]])
    assert not any(path.exists() for path in outs)


def test_shard_with_wrong_items_is_deleted(tmp_path):
    paths = write_shards(tmp_path, "m", 3)
    made_by = stages.shard_made_by("global_opinions", "m", "", 0, 3, ["i0", "zzz"])
    write_parquet_atomic(pd.DataFrame({"item_id": ["i0", "zzz"]}), paths[0], made_by)
    with pytest.raises(GlobalrepError, match="made for items"):
        stages.load_predictions("global_opinions", ITEMS, {"m": paths}, {})
    assert not paths[0].exists() and paths[1].exists()


def test_load_predictions_concatenates_models(tmp_path):
    frame = stages.load_predictions("global_opinions", ITEMS, {"a": write_shards(tmp_path, "a", 2), "b": write_shards(tmp_path, "b", 3)}, {})
    assert sorted(frame.groupby("model")["item_id"].count().items()) == [("a", 7), ("b", 7)]


FakeTask = Task.from_module(SimpleNamespace(
    __name__="fake", NAME="fake", PROMPT_VERSION="1", MODEL_KINDS=("lm",), AXIS="opinions",
    SCORE_ONLY_OPTIONS=("focus",), OPTIONS_SCHEMA={}, prepare=lambda options, source: None, score=lambda *args: None,
    requests=lambda items, options, model_kind: list(items["item_id"]),
))  # fmt: skip


def test_infer_shard_writes_one_row_per_item(tmp_path, monkeypatch):
    monkeypatch.setattr(stages, "get_task", lambda name: FakeTask)
    seen = {}

    class FakeBackend:
        def __init__(self, spec, options, progress):
            seen["options"] = options

        def answer(self, requests, shard=None):
            return pd.DataFrame({"item_id": requests, "x_logprob": [[-1.0]] * len(requests)})

        def close(self):
            pass

    monkeypatch.setitem(BACKENDS, "fake", FakeBackend)
    prepared = tmp_path / "prepared.parquet"
    write_parquet_atomic(ITEMS, prepared)
    engine = {"device": "cpu", "threads": 1, "gpus": 0, "mem_mb": 1, "runtime": 1}
    out = tmp_path / "shard-1-of-3.parquet"
    stages.infer_shard("fake", {}, ModelSpec("m", "org/m", backend="fake"), prepared, 3, 1, engine, out)
    written = pd.read_parquet(out)
    assert list(written["item_id"]) == list(shard_items(ITEMS, 3, 1)["item_id"])
    assert seen["options"] == {"device": "cpu"}

    # More shards than items: some shards are empty and still get their (empty) file.
    shard = next(i for i in range(10) if shard_items(ITEMS, 10, i).empty)
    empty = tmp_path / f"shard-{shard}-of-10.parquet"
    stages.infer_shard("fake", {}, ModelSpec("m", "org/m", backend="fake"), prepared, 10, shard, engine, empty)
    assert pd.read_parquet(empty).empty


def test_inference_options_drop_shards_and_scoring_only_options(monkeypatch):
    monkeypatch.setattr(config_checks, "get_task", lambda name: FakeTask)
    assert config_checks.inference_options("fake", {"source": "s", "shards": 4, "focus": ["x"]}) == {"source": "s"}
