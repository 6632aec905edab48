"""Model entries of the config, and the fingerprints that decide what reruns."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Keys of a model entry that do not change results: they stay out of the fingerprint.
NON_RESULT_KEYS = ("batch_size", "device")

# Bump when a change to the engine changes its numbers (not for speed-only changes).
ENGINE_RESULTS_VERSION = "1"


@dataclass(frozen=True)
class ModelSpec:
    """One entry of ``config['models']``; see workflow/schemas/config.schema.yaml."""

    name: str
    path: str
    stage: str = "base"  # base | sft | pt
    kind: str = "lm"  # lm | reward
    chat_template: bool = False
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    batch_size: int = 8
    revision: str | None = None
    load_in_8bit: bool = False
    backend: str = "hf"  # hf | published
    head: str = "sequence-classification"  # reward models: sequence-classification | value-head
    base_model: str | None = None  # value-head reward models: the causal LM body
    gguf_file: str | None = None  # a GGUF file inside ``path``
    options: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, name: str, entry: dict) -> "ModelSpec":
        return cls(name=name, **entry)

    def is_local(self) -> bool:
        """Whether ``path`` names a local directory or file rather than a hub id."""
        return is_local_path(self.path)


def is_local_path(path: str) -> bool:
    """Hub ids look like ``org/name``; anything else (absolute, ``./``, deeper) is a local path."""
    if path.startswith(("/", "./", "../", "~")) or Path(path).exists():
        return True
    return path.count("/") != 1


def fingerprint(*parts: object) -> str:
    """A short stable hash of JSON-serialisable parts (dict keys sorted)."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def inference_fingerprint(model: ModelSpec, task_options: dict, prompt_version: str) -> str:
    """Hash of exactly what determines an inference job's output.

    Excluded: batch size and device (speed only) and the task's shard count (it changes the
    output file names, so Snakemake plans those jobs anyway).
    """
    entry = {k: v for k, v in asdict(model).items() if k not in NON_RESULT_KEYS}
    options = {k: v for k, v in task_options.items() if k != "shards"}
    return fingerprint(entry, options, prompt_version, ENGINE_RESULTS_VERSION)
