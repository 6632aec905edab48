"""config/README.md's option tables are generated from the config schema's descriptions."""

from __future__ import annotations

import pytest
from conftest import TOP_LEVEL_SCHEMA

from globalrep import config_docs, config_schema
from globalrep.errors import GlobalrepError


def test_config_readme_is_what_the_schema_gives():
    current = config_docs.CONFIG_README.read_text(encoding="utf-8")
    assert config_docs.render(current, config_schema.assemble(TOP_LEVEL_SCHEMA)) == current, (
        f"config/README.md's tables differ from the schema's descriptions; run {config_docs.WRITE_COMMAND}"
    )


def test_tables_render_types_defaults_and_required_keys():
    schema = config_schema.assemble(TOP_LEVEL_SCHEMA)
    table = config_docs.options_table(schema, "tasks.sft_langid").splitlines()
    assert table[0] == "| key | type | default | meaning |"
    rows = {row.split(" | ")[0].removeprefix("| "): row.split(" | ")[1:3] for row in table[2:]}
    assert rows["`datasets`"] == ["map", "required"]
    assert rows["`datasets.<name>.splits`"] == ["list of strings", "`[train]`"]
    assert rows["`detectors`"] == ["list of 2 of `langdetect`, `fasttext`, `lingua`", "`[langdetect, fasttext]`"]
    assert rows["`low_accuracy`"] == ["bool", "`false`"]
    models = config_docs.options_table(schema, "models")
    assert r"| `stage` | `base` \| `sft` \| `pt` | `base` |" in models and "| `revision` | string | unset |" in models
    belebele = config_docs.options_table(schema, "tasks.belebele")
    assert "| `languages` | `all` or list of strings | `all` |" in belebele  # through $defs.languages
    assert config_docs.values_list(schema, "dialects").startswith("`aboriginal`, `african_american_vernacular`, ")


def test_every_task_needs_a_table_and_markers_name_real_keys():
    schema = config_schema.assemble(TOP_LEVEL_SCHEMA)
    text = config_docs.CONFIG_README.read_text(encoding="utf-8")
    without = text.replace("<!-- options:tasks.belebele -->", "<!-- gone -->")
    with pytest.raises(GlobalrepError, match="no options table for task.*belebele.*--write"):
        config_docs.render(without, schema)
    with pytest.raises(GlobalrepError, match="no config key 'engine.nowhere'"):
        config_docs.render(text + "\n<!-- options:engine.nowhere -->\n<!-- /options -->\n", schema)


def test_write_rewrites_a_stale_table(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    current = config_docs.CONFIG_README.read_text(encoding="utf-8")
    readme.write_text(current.replace("| `threads` |", "| `threds` |"), encoding="utf-8")
    monkeypatch.setattr(config_docs, "CONFIG_README", readme)
    assert config_docs.main(["--check"]) == 1
    assert config_docs.main(["--write"]) == 0
    assert readme.read_text(encoding="utf-8") == current and config_docs.main(["--check"]) == 0
