"""The config's checks beyond the schema: missing model paths and task sources and undefined
chain models stop the workflow before any job; the checks themselves; models' job resources."""

from __future__ import annotations

import pytest
from workflow_runs import edit_config, output_of, snakemake

from globalrep import config_checks
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec, inference_resources


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
    assert (
        config_checks.resolve_source("t", {"source": "Anthropic/llm_global_opinions"})
        == "Anthropic/llm_global_opinions"
    )
    with pytest.raises(GlobalrepError, match=r"'data/gone\.csv'.*'tasks\.t\.source'"):
        config_checks.resolve_source("t", {"source": "data/gone.csv"})


def test_task_chains_keep_the_task_models_only():
    chains = {"lm": ["a", "b", "c"], "mixed": ["a", "rm"], "two": ["b", "c"]}
    assert config_checks.task_chains(chains, ["a", "b", "c"]) == {"lm": ["a", "b", "c"], "two": ["b", "c"]}


def test_inference_resources_per_model():
    engine = {"threads": 4, "gpus": 1, "mem_mb": 64000, "runtime": 360}
    assert inference_resources({"path": "org/m"}, engine) == engine
    assert inference_resources({"path": "org/m", "gpus": 2, "runtime": 20}, engine) == {
        **engine,
        "gpus": 2,
        "runtime": 20,
    }
    assert inference_resources({"path": "p", "backend": "published"}, engine) == {
        "threads": 1,
        "gpus": 0,
        "mem_mb": 2000,
        "runtime": 30,
    }
    assert inference_resources({"path": "p", "backend": "published", "mem_mb": 500}, engine)["mem_mb"] == 500
    # Resources size jobs; they are not the model's and never rerun its inference.
    spec = ModelSpec.from_config("m", {"path": "org/m", "threads": 8, "gpus": 2, "mem_mb": 1})
    assert spec == ModelSpec("m", "org/m")
