"""Backends as plugins: what each declares, a registry keyed by a model entry's ``backend:``, and
a handle that loads a model once and answers many shards.

    with open_backend(spec, {"device": "cpu"}) as backend:
        predictions = backend.answer(requests, Shard(task="md3_taboo", items=items))

A backend is a class built from ``(spec, options, progress)``. Most run a model and implement
only its primitives (:class:`globalrep.engine.runner.ModelPrimitives`: a tokenizer, the window,
log-likelihoods of token ids, greedy generation, rewards); the engine's
:class:`~globalrep.engine.runner.ModelRunner` does the rest, the same for all. A backend that
answers whole requests itself (``published`` reads the paper's files) has ``answer(requests,
shard)`` instead. Either releases what it loaded in ``close``.

Each backend is registered with a :class:`BackendInfo`: its class, the JSON schema of a model
entry's ``options``, the model kinds it runs, its jobs' default resources, the entry keys that do
not change its answers and the conda environment of its jobs. The config schema, the jobs'
resources, the inference fingerprint and the ``infer`` rule read these declarations; none of them
names a backend. A new backend is one module and one entry in :data:`BUILTIN_BACKENDS`, or, from
another package, an entry point in the group ``globalrep.backends`` naming its ``BackendInfo``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from globalrep.engine.requests import Request
from globalrep.errors import GlobalrepError

if TYPE_CHECKING:
    from globalrep.models import ModelSpec

ENTRY_POINT_GROUP = "globalrep.backends"
DEFAULT_BACKEND = "hf"
# What answers requests with a backend's model primitives.
MODEL_RUNNER = "globalrep.engine.runner:ModelRunner"


@dataclass(frozen=True)
class Shard:
    """What a backend may need besides the requests: the task, the shard's items and the task's
    hook that reads its published files (the ``published`` backend calls it for these items)."""

    task: str
    items: pd.DataFrame
    read_published: Callable | None = None


class Backend(Protocol):
    def answer(self, requests: Sequence[Request], shard: Shard | None = None) -> pd.DataFrame:
        """One row per item: ``item_id`` and the columns of the requests' keys."""

    def close(self) -> None:
        """Release the model."""


BackendFactory = Callable[["ModelSpec", Mapping, bool], object]


@dataclass(frozen=True)
class BackendInfo:
    """What the workflow knows about a backend before loading it (nothing here imports it)."""

    # The class, or "module:Class" imported on first use, so that a backend's dependencies load
    # only when a model uses it.
    factory: str | BackendFactory
    # JSON schema of a model entry's ``options`` with this backend (the config schema's block).
    options_schema: Mapping = field(default_factory=lambda: {"type": "object"})
    # The model kinds it runs; a model of another kind is refused before any job.
    model_kinds: tuple[str, ...] = ("lm", "reward")
    # Its jobs' ``threads``/``gpus``/``mem_mb``/``runtime`` where the model entry sets none (else config['engine']'s).
    default_resources: Mapping[str, int] = field(default_factory=dict)
    # Model entry keys that do not change its answers, left out of the inference fingerprint
    # (``options.name`` for an option); ``batch_size`` is left out for every backend.
    non_result_keys: tuple[str, ...] = ()
    # The conda environment of its inference jobs: a path relative to the workflow's root (the
    # folder of its Snakefile, never the installed package's), or an absolute path.
    environment: str = "envs/inference.yaml"


HF_OPTIONS_SCHEMA = {
    "description": (
        "Extra keyword arguments of the model's `from_pretrained`, e.g. `attn_implementation: eager` or "
        "`trust_remote_code: true`. Arguments the config sets through its own keys (revision, gguf_file, "
        "dtype/torch_dtype, load_in_8bit/quantization_config, device_map: engine.device) are refused. "
        "Part of the inference fingerprint."
    ),
    "type": "object",
}

VLLM_OPTIONS_SCHEMA = {
    "description": (
        "Keyword arguments of `vllm.LLM` (the model, tokenizer, revision and dtype come from the model "
        "entry). Part of the inference fingerprint, except `gpu_memory_utilization`."
    ),
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "gpu_memory_utilization": {
            "description": "Share of each GPU's memory vLLM may take (speed only).",
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
        },
        "tensor_parallel_size": {
            "description": "GPUs one model is split over; set the model's `gpus` to match.",
            "type": "integer",
            "minimum": 1,
        },
        "max_model_len": {
            "description": "Longest sequence (tokens); unset: the model's window. Contexts and "
            "prompts are fitted to it as to the window.",
            "type": "integer",
            "minimum": 1,
        },
        "enforce_eager": {"description": "No CUDA graphs (slower, less memory). Always on for CPU.", "type": "boolean"},
        "enable_prefix_caching": {
            "description": "Reuse the computed prompt prefixes for generation "
            "(vLLM never uses it for log-likelihoods).",
            "type": "boolean",
        },
        "max_num_seqs": {
            "description": "Sequences vLLM runs at once (speed and memory; may change the last digits of results).",
            "type": "integer",
            "minimum": 1,
        },
        "quantization": {
            "description": "vLLM's quantization method of the checkpoint (e.g. `awq`, `fp8`).",
            "type": "string",
        },
        "trust_remote_code": {"description": "Run the model's own code from the hub.", "type": "boolean"},
    },
}

# The backends this package ships; other packages add theirs through ENTRY_POINT_GROUP.
BUILTIN_BACKENDS: dict[str, BackendInfo] = {
    "hf": BackendInfo("globalrep.engine.hf:HFBackend", HF_OPTIONS_SCHEMA),
    "vllm": BackendInfo(
        "globalrep.engine.vllm:VLLMBackend",
        VLLM_OPTIONS_SCHEMA,
        model_kinds=("lm",),
        non_result_keys=("options.gpu_memory_utilization",),
        environment="envs/vllm.yaml",
    ),  # fmt: skip
    # Reads one of the paper's files: no GPU, little memory, minutes; no options.
    "published": BackendInfo(
        "globalrep.engine.published:PublishedBackend",
        {"description": "Not used by backend published.", "type": "object", "maxProperties": 0},
        # One of the paper's files read: one thread, no GPU, little memory, minutes.
        default_resources={"threads": 1, "gpus": 0, "mem_mb": 2000, "runtime": 30},
    ),
}

# Backends registered at run time (``register``; tests, notebooks), over the others.
BACKENDS: dict[str, BackendInfo | str | BackendFactory] = {}


def register(name: str, backend: BackendInfo | str | BackendFactory) -> None:
    """Make ``backend: name`` build its backends with ``backend``: a :class:`BackendInfo`, or a
    class (or "module:Class") declared with the defaults."""
    BACKENDS[name] = backend


@cache
def _entry_point_backends() -> dict[str, BackendInfo]:
    """Backends of other installed packages: entry points of ``globalrep.backends``, each naming
    a ``BackendInfo`` (or a class)."""
    found = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[point.name] = _as_info(point.load())
        except Exception as error:  # a broken plugin is named, whatever it raised
            raise GlobalrepError(
                f"backend {point.name!r} of entry point group {ENTRY_POINT_GROUP} ({point.value}) cannot be "
                f"loaded: {error}"
            ) from error
    return found


def _as_info(backend: BackendInfo | str | BackendFactory) -> BackendInfo:
    return backend if isinstance(backend, BackendInfo) else BackendInfo(backend)


def backend_infos() -> dict[str, BackendInfo]:
    """Every known backend by name: built in, from entry points, registered at run time."""
    return {**BUILTIN_BACKENDS, **_entry_point_backends(), **{name: _as_info(b) for name, b in BACKENDS.items()}}


def backend_info(name: str | None) -> BackendInfo:
    """The declaration of backend ``name`` (None: the default, ``hf``)."""
    infos = backend_infos()
    info = infos.get(name or DEFAULT_BACKEND)
    if info is None:
        raise GlobalrepError(f"unknown backend {name!r}; known backends: {', '.join(sorted(infos))}")
    return info


def _imported(target: str | Callable) -> Callable:
    """``target`` itself, or the attribute that "module:attribute" names, imported now."""
    if isinstance(target, str):
        module, _, attribute = target.partition(":")
        target = getattr(importlib.import_module(module), attribute)
    return target


def backend_factory(name: str) -> BackendFactory:
    return _imported(backend_info(name).factory)


def environment_file(name: str | None) -> str:
    """The conda environment file of backend ``name``'s inference jobs, as declared: relative to
    the workflow's root, or absolute."""
    return backend_info(name).environment


@contextmanager
def open_backend(spec: ModelSpec, options: Mapping | None = None, progress: bool = False) -> Iterator[Backend]:
    """The backend of ``spec.backend`` for one model, loaded once, closed on exit. ``options`` is
    ``config['engine']`` (e.g. ``device``, ``max_packed_tokens``; ``threads``, the job's CPU threads);
    ``progress`` shows tqdm bars. A backend of model primitives answers through the engine's
    :class:`~globalrep.engine.runner.ModelRunner`."""
    kinds = backend_info(spec.backend).model_kinds
    if spec.kind not in kinds:
        raise GlobalrepError(
            f"model {spec.name!r}: backend {spec.backend} runs models of kind {' or '.join(kinds)}, not {spec.kind}"
        )
    built = backend_factory(spec.backend)(spec, dict(options or {}), progress)
    # Imported by name, like the backends, so that importing the engine imports no torch.
    backend = built if hasattr(built, "answer") else _imported(MODEL_RUNNER)(spec, built, progress)
    try:
        yield backend
    finally:
        backend.close()
