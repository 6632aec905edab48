"""The ``hf`` backend: transformers models on CPU or CUDA, same code."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence

import pandas as pd
import torch

from globalrep.engine import loading
from globalrep.engine.answers import Answers, generate_answer, loglik_answer, prediction_frame, reward_answer
from globalrep.engine.batching import run_batched
from globalrep.engine.loglik import fit_window, score_requests, tokenize_request
from globalrep.engine.prompts import encode, encode_many, is_chat_format, render, render_context
from globalrep.engine.requests import GenerateRequest, LoglikRequest, Request, RewardRequest, check_unique_keys
from globalrep.engine.truncation import fit_prompt, model_window
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec

log = logging.getLogger(__name__)

# Tokens of one tree-packed log-likelihood row (config key engine.max_packed_tokens); a forward
# holds up to batch_size rows. Its 4D mask is row² entries (8 MiB in bf16 at 2048, 128 MiB at
# 8192): config/README.md says what a row costs; 2048 fits a 24 GB GPU with a 7B model in bf16.
DEFAULT_MAX_PACKED_TOKENS = 2048


class HFBackend:
    """The ``hf`` backend: loads the tokenizer and model of ``spec`` once (on first use) and
    answers any number of request lists with them."""

    def __init__(self, spec: ModelSpec, options: dict, progress: bool = False):
        self.spec, self.progress = spec, progress
        self.device = loading.resolve_device(options.get("device", "auto"))
        self.max_row = int(options.get("max_packed_tokens", DEFAULT_MAX_PACKED_TOKENS))
        if options.get("threads"):  # so that parallel jobs do not oversubscribe the CPUs
            torch.set_num_threads(int(options["threads"]))
        self._loaded = None

    def answer(self, requests: Sequence[Request], shard=None) -> pd.DataFrame:
        spec = self.spec
        check_unique_keys(requests)
        answers: Answers = {}
        by_type: dict[type, list] = defaultdict(list)
        for request in requests:
            by_type[type(request)].append(request)
        if spec.kind == "reward" and set(by_type) - {RewardRequest}:
            raise GlobalrepError(f"model {spec.name!r} is a reward model; it can only answer reward requests")
        if spec.kind != "reward" and RewardRequest in by_type:
            raise GlobalrepError(f"model {spec.name!r} has kind {spec.kind!r}; reward requests need kind: reward")
        if by_type:
            model, tokenizer = self._model()
        run = {LoglikRequest: lambda batch: answer_loglik(model, tokenizer, spec, batch, self.device, self.max_row, self.progress),
               GenerateRequest: lambda batch: answer_generate(model, tokenizer, spec, batch, self.device, self.progress),
               RewardRequest: lambda batch: answer_rewards(model, tokenizer, spec, batch, self.device, self.progress)}  # fmt: skip
        for kind, name in ((RewardRequest, "reward"), (LoglikRequest, "loglik"), (GenerateRequest, "generate")):
            if by_type[kind]:
                _timed(spec, name, by_type[kind], answers, lambda: run[kind](by_type[kind]))
        return prediction_frame(answers)

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


def _timed(spec: ModelSpec, kind: str, requests: list, answers: Answers, run) -> None:
    started = time.perf_counter()
    columns, n_tokens = run()
    elapsed = max(time.perf_counter() - started, 1e-9)
    answers.update(columns)
    log.info("%s %s: %d requests in %.1f s (%.1f items/s, %.0f tokens/s)",
             spec.name, kind, len(requests), elapsed, len(requests) / elapsed, n_tokens / elapsed)


def answer_loglik(model, tokenizer, spec, requests: list[LoglikRequest], device, max_row_tokens: int, progress: bool = True):
    """Returns ({(item_id, column): value}, tokens forwarded). The requests' shared prefixes are
    forwarded once (one trie, see :func:`score_requests`; its token counts are logged). A
    continuation repeated within a request is scored once and shares its result, so repeats tie
    exactly. A context too long for the model's window is shortened from the left (see
    :func:`fit_window`) and counted."""
    window = model_window(model)
    double_bos = is_chat_format(spec.chat_template)
    distinct = [tuple(dict.fromkeys(request.continuations)) for request in requests]
    tokenized, shortened = [], 0
    for request, continuations in zip(requests, distinct):
        tokens = tokenize_request(lambda texts: encode_many(texts, tokenizer, double_bos),
                                  render_context(request.context, tokenizer, spec.chat_template), continuations)
        try:
            tokens, cut = fit_window(tokens, window, keep_first=tokens.context[:1] == (tokenizer.bos_token_id,))
        except GlobalrepError as error:
            raise GlobalrepError(f"item {request.item_id}, {request.key}: {error}") from None
        tokenized.append(tokens)
        shortened += cut > 0
    (log.warning if shortened else log.info)(
        "%s: %d of %d log-likelihood contexts exceeded the model's window (%s tokens) and were shortened from the left",
        spec.name, shortened, len(requests), window)
    logprobs, counts = score_requests(model, tokenized, max_row_tokens, spec.batch_size, tokenizer.pad_token_id,
                                      device, f"{spec.name} loglik", progress)
    log.info("%s loglik: %s", spec.name, counts)
    columns: Answers = {}
    for request, continuations, tokens, values in zip(requests, distinct, tokenized, logprobs):
        position = [continuations.index(text) for text in request.continuations]
        columns.update(loglik_answer(request, [values[i] for i in position],
                                     [len(tokens.continuations[i].tokens) for i in position]))
    return columns, counts.forwarded


def _pad(sequences: list[list[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(sequence) for sequence in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for i, sequence in enumerate(sequences):
        span = slice(length - len(sequence), length) if side == "left" else slice(0, len(sequence))
        ids[i, span] = torch.tensor(sequence, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text before the earliest stop string."""
    cut = min((index for s in stop if (index := text.find(s)) >= 0), default=len(text))
    return text[:cut]


def end_token_ids(model, tokenizer) -> list[int]:
    """The ids that end a generation: every one the model's generation config lists, as
    ``generate`` stops by default (Qwen1.5-Chat lists ``<|im_end|>`` and ``<|endoftext|>``), and
    the tokenizer's EOS where the config lacks it."""
    listed = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [listed] if isinstance(listed, int) else list(listed or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


@torch.no_grad()
def generate_batch(model, tokenizer, prompts: list[list[int]], max_new_tokens: int, stop: tuple[str, ...], device):
    """Greedy continuations of left-padded prompts, ended by any end id (:func:`end_token_ids`)
    and cut at the first stop string."""
    from transformers import GenerationConfig

    ids, mask = _pad(prompts, tokenizer.pad_token_id, "left")
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False,
                              pad_token_id=tokenizer.pad_token_id, eos_token_id=end_token_ids(model, tokenizer),
                              stop_strings=list(stop) or None)
    output = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                            generation_config=config, tokenizer=tokenizer)
    texts = tokenizer.batch_decode(output[:, ids.shape[1]:], skip_special_tokens=True)
    return [cut_at_stop(text, stop) for text in texts]


def answer_generate(model, tokenizer, spec, requests: list[GenerateRequest], device, progress: bool = True):
    window = model_window(model)
    double_bos = is_chat_format(spec.chat_template)
    prompts, truncated = [], 0
    for request in requests:
        limit = window - request.max_new_tokens if window else None
        ids, cut = fit_prompt(render(request.prompt, tokenizer, spec.chat_template), request.truncatable,
                              lambda text: encode(text, tokenizer, double_bos), limit, request.item_id)
        prompts.append(ids)
        truncated += cut
    (log.warning if truncated else log.info)(
        "%s: %d of %d prompts exceeded the model's window (%s tokens) and had their passage shortened from the left",
        spec.name, truncated, len(requests), window)
    # Requests sharing generation settings are batched together, longest prompts first.
    groups: dict[tuple, list[int]] = defaultdict(list)
    for index, request in enumerate(requests):
        groups[(request.max_new_tokens, request.stop)].append(index)
    columns = {}
    for (max_new_tokens, stop), indices in groups.items():
        indices.sort(key=lambda i: -len(prompts[i]))
        texts = run_batched(indices, spec.batch_size,
                            lambda batch: generate_batch(model, tokenizer, [prompts[i] for i in batch],
                                                         max_new_tokens, stop, device),
                            f"{spec.name} generate", progress)
        for index, text in zip(indices, texts):
            columns.update(generate_answer(requests[index], text))
    n_tokens = sum(map(len, prompts)) + sum(request.max_new_tokens for request in requests)
    return columns, n_tokens


@torch.no_grad()
def reward_batch(model, sequences: list[list[int]], pad_id: int, device) -> list[float]:
    ids, mask = _pad(sequences, pad_id, "right")
    return model(ids.to(device), mask.to(device)).tolist()


def answer_rewards(model, tokenizer, spec, requests: list[RewardRequest], device, progress: bool = True):
    double_bos = is_chat_format(spec.chat_template)
    flat = [(request_index, conversation_index,
             encode(render(conversation, tokenizer, spec.chat_template), tokenizer, double_bos))
            for request_index, request in enumerate(requests)
            for conversation_index, conversation in enumerate(request.conversations)]
    flat.sort(key=lambda entry: -len(entry[2]))
    values = run_batched([entry[2] for entry in flat], spec.batch_size,
                         lambda batch: reward_batch(model, batch, tokenizer.pad_token_id, device),
                         f"{spec.name} reward", progress)
    rewards = [[0.0] * len(request.conversations) for request in requests]
    for (request_index, conversation_index, _), value in zip(flat, values):
        rewards[request_index][conversation_index] = value
    columns: Answers = {}
    for request, values in zip(requests, rewards):
        columns.update(reward_answer(request, values))
    return columns, sum(len(entry[2]) for entry in flat)
