"""Every conda environment (envs/*.yaml, plus its post-deploy script) provides what the scripts
of the rules that use it import, directly or through the globalrep modules they use."""

from __future__ import annotations

import re
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

from globalrep.codebase import third_party_imports
from globalrep.engine.backends import BUILTIN_BACKENDS, environment_file

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "workflow" / "rules"
# conda-forge names that differ from the PyPI distribution of the same code.
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib", "seaborn-base": "seaborn"}
# What each environment's rules never run (modules, or module.function), so their imports need
# not be there: model inference and the demo's models (rules infer, build_demo_models), Multi-VALUE
# (rewrite_dialects), language detection (detect_sft_languages), reading hub datasets (prepare
# rules), figures (plot_task_figures) and the country tasks' maps and lists.
INFERENCE = (
    "globalrep.engine.answer",
    "globalrep.engine.backends.open_backend",
    "globalrep.stages.infer_shard",
    "globalrep.stages.build_demo",
    "globalrep.demo",
)
DETECTION = ("globalrep.langid",)
MULTIVALUE = ("globalrep.multivalue_adapter", "globalrep.nltk_corpora", "globalrep.dialect_rewrites")
HUB_DATASETS = (
    "globalrep.sources.read_records",
    "globalrep.tasks.belebele._read_hub",
    "globalrep.tasks.tydiqa_goldp._read_questions",
    "globalrep.tasks.sft_langid.conversations",
)
FIGURES = ("globalrep.figures",)
CFMATCH = ("globalrep.tasks.tydiqa_goldp._cfmatch_values",)  # TyDiQA's scoring
COUNTRY_DATA = (
    "globalrep.countries.shapefile_path",
    "globalrep.countries._read_shapefile",
    "globalrep.countries.read_us_favorability",
)
NOT_RUN = {
    "analysis": INFERENCE + DETECTION + MULTIVALUE + HUB_DATASETS,
    "inference": DETECTION + MULTIVALUE + FIGURES + CFMATCH,
    "dialects": INFERENCE + DETECTION + HUB_DATASETS + FIGURES + COUNTRY_DATA + CFMATCH,
    "langid": INFERENCE + MULTIVALUE + FIGURES + COUNTRY_DATA + CFMATCH,
    "vllm": DETECTION + MULTIVALUE + FIGURES + CFMATCH,
}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def rule_scripts() -> dict[str, list[Path]]:
    """env name -> the scripts of the rules that declare it (``conda:`` and ``script:``). A rule
    whose ``conda:`` is common.smk's ``inference_environment`` runs in each backend's environment."""
    scripts: dict[str, list[Path]] = {}
    for smk in sorted(RULES.glob("*.smk")):
        for block in re.split(r"^(?=rule \w+:)", smk.read_text(), flags=re.M)[1:]:
            conda = re.search(r"^\s+conda:\s+(\"[^\"]+\"|inference_environment)$", block, re.M)
            script = re.search(r"^\s+script:\s+\"([^\"]+)\"", block, re.M)
            assert conda and script, f"{smk.name}: {block.splitlines()[0]} lacks conda: or script:"
            if conda.group(1) == "inference_environment":
                envs = {Path(environment_file(name)) for name in BUILTIN_BACKENDS}
            else:
                envs = {(RULES / conda.group(1).strip('"')).resolve()}
            for env in envs:
                scripts.setdefault(env.stem, []).append((RULES / script.group(1)).resolve())
    return scripts


def env_distributions(env: str) -> set[str]:
    """Normalized distribution names the env installs: conda and pip dependencies, and the
    ``pip install`` lines of its post-deploy script."""
    spec = yaml.safe_load((REPO / "envs" / f"{env}.yaml").read_text())
    names = []
    for dependency in spec["dependencies"]:
        names += dependency["pip"] if isinstance(dependency, dict) else [dependency]
    post_deploy = REPO / "envs" / f"{env}.post-deploy.sh"
    if post_deploy.exists():
        for line in re.findall(r"pip install (.*)", post_deploy.read_text()):
            names += [word for word in line.split() if not word.startswith("-")]
    found = {normalized(re.split(r"[\s<>=!~\[]", name.strip(), maxsplit=1)[0]) for name in names}
    return {CONDA_TO_PYPI.get(name, name) for name in found}


def test_every_rule_names_an_env_that_exists():
    assert set(rule_scripts()) == {path.stem for path in (REPO / "envs").glob("*.yaml")}


@pytest.mark.parametrize("env", sorted(NOT_RUN))
def test_env_provides_its_scripts_imports(env):
    modules = third_party_imports(rule_scripts()[env], skip=NOT_RUN[env])
    distributions = packages_distributions()
    unknown = sorted(module for module in modules if module not in distributions)
    assert not unknown, f"imported but not installed here, so not checkable: {unknown}"
    installed = env_distributions(env)
    missing = sorted(module for module in modules if not {normalized(d) for d in distributions[module]} & installed)
    assert not missing, f"envs/{env}.yaml lacks what its rules' scripts import: {missing}"
