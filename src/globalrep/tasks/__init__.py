"""Task registry: every task module, read once into a :class:`~globalrep.tasks.base.Task`.

What a task module provides (required and optional hooks) is documented in
:mod:`globalrep.tasks.base`. Adding a task: write its module (and its options block,
``{task}.schema.yaml``, beside it) and add the module to ``MODULES`` below.
"""

from __future__ import annotations

from globalrep.errors import GlobalrepError
from globalrep.tasks import (
    askreddit,
    belebele,
    global_opinions,
    md3_taboo,
    md3_taboo_transfer,
    rm_dialect_probe,
    sft_langid,
    tydiqa_goldp,
    where_from,
)
from globalrep.tasks.base import Task

MODULES = (global_opinions, md3_taboo, where_from, askreddit, belebele, tydiqa_goldp, sft_langid,
           md3_taboo_transfer, rm_dialect_probe)  # fmt: skip
TASKS: dict[str, Task] = {module.NAME: Task.from_module(module) for module in MODULES}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise GlobalrepError(
            f"unknown task {name!r} under config key 'tasks'; known tasks: {', '.join(sorted(TASKS))}"
        ) from None
