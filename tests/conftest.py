"""Shared fixtures: tiny random models built once per session, offline, in a second or two."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from globalrep import demo

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
        message = (f"{SHARED_SKIP} at {path}: the paper-number checks need the real data "
                   f"(set {SHARED_DATA_VARIABLE} to its folder)")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run them", pytrace=False)
        pytest.skip(message)
    return path


def pytest_terminal_summary(terminalreporter):
    skipped = [
        report for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and SHARED_SKIP in report.longrepr[2]
    ]
    if skipped:
        reason = skipped[0].longrepr[2].removeprefix("Skipped: ")
        terminalreporter.write_line(f"{len(skipped)} paper-number checks skipped: {reason}", yellow=True)
