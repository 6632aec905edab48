"""The config schema (top level plus every task's options block): errors that name the key,
defaults, and every key described and closed."""

from __future__ import annotations

import pytest
from conftest import TOP_LEVEL_SCHEMA
from workflow_runs import edit_config, output_of, snakemake

from globalrep import config_checks, config_schema
from globalrep.models import ModelSpec

# The config schema as the workflow validates with it: the top level plus every task's block.
SCHEMA = config_schema.assembled_file(TOP_LEVEL_SCHEMA)


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
