"""Running work in length-sorted batches, halving the batch on CUDA out-of-memory."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from tqdm.auto import tqdm

from globalrep.errors import GlobalrepError

log = logging.getLogger(__name__)

Unit = TypeVar("Unit")
Result = TypeVar("Result")


def run_batched(
    units: Sequence[Unit],
    batch_size: int,
    process: Callable[[list[Unit]], list[Result]],
    description: str,
    progress: bool = True,
) -> list[Result]:
    """``process`` each consecutive batch of ``units`` (callers sort them longest first, so an
    out-of-memory error shows up on the first batch); results keep the order of ``units``.
    ``progress``: a tqdm bar."""
    results: list[Result] = []
    start = 0
    quiet = {} if progress else {"disable": True}  # when shown, TQDM_DISABLE still silences it
    with tqdm(total=len(units), desc=description, unit="seq", mininterval=5, **quiet) as bar:
        while start < len(units):
            batch = list(units[start : start + batch_size])
            try:
                results.extend(process(batch))
            except torch.cuda.OutOfMemoryError as error:
                if batch_size == 1:
                    raise GlobalrepError(
                        f"{description}: CUDA out of memory with batch size 1; use a smaller dtype, "
                        "load_in_8bit, or a GPU with more memory"
                    ) from error
                batch_size //= 2
                torch.cuda.empty_cache()
                log.warning("%s: CUDA out of memory, retrying with batch size %d", description, batch_size)
                continue
            start += len(batch)
            bar.update(len(batch))
    return results
