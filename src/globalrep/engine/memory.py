"""What the log-likelihood engine's packed rows cost in memory, so that a knob too large for a
job is refused before the job starts (``config_checks.check_memory_knobs``), not by the kernel.

One forward holds up to ``batch_size`` packed rows of up to ``engine.max_packed_tokens`` tokens
(up to 1/``OVERFLOW_SHARE`` more for a row that keeps one subtree whole); each row's 4D attention
mask has row² entries in the model's dtype, built in the job's own memory before it moves to the
device (docs/architecture.md, "What max_packed_tokens costs"). Imports no
torch.
"""

from __future__ import annotations

import math

# Tokens of one tree-packed log-likelihood row where engine.max_packed_tokens is unset: its 4D
# mask is 10 MiB in bf16 at 2304 (2048 plus the overflow; 128 MiB at 8192); 2048 fits a 24 GB GPU
# with a 7B model in bf16.
DEFAULT_MAX_PACKED_TOKENS = 2048

# Bytes of one mask entry per dtype; ``auto`` is float32 on CPU and the checkpoint's on a GPU
# (at least 2 bytes: the bound stays one that no run can beat).
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


# A subtree that a fresh row of the budget cannot hold may still take one row alone, up to this
# share of the budget over it (1/8: 256 tokens at 2048), rather than be split: a split row repeats
# the subtree's ancestors, which for a context as long as the window means the whole context once
# per continuation (issue 29: 3.99x the trie's tokens), where overflowing adds a few tokens.
OVERFLOW_SHARE = 8


def longest_row(max_packed_tokens: int) -> int:
    """The most tokens a packed row may hold under the budget ``max_packed_tokens``."""
    return max_packed_tokens + max_packed_tokens // OVERFLOW_SHARE


def entry_bytes(dtype: str, on_gpu: bool) -> int:
    return DTYPE_BYTES.get(dtype, 2 if on_gpu else 4)


def packed_masks_bytes(max_packed_tokens: int, batch_size: int, dtype_bytes: int) -> int:
    """Bytes of the attention masks of one forward: ``batch_size`` rows × row² entries, a row being
    as long as the budget allows (:func:`longest_row`)."""
    return batch_size * longest_row(max_packed_tokens) ** 2 * dtype_bytes


def largest_budget(mem_bytes: float, batch_size: int, dtype_bytes: int) -> int:
    """The largest ``max_packed_tokens`` whose forward's masks fit in ``mem_bytes``."""
    row = math.isqrt(int(mem_bytes // (batch_size * dtype_bytes)))
    budget = row * OVERFLOW_SHARE // (OVERFLOW_SHARE + 1)
    while longest_row(budget + 1) <= row:
        budget += 1
    return budget
