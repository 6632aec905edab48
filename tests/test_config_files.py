"""Config bounds before any job: shards a whole number up to a cap, no key given twice, bounded
aliases, no YTE templating; each refused with the file or key named."""

from __future__ import annotations

import pytest
from workflow_runs import output_of, snakemake

from globalrep import config_checks
from globalrep.config_files import MAX_CONFIG_NODES, check_config_files
from globalrep.errors import GlobalrepError


def write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_a_key_given_twice_is_named_with_its_file_and_lines(tmp_path):
    path = write(tmp_path, "models:\n  demo-base:\n    path: a\n  demo-sft:\n    path: b\n  demo-base:\n    path: c\n")
    with pytest.raises(
        GlobalrepError, match=r"config\.yaml, line 6: config key 'models\.demo-base' is given twice \(first on line 2\)"
    ):
        check_config_files([path])


def test_an_alias_bomb_is_refused_and_ordinary_aliases_pass(tmp_path):
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(6)]
    bomb = write(tmp_path, "engine:\n  options:\n" + "".join(f"    {line}\n" for line in levels))
    assert len(bomb.read_bytes()) < 600 and 10**7 > MAX_CONFIG_NODES
    with pytest.raises(
        GlobalrepError, match=r"config\.yaml: its aliases \(\*name\) expand to [\d,]+ values, more than the 100,000"
    ):
        check_config_files([bomb])
    check_config_files([write(tmp_path, "base: &m {dtype: float32}\nmodels:\n  a: *m\n  b: *m\n")])


@pytest.mark.parametrize("value", ["true", "yes"])
def test_yte_templating_is_refused(tmp_path, value):
    with pytest.raises(
        GlobalrepError, match=r"config\.yaml: __use_yte__ is refused: a YTE template's values are Python"
    ):
        check_config_files([write(tmp_path, f"__use_yte__: {value}\nmodels: {{}}\n")])
    check_config_files([write(tmp_path, "__use_yte__: false\nmodels: {}\n")])


@pytest.mark.parametrize("shards", [2.0, 0, 1001, True, 10**6])
def test_shards_must_be_a_whole_number_up_to_the_cap(shards):
    with pytest.raises(
        GlobalrepError,
        match=rf"config key 'tasks\.belebele\.shards' is {shards!r}: give a whole number of jobs from 1 to 1000",
    ):
        config_checks.check_shards({"belebele": {"shards": shards}})
    config_checks.check_shards({"belebele": {"shards": 1000}, "md3_taboo": {}})


def test_the_workflow_refuses_them_before_planning(workdir):  # noqa: F811
    config = workdir / "config.yaml"
    text = config.read_text()
    config.write_text(text.replace("    shards: 2\n", "    shards: 1000000\n", 1))
    result = snakemake(workdir, "-n", timeout=120)  # planned, a million shards took minutes and GBs
    assert result.returncode != 0 and "config key 'tasks.global_opinions.shards' is 1000000" in output_of(result)
    config.write_text(text.replace("    shards: 2\n", "    shards: 2.0\n", 1))
    result = snakemake(workdir, "-n", timeout=120)
    assert result.returncode != 0 and "config key 'tasks.global_opinions.shards' is 2.0" in output_of(result)
    assert "Traceback" not in output_of(result)
    duplicated = text.replace(
        "models:\n", "models:\n  demo-base:\n    path: results/demo/models/demo-sft\n    stage: base\n", 1
    )
    config.write_text(duplicated)
    result = snakemake(workdir, "-n", timeout=120)
    assert result.returncode != 0 and "config key 'models.demo-base' is given twice" in output_of(result)
