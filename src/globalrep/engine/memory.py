"""What the log-likelihood engine's packed rows cost in memory, so that a knob too large for a
job is refused before the job starts (``config_checks.check_memory_knobs``), not by the kernel.

One forward holds up to ``batch_size`` packed rows of up to ``engine.max_packed_tokens`` tokens;
each row's 4D attention mask has row² entries in the model's dtype, built in the job's own memory
before it moves to the device (docs/architecture.md, "What max_packed_tokens costs"). Imports no
torch.
"""

from __future__ import annotations

import math

# Tokens of one tree-packed log-likelihood row where engine.max_packed_tokens is unset: its 4D
# mask is 8 MiB in bf16 (128 MiB at 8192); 2048 fits a 24 GB GPU with a 7B model in bf16.
DEFAULT_MAX_PACKED_TOKENS = 2048

# Bytes of one mask entry per dtype; ``auto`` is float32 on CPU and the checkpoint's on a GPU
# (at least 2 bytes: the bound stays one that no run can beat).
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def entry_bytes(dtype: str, on_gpu: bool) -> int:
    return DTYPE_BYTES.get(dtype, 2 if on_gpu else 4)


def packed_masks_bytes(max_packed_tokens: int, batch_size: int, dtype_bytes: int) -> int:
    """Bytes of the attention masks of one forward: ``batch_size`` rows × row² entries."""
    return batch_size * max_packed_tokens**2 * dtype_bytes


def largest_row(mem_bytes: float, batch_size: int, dtype_bytes: int) -> int:
    """The longest row whose forward's masks fit in ``mem_bytes``."""
    return math.isqrt(int(mem_bytes // (batch_size * dtype_bytes)))
