"""Loading tokenizers, causal LMs and reward models from hub ids or local paths."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import torch
from torch import nn

from globalrep.errors import GlobalrepError
from globalrep.local_paths import is_local_path
from globalrep.models import ModelSpec

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GlobalrepError(f"engine.device is {device!r} but no CUDA device is visible; use 'auto' or 'cpu'")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype | str:
    """``auto`` keeps the checkpoint's dtype on GPU and uses float32 on CPU, where half
    precision matmuls are slow and imprecise."""
    if dtype == "auto":
        return "auto" if device.type == "cuda" else torch.float32
    return DTYPES[dtype]


def _pretrained_kwargs(spec: ModelSpec, path: str) -> dict:
    # Custom code runs only when the entry opts in; without it transformers would ask on stdin
    # ("[y/N]"), which a batch job cannot answer: False refuses at once (see _refused).
    kwargs: dict = {"trust_remote_code": bool(spec.options.get("trust_remote_code", False))}
    if spec.revision:
        kwargs["revision"] = spec.revision
    if spec.gguf_file:
        kwargs["gguf_file"] = spec.gguf_file
    if is_local_path(path) and not Path(path).expanduser().exists():
        raise GlobalrepError(f"model {spec.name!r}: local path {path!r} (under models.{spec.name}) does not exist")
    return kwargs


def load_tokenizer(spec: ModelSpec, path: str | None = None):
    from transformers import AutoTokenizer

    path = path or spec.path
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **_pretrained_kwargs(spec, path))
    except OSError as error:
        raise GlobalrepError(f"model {spec.name!r}: cannot load the tokenizer from {path!r}: {error}") from error
    except ValueError as error:
        refusal = _refused(spec, path, error)
        if refusal is None:
            raise
        raise refusal from None
    if tokenizer.pad_token_id is None:
        # Padding positions are always masked; any id will do, eos is the usual choice.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if spec.chat_template is True and not tokenizer.chat_template:
        raise GlobalrepError(
            f"model {spec.name!r} has chat_template: true but its tokenizer ({path}) defines no chat template"
        )
    return tokenizer


def end_token_ids(tokenizer, generation_config=None) -> list[int]:
    """The token ids that end a generation: the tokenizer's EOS and every EOS id of the model's
    generation config (chat models often end turns with another token), in that order."""
    ids = [tokenizer.eos_token_id]
    configured = getattr(generation_config, "eos_token_id", None)
    ids += configured if isinstance(configured, list) else [configured]
    return list(dict.fromkeys(i for i in ids if i is not None))


# from_pretrained arguments that the config sets through its own keys, not through options.
CONFIG_KEYS = {
    "revision": "revision",
    "gguf_file": "gguf_file",
    "dtype": "dtype",
    "torch_dtype": "dtype",
    "quantization_config": "load_in_8bit",
    "load_in_8bit": "load_in_8bit",
    "device_map": "engine.device",
}


def _model_kwargs(spec: ModelSpec, path: str, device: torch.device) -> dict:
    kwargs = _pretrained_kwargs(spec, path)
    kwargs["dtype"] = resolve_dtype(spec.dtype, device)
    kwargs["attn_implementation"] = "sdpa"  # supports the engine's custom 4D masks
    owned = sorted(set(spec.options) & set(CONFIG_KEYS))
    if owned:
        raise GlobalrepError(
            f"model {spec.name!r}: models.{spec.name}.options sets {', '.join(owned)}; set the config key(s) "
            f"{', '.join(sorted({CONFIG_KEYS[key] for key in owned}))} instead"
        )
    kwargs.update(spec.options)  # e.g. attn_implementation, trust_remote_code, low_cpu_mem_usage
    if spec.load_in_8bit:
        if device.type != "cuda":
            raise GlobalrepError(f"model {spec.name!r}: load_in_8bit needs a CUDA device (bitsandbytes)")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        kwargs["device_map"] = {"": device.index or 0}
    return kwargs


def _from_pretrained(auto_class, spec: ModelSpec, path: str, device: torch.device) -> nn.Module:
    kwargs = _model_kwargs(spec, path, device)
    try:
        model = auto_class.from_pretrained(path, **kwargs)
    except OSError as error:
        raise GlobalrepError(f"model {spec.name!r}: cannot load weights from {path!r}: {error}") from error
    except (ValueError, pickle.UnpicklingError, MemoryError, RuntimeError) as error:
        refusal = _refused(spec, path, error)
        if refusal is None:
            raise
        raise refusal from None
    if "quantization_config" not in kwargs:
        model.to(device)
    return model.eval()


def _refused(spec: ModelSpec, path: str | Path, error: BaseException) -> GlobalrepError | None:
    """One line for what loading ``path`` refused on purpose or could not allocate: custom code
    without ``trust_remote_code``, a pickle that is more than tensors, too little memory; None for
    any other error (a bug, shown with its traceback)."""
    name, first_line = spec.name, (str(error).strip().splitlines() or [""])[0][:200]
    if isinstance(error, ValueError) and "trust_remote_code" in str(error):
        return GlobalrepError(
            f"model {name!r}: {path} contains custom code (auto_map); it was not run. Set "
            f"'models.{name}.options.trust_remote_code: true' only if you trust that code"
        )
    if isinstance(error, pickle.UnpicklingError):
        return GlobalrepError(
            f"model {name!r}: {path} holds a pickle that is more than tensors, refused by torch's weights-only "
            f"loader ({first_line}); nothing in it ran. Use safetensors or a plain state dict of tensors"
        )
    if isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and "alloc" in str(error)):
        return GlobalrepError(
            f"model {name!r}: out of memory loading {path} ({type(error).__name__}: {first_line}); give the job "
            f"more memory (engine.mem_mb or 'models.{name}.mem_mb'), or a smaller dtype ('models.{name}.dtype')"
        )
    return None


def load_causal_lm(spec: ModelSpec, device: torch.device) -> nn.Module:
    from transformers import AutoModelForCausalLM

    return _from_pretrained(AutoModelForCausalLM, spec, spec.path, device)


class ScalarHeadRewardModel(nn.Module):
    """A transformer body and a linear head read at the last real token of each sequence.

    Covers both ``head: sequence-classification`` (the body and ``score`` of an
    ``AutoModelForSequenceClassification`` with one label) and ``head: value-head`` (the
    Starling-RM layout: a causal LM body plus a bias-free ``v_head``).
    """

    def __init__(self, body: nn.Module, head: nn.Module):
        super().__init__()
        self.body = body
        self.head = head

    @property
    def config(self):
        """The body's config (its window: ``max_position_embeddings``)."""
        return self.body.config

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # Positions from the mask, so left and right padding give the same reward.
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        hidden = self.body(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
        ).last_hidden_state
        last = attention_mask.shape[1] - 1 - attention_mask.flip(-1).long().argmax(-1)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return self.head(pooled.to(self.head.weight.dtype)).squeeze(-1).float()


def _sequence_classification_reward_model(spec: ModelSpec, device: torch.device) -> ScalarHeadRewardModel:
    from transformers import AutoModelForSequenceClassification

    model = _from_pretrained(AutoModelForSequenceClassification, spec, spec.path, device)
    if model.config.num_labels != 1:
        raise GlobalrepError(
            f"model {spec.name!r}: a sequence-classification reward model needs num_labels == 1, "
            f"found {model.config.num_labels}"
        )
    head = getattr(model, "score", None) or getattr(model, "classifier", None)
    if not isinstance(head, nn.Linear):
        raise GlobalrepError(f"model {spec.name!r}: no linear 'score' head found on {type(model).__name__}")
    return ScalarHeadRewardModel(model.base_model, head).eval()


def _value_head_state_dict_path(spec: ModelSpec) -> Path:
    path = Path(spec.path).expanduser()
    if path.is_file():
        return path
    candidates = sorted(path.glob("*.pt")) + sorted(path.glob("*.bin")) if path.is_dir() else []
    if len(candidates) != 1:
        raise GlobalrepError(
            f"model {spec.name!r}: head: value-head needs models.{spec.name}.path to be a .pt/.bin state dict "
            f"or a directory holding exactly one; found {[c.name for c in candidates] or 'none'} in {path}"
        )
    return candidates[0]


def _value_head_reward_model(spec: ModelSpec, device: torch.device) -> ScalarHeadRewardModel:
    from transformers import AutoModel

    if not spec.base_model:
        raise GlobalrepError(f"model {spec.name!r}: head: value-head needs models.{spec.name}.base_model")
    body = _from_pretrained(AutoModel, spec, spec.base_model, device)
    state_path = _value_head_state_dict_path(spec)
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise _refused(spec, state_path, error) from None
    if "v_head.weight" not in state:
        raise GlobalrepError(f"model {spec.name!r}: the state dict has no 'v_head.weight'")
    head = nn.Linear(body.config.hidden_size, 1, bias=False)
    head.weight.data.copy_(state.pop("v_head.weight"))
    # The body's keys carry the reward model's own prefix (Starling: 'transformer.').
    body_state = {
        key.split(".", 1)[1] if key.startswith(("transformer.", "model.")) else key: value
        for key, value in state.items()
    }
    result = body.load_state_dict(body_state, strict=False)
    log.info(
        "%s: value head loaded; body keys missing %d, unexpected %d",
        spec.name,
        len(result.missing_keys),
        len(result.unexpected_keys),
    )
    head.to(device=device, dtype=next(body.parameters()).dtype)
    return ScalarHeadRewardModel(body, head).eval()


def load_reward_model(spec: ModelSpec, device: torch.device) -> ScalarHeadRewardModel:
    if spec.head == "value-head":
        return _value_head_reward_model(spec, device)
    return _sequence_classification_reward_model(spec, device)


def reward_tokenizer_path(spec: ModelSpec) -> str:
    """Value-head reward models keep their tokenizer with the base model."""
    return spec.base_model if spec.head == "value-head" and spec.base_model else spec.path
