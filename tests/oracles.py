"""Reference implementations the tests check the engine against (bench/loglik.py and bench/generate.py time them too)."""

from __future__ import annotations

import torch

from globalrep.engine.loglik import TokenizedRequest


@torch.no_grad()
def loglik_one_forward_per_continuation(model, request: TokenizedRequest, device: torch.device) -> list[float]:
    """The reference for the packed log-likelihood engine (and the paper's method): one unbatched
    forward per continuation; per continuation, the summed log-probability of its tokens."""
    sums = []
    for continuation in request.continuations:
        ids = list(request.context[: continuation.prefix_len]) + list(continuation.tokens)
        logits = model(input_ids=torch.tensor([ids], device=device)).logits[0]
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        start = continuation.prefix_len
        picked = log_probs[torch.arange(start - 1, len(ids) - 1), torch.tensor(ids[start:], device=device)]
        sums.append(picked.double().sum().item())
    return sums


@torch.no_grad()
def greedy_one_prompt_at_a_time(model, tokenizer, prompt: list[int], max_new_tokens: int, stop=()) -> list[int]:
    """The reference for the engine's batched generation (and the paper's method): transformers'
    ``generate`` on one prompt, greedy, ending at the model's end ids or a stop string; the new ids."""
    from transformers import GenerationConfig

    from globalrep.engine.loading import end_token_ids

    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=end_token_ids(tokenizer, model.generation_config),
        stop_strings=list(stop) or None,
    )
    output = model.generate(torch.tensor([prompt], device=model.device), generation_config=config, tokenizer=tokenizer)
    return output[0, len(prompt) :].tolist()
