"""The backend-agnostic half of answering requests with a model, done once for every backend.

A backend that runs a model implements only :class:`ModelPrimitives`; :class:`ModelRunner`
dispatches requests by kind, applies the model-kind rules, renders and tokenizes prompts (the BOS
and boundary rules of ``globalrep.engine.prompts`` and ``globalrep.engine.loglik``), scores each
distinct continuation once, fits contexts and prompts into the model's window, groups generation
requests by their settings, cuts generations at their stop strings and assembles the answers
with ``prediction_frame``. So two backends given the same requests feed their models the same
token ids.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import pandas as pd
from jinja2.exceptions import SecurityError

from globalrep.engine.answers import (
    Answers,
    generate_answer,
    loglik_answer,
    missing_answer,
    prediction_frame,
    reward_answer,
)
from globalrep.engine.loglik import TokenizedRequest, fit_window, tokenize_request
from globalrep.engine.prompts import encode, encode_many, is_chat_format, render, render_context
from globalrep.engine.requests import GenerateRequest, LoglikRequest, Request, RewardRequest, check_unique_keys
from globalrep.engine.truncation import cut_from_left, fit_prompt
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec

log = logging.getLogger(__name__)


class ModelPrimitives(Protocol):
    """What a backend that runs a model implements. Loading may wait until first use."""

    @property
    def tokenizer(self):
        """A transformers tokenizer of the model (chat template, BOS, ``__call__``, ``decode``)."""

    @property
    def window(self) -> int | None:
        """The longest sequence the model takes (tokens); None when it declares none."""

    def loglik(self, requests: Sequence[TokenizedRequest]) -> list[list[float]]:
        """Per request, the summed log-probability (natural log) of each continuation's tokens
        after the context prefix it shares (``Continuation.prefix_len``)."""

    def generate(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: int, stop: tuple[str, ...]
    ) -> list[str | None]:
        """Greedy continuation of each prompt, decoded without special tokens: at most
        ``max_new_tokens``, ending at the model's end tokens or once a stop string appears (the
        runner cuts the text at it). Prompts come longest first. None for a prompt whose scores
        were not finite (NaN or inf: a broken model), where the backend can tell."""

    def reward(self, sequences: Sequence[Sequence[int]]) -> list[float]:
        """The scalar reward of each sequence (reward models only). Sequences come longest first."""

    def close(self) -> None:
        """Release the model."""


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text before the earliest stop string."""
    cut = min((index for s in stop if (index := text.find(s)) >= 0), default=len(text))
    return text[:cut]


# What sizes the memory of each kind of request, and so what to lower when it runs out.
MEMORY_KNOBS = {
    "loglik": "engine.max_packed_tokens (the tokens of one packed row) or models.{name}.batch_size",
    "reward": "models.{name}.batch_size",
    "generate": "models.{name}.batch_size or the task's max_new_tokens",
}

# Why an answer is missing, by request kind: a score that is NaN or infinite.
NON_FINITE = {
    "loglik": "non-finite log-likelihood (NaN or inf)",
    "reward": "non-finite reward (NaN or inf)",
    "generate": "non-finite generation scores (NaN or inf)",
}


def finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(value) for value in values)


class ModelRunner:
    """Answers typed requests for one model with a backend's :class:`ModelPrimitives`."""

    def __init__(self, spec: ModelSpec, model: ModelPrimitives, progress: bool = False):
        self.spec, self.model, self.progress = spec, model, progress
        self.double_bos = is_chat_format(spec.chat_template)

    def answer(self, requests: Sequence[Request], shard=None) -> pd.DataFrame:
        spec = self.spec
        check_unique_keys(requests)
        by_type: dict[type, list] = defaultdict(list)
        for request in requests:
            by_type[type(request)].append(request)
        if spec.kind == "reward" and set(by_type) - {RewardRequest}:
            raise GlobalrepError(f"model {spec.name!r} is a reward model; it can only answer reward requests")
        if spec.kind != "reward" and RewardRequest in by_type:
            raise GlobalrepError(f"model {spec.name!r} has kind {spec.kind!r}; reward requests need kind: reward")
        answers: Answers = {}
        missing: dict[str, str] = {}  # item -> why its answer is missing
        for kind, name, run in ((RewardRequest, "reward", self._rewards), (LoglikRequest, "loglik", self._loglik),
                                (GenerateRequest, "generate", self._generate)):  # fmt: skip
            if by_type[kind]:
                started = time.perf_counter()
                with self._refusals(name):
                    columns, n_tokens, broken = run(by_type[kind])
                elapsed = max(time.perf_counter() - started, 1e-9)
                answers.update(columns)
                for item_id in broken:
                    missing[item_id] = "; ".join(filter(None, [missing.get(item_id), NON_FINITE[name]]))
                log.info("%s %s: %d requests in %.1f s (%.1f items/s, %.0f tokens/s)", spec.name, name,
                         len(by_type[kind]), elapsed, len(by_type[kind]) / elapsed, n_tokens / elapsed)  # fmt: skip
        item_ids = [request.item_id for request in requests]
        if missing:
            log.warning(
                "%s: %d of %d items have a missing answer: %s (e.g. item %s). The model's outputs are not finite "
                "(NaN or inf weights, or a half-precision overflow: try dtype float32 or bfloat16); scoring counts "
                "these answers as missing and refuses the model for a task where all are",
                spec.name, len(missing), len(set(item_ids)), "; ".join(sorted(set(missing.values()))), next(iter(missing)),
            )  # fmt: skip
        answers.update(missing_answer(item_ids, missing))
        return prediction_frame(answers)

    def close(self) -> None:
        self.model.close()

    @contextmanager
    def _refusals(self, kind: str) -> Iterator[None]:
        """What the model or its files refuse, as one named line: a chat template that Jinja's
        sandbox stops, memory that cannot be allocated (naming the knob that sizes it)."""
        name = self.spec.name
        try:
            yield
        except SecurityError as error:
            chat_template = self.spec.chat_template
            where = chat_template if is_chat_format(chat_template) else "the tokenizer's own, from " + self.spec.path
            raise GlobalrepError(
                f"model {name!r}: its chat template ({where}) was refused by Jinja's sandbox ({error}); nothing it "
                f"asked for ran. Use a template you trust (config key 'models.{name}.chat_template')"
            ) from None
        except (MemoryError, RuntimeError) as error:  # torch's OutOfMemoryError is a RuntimeError
            if not isinstance(error, MemoryError) and "alloc" not in str(error) and "out of memory" not in str(error):
                raise
            raise GlobalrepError(
                f"model {name!r}: out of memory answering {kind} requests ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:200]}); lower {MEMORY_KNOBS[kind].format(name=name)}, or give the "
                "job more memory (engine.mem_mb or the model's mem_mb; see docs/troubleshooting.md)"
            ) from None

    def _count_cuts(self, cut: int, total: int, what: str, how: str) -> None:
        """Counts in the job's log the sequences that exceeded the window; a warning when any did."""
        (log.warning if cut else log.info)(
            "%s: %d of %d %s exceeded the model's window (%s tokens) and %s",
            self.spec.name, cut, total, what, self.model.window, how,
        )  # fmt: skip

    def _encode_many(self, texts: list[str]) -> list[list[int]]:
        return encode_many(texts, self.model.tokenizer, self.double_bos)

    def _encode(self, text: str) -> list[int]:
        return encode(text, self.model.tokenizer, self.double_bos)

    def tokenize_loglik(
        self, requests: Sequence[LoglikRequest]
    ) -> tuple[list[tuple[str, ...]], list[TokenizedRequest]]:
        """Per request its distinct continuations and their token ids, fitted into the window:
        exactly what the backend's ``loglik`` is fed. A context too long for the window is
        shortened from the left (see :func:`fit_window`) and counted in the log."""
        tokenizer, window = self.model.tokenizer, self.model.window
        distinct = [tuple(dict.fromkeys(request.continuations)) for request in requests]
        tokenized, shortened = [], 0
        for request, continuations in zip(requests, distinct):
            tokens = tokenize_request(self._encode_many, render_context(request.context, tokenizer, self.spec.chat_template),
                                      continuations)  # fmt: skip
            try:
                tokens, cut = fit_window(tokens, window, keep_first=tokens.context[:1] == (tokenizer.bos_token_id,))
            except GlobalrepError as error:
                raise GlobalrepError(f"item {request.item_id}, {request.key}: {error}") from None
            tokenized.append(tokens)
            shortened += cut > 0
        self._count_cuts(shortened, len(requests), "log-likelihood contexts", "were shortened from the left")
        return distinct, tokenized

    def _loglik(self, requests: list[LoglikRequest]) -> tuple[Answers, int, set[str]]:
        """A continuation repeated within a request is scored once and shares its result, so
        repeats tie exactly. Also the items with a non-finite log-likelihood."""
        distinct, tokenized = self.tokenize_loglik(requests)
        sums = self.model.loglik(tokenized)
        columns: Answers = {}
        broken = {request.item_id for request, values in zip(requests, sums) if not finite(values)}
        for request, continuations, tokens, values in zip(requests, distinct, tokenized, sums):
            position = [continuations.index(text) for text in request.continuations]
            columns.update(
                loglik_answer(
                    request, [values[i] for i in position], [len(tokens.continuations[i].tokens) for i in position]
                )
            )
        n_tokens = sum(len(t.context) + sum(len(c.tokens) for c in t.continuations) for t in tokenized)
        return columns, n_tokens, broken

    def generation_prompts(self, requests: Sequence[GenerateRequest]) -> list[list[int]]:
        """The token ids of each request's prompt, its passage shortened from the left where
        prompt and new tokens exceed the window (counted in the log)."""
        tokenizer, window = self.model.tokenizer, self.model.window
        prompts, truncated = [], 0
        for request in requests:
            limit = window - request.max_new_tokens if window else None
            ids, cut = fit_prompt(render(request.prompt, tokenizer, self.spec.chat_template), request.truncatable,
                                  self._encode, limit, request.item_id)  # fmt: skip
            prompts.append(ids)
            truncated += cut
        self._count_cuts(truncated, len(requests), "prompts", "had their passage shortened from the left")
        return prompts

    def _generate(self, requests: list[GenerateRequest]) -> tuple[Answers, int, set[str]]:
        prompts = self.generation_prompts(requests)
        # Requests sharing generation settings are generated together, longest prompts first.
        groups: dict[tuple, list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            groups[(request.max_new_tokens, request.stop)].append(index)
        columns: Answers = {}
        broken = set()
        for (max_new_tokens, stop), indices in groups.items():
            indices.sort(key=lambda i: -len(prompts[i]))
            texts = self.model.generate([prompts[i] for i in indices], max_new_tokens, stop)
            for index, text in zip(indices, texts):
                if text is None:  # the model's scores were not finite: no answer, an empty text
                    broken.add(requests[index].item_id)
                columns.update(generate_answer(requests[index], cut_at_stop(text or "", stop)))
        n_tokens = sum(map(len, prompts)) + sum(request.max_new_tokens for request in requests)
        return columns, n_tokens, broken

    def reward_sequences(self, requests: Sequence[RewardRequest]) -> list[tuple[int, int, list[int]]]:
        """Per conversation (request index, conversation index, token ids): what the backend's
        ``reward`` is fed. A conversation longer than the window loses tokens from the left,
        keeping BOS and so the reply at its end (counted in the log), as contexts do."""
        tokenizer, window = self.model.tokenizer, self.model.window
        flat, shortened = [], 0
        for request_index, request in enumerate(requests):
            for conversation_index, conversation in enumerate(request.conversations):
                ids = self._encode(render(conversation, tokenizer, self.spec.chat_template))
                ids, cut = cut_from_left(ids, window, keep_first=ids[:1] == [tokenizer.bos_token_id])
                flat.append((request_index, conversation_index, ids))
                shortened += cut > 0
        self._count_cuts(shortened, len(flat), "reward conversations", "were shortened from the left")
        return flat

    def _rewards(self, requests: list[RewardRequest]) -> tuple[Answers, int, set[str]]:
        flat = sorted(self.reward_sequences(requests), key=lambda entry: -len(entry[2]))
        values = self.model.reward([entry[2] for entry in flat])
        rewards = [[0.0] * len(request.conversations) for request in requests]
        for (request_index, conversation_index, _), value in zip(flat, values):
            rewards[request_index][conversation_index] = value
        columns: Answers = {}
        for request, values in zip(requests, rewards):
            columns.update(reward_answer(request, values))
        broken = {request.item_id for request, values in zip(requests, rewards) if not finite(values)}
        return columns, sum(len(entry[2]) for entry in flat), broken
