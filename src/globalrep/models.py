"""Model entries of the config, and the fingerprints that decide what reruns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from globalrep.chat_formats import template_source
from globalrep.digests import fingerprint
from globalrep.local_paths import is_local_path
from globalrep.prompt_templates import user_template_text

# Keys of every model entry that do not change results: they stay out of the fingerprint, with
# those its backend declares (``BackendInfo.non_result_keys``).
NON_RESULT_KEYS = ("batch_size",)

# Bump when a change to the engine changes its numbers (not for speed-only changes).
ENGINE_RESULTS_VERSION = "4"  # 2: log-likelihood contexts fit the window; repeated continuations tie; 3: generation ends at every end id of the generation config; 4: non-finite scores are missing answers, reward conversations fit the window

# Keys of a model entry that size its inference jobs (workflow resources, not the model's).
RESOURCE_KEYS = ("threads", "gpus", "mem_mb", "runtime")


def inference_resources(entry: dict, engine: dict) -> dict[str, int]:
    """``threads``, ``gpus``, ``mem_mb`` and ``runtime`` of a model's inference jobs: the model
    entry's own, else its backend's defaults (``BackendInfo.default_resources``), else the
    engine-wide ``engine``."""
    from globalrep.engine.backends import backend_info

    defaults = {**engine, **backend_info(entry.get("backend")).default_resources}
    return {key: entry.get(key, defaults[key]) for key in RESOURCE_KEYS}


@dataclass(frozen=True)
class ModelSpec:
    """One entry of ``config['models']``; see workflow/schemas/config.schema.yaml."""

    name: str
    path: str
    stage: str = "base"  # base | sft | pt
    kind: str = "lm"  # lm | reward
    chat_template: bool | str = False  # true | false | a built-in chat format's name | a Jinja file
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    batch_size: int = 8
    revision: str | None = None
    load_in_8bit: bool = False
    backend: str = "hf"  # a registered backend's name (globalrep.engine.backends)
    head: str = "sequence-classification"  # reward models: sequence-classification | value-head
    base_model: str | None = None  # value-head reward models: the causal LM body
    gguf_file: str | None = None  # a GGUF file inside ``path``
    published: dict = field(default_factory=dict)  # backend published: {task: file or folder}
    options: dict = field(default_factory=dict)  # the backend's options

    @classmethod
    def from_config(cls, name: str, entry: dict) -> ModelSpec:
        """The entry without its job resources (:func:`inference_resources`); a chat format name
        or template file that does not exist fails here, not in a job."""
        spec = cls(name=name, **{key: value for key, value in entry.items() if key not in RESOURCE_KEYS})
        spec.chat_template_source()
        return spec

    def chat_template_source(self) -> str | None:
        """The Jinja source of a named chat format or template file; None for true/false."""
        if not isinstance(self.chat_template, str):
            return None
        return template_source(self.chat_template, f"models.{self.name}.chat_template")

    def is_local(self) -> bool:
        """Whether ``path`` names a local directory or file rather than a hub id."""
        return is_local_path(self.path)


def inference_fingerprint(model: ModelSpec, request_options: dict, prompt_version: str) -> str:
    """Hash of exactly what determines an inference job's output: the model entry minus batch
    size and the keys its backend declares speed-only, the task options that shape its requests
    (a prompt template file's text included), the prompt version."""
    from globalrep.engine.backends import backend_info

    declared = backend_info(model.backend).non_result_keys
    entry = {k: v for k, v in asdict(model).items() if k not in NON_RESULT_KEYS and k not in declared}
    options = [key.removeprefix("options.") for key in declared if key.startswith("options.")]
    entry["options"] = {k: v for k, v in entry["options"].items() if k not in options}
    source = model.chat_template_source()
    if source is not None:
        entry["chat_template_source"] = source  # editing a format's file reruns its jobs
    if request_options.get("prompt_template"):  # so does editing a task's prompt template
        request_options = {
            **request_options,
            "prompt_template_text": user_template_text(request_options["prompt_template"], "prompt_template"),
        }
    return fingerprint(entry, request_options, prompt_version, ENGINE_RESULTS_VERSION)
