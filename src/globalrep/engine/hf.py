"""The ``hf`` backend: transformers models on CPU or CUDA, same code; log-likelihoods from tree-packed rows."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from globalrep.engine import loading
from globalrep.engine.batching import run_batched
from globalrep.engine.loglik import TokenizedRequest, score_requests
from globalrep.models import ModelSpec

log = logging.getLogger(__name__)

# Tokens of one tree-packed log-likelihood row (config key engine.max_packed_tokens; a row holding
# one subtree whole may take 1/8 more); a forward holds up to batch_size rows. On CUDA its 4D mask
# is row² entries (10 MiB in bf16 at 2304, 128 MiB at 8192): docs/architecture.md says what a row
# costs; 2048 fits a 24 GB GPU with a 7B model in bf16.
DEFAULT_MAX_PACKED_TOKENS = 2048


class HFBackend:
    """The ``hf`` backend's model primitives (see ``globalrep.engine.runner.ModelPrimitives``):
    loads the tokenizer and model of ``spec`` once, on first use."""

    def __init__(self, spec: ModelSpec, options: dict, progress: bool = False):
        self.spec, self.progress = spec, progress
        self.device = loading.resolve_device(options.get("device", "auto"))
        self.max_row = int(options.get("max_packed_tokens", DEFAULT_MAX_PACKED_TOKENS))
        if options.get("threads"):  # so that parallel jobs do not oversubscribe the CPUs
            torch.set_num_threads(int(options["threads"]))
        self._loaded = None

    @classmethod
    def loaded(
        cls, spec: ModelSpec, model, tokenizer, options: dict | None = None, progress: bool = False
    ) -> HFBackend:
        """The primitives of a model and tokenizer already loaded (a notebook's, a benchmark's)."""
        backend = cls(spec, dict(options or {}), progress)
        backend._loaded = (model, tokenizer)
        return backend

    @property
    def tokenizer(self):
        return self._model()[1]

    @property
    def window(self) -> int | None:
        """The model's maximum sequence length (its position embeddings); None when it declares none."""
        window = getattr(self._model()[0].config, "max_position_embeddings", None)
        return int(window) if window else None

    def loglik(self, requests: Sequence[TokenizedRequest]) -> list[list[float]]:
        """The requests' shared prefixes forwarded once: one trie, cut into rows
        (:func:`globalrep.engine.loglik.score_requests`); its token counts are logged."""
        model, tokenizer = self._model()
        logprobs, counts = score_requests(
            model,
            requests,
            self.max_row,
            self.spec.batch_size,
            tokenizer.pad_token_id,
            self.device,
            f"{self.spec.name} loglik",
            self.progress,
        )
        log.info("%s loglik: %s", self.spec.name, counts)
        return logprobs

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, stop: tuple[str, ...]) -> list[str]:
        model, tokenizer = self._model()
        return run_batched(
            prompts,
            self.spec.batch_size,
            lambda batch: generate_batch(model, tokenizer, batch, max_new_tokens, stop, self.device),
            f"{self.spec.name} generate",
            self.progress,
        )

    def reward(self, sequences: Sequence[Sequence[int]]) -> list[float]:
        model, tokenizer = self._model()
        return run_batched(
            sequences,
            self.spec.batch_size,
            lambda batch: reward_batch(model, batch, tokenizer.pad_token_id, self.device),
            f"{self.spec.name} reward",
            self.progress,
        )

    def close(self) -> None:
        self._loaded = None

    def _model(self):
        """(model, tokenizer), loaded on first use; transformers' own loading bars are off while
        loading unless ``progress`` (and restored after: no process-wide change)."""
        if self._loaded is None:
            from transformers.utils import logging as transformers_logging

            shown = transformers_logging.is_progress_bar_enabled()
            if not self.progress:
                transformers_logging.disable_progress_bar()
            try:
                if self.spec.kind == "reward":
                    tokenizer = loading.load_tokenizer(self.spec, loading.reward_tokenizer_path(self.spec))
                    model = loading.load_reward_model(self.spec, self.device)
                else:
                    tokenizer = loading.load_tokenizer(self.spec)
                    model = loading.load_causal_lm(self.spec, self.device)
            finally:
                if shown:
                    transformers_logging.enable_progress_bar()
            self._loaded = (model, tokenizer)
        return self._loaded


def _pad(sequences: list[list[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(sequence) for sequence in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for i, sequence in enumerate(sequences):
        span = slice(length - len(sequence), length) if side == "left" else slice(0, len(sequence))
        ids[i, span] = torch.tensor(sequence, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


@torch.no_grad()
def generate_batch(model, tokenizer, prompts: list[list[int]], max_new_tokens: int, stop: tuple[str, ...], device):
    """Greedy continuations of left-padded prompts, decoded; generation ends once every text holds a
    stop string (the runner cuts there)."""
    from transformers import GenerationConfig

    ids, mask = _pad(prompts, tokenizer.pad_token_id, "left")
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=loading.end_token_ids(tokenizer, model.generation_config),
        stop_strings=list(stop) or None,
    )
    output = model.generate(
        input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config, tokenizer=tokenizer
    )
    return tokenizer.batch_decode(output[:, ids.shape[1] :], skip_special_tokens=True)


@torch.no_grad()
def reward_batch(model, sequences: list[list[int]], pad_id: int, device) -> list[float]:
    ids, mask = _pad(sequences, pad_id, "right")
    return model(ids.to(device), mask.to(device)).tolist()
