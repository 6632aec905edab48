"""Reference implementations the tests check the engine against (bench/loglik.py times one too)."""

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
