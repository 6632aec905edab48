"""Backends as plugins: a small protocol, a registry keyed by a model entry's ``backend:``, and a
handle that loads a model once and answers many shards.

    with open_backend(spec, {"device": "cpu"}) as backend:
        predictions = backend.answer(requests, Shard(task="md3_taboo", items=items))

A backend is a class built from ``(spec, options, progress)`` that answers typed requests for one
model (``answer`` returns one row per item, see ``globalrep.engine.answers``) and releases what it
loaded in ``close``. Adding one means its module, one entry in ``BACKENDS`` (or ``register`` at
run time), its block in the config schema and its optional dependency.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from globalrep.engine.requests import Request
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec


@dataclass(frozen=True)
class Shard:
    """What a backend may need besides the requests: the task, the shard's items and the task's
    hook that reads its published files (the ``published`` backend calls it for these items)."""

    task: str
    items: pd.DataFrame
    read_published: Callable | None = None


class Backend(Protocol):
    def answer(self, requests: Sequence[Request], shard: Shard | None = None) -> pd.DataFrame:
        """One row per item: ``item_id`` and the columns of the requests' keys."""

    def close(self) -> None:
        """Release the model."""


BackendFactory = Callable[[ModelSpec, Mapping, bool], Backend]

# name -> "module:class", imported on first use so that a backend's dependencies load only
# when a model uses it.
BACKENDS: dict[str, str | BackendFactory] = {
    "hf": "globalrep.engine.hf:HFBackend",
    "published": "globalrep.engine.published:PublishedBackend",
}


def register(name: str, factory: str | BackendFactory) -> None:
    """Make ``backend: name`` build its backends with ``factory`` (a class or "module:class")."""
    BACKENDS[name] = factory


def backend_factory(name: str) -> BackendFactory:
    factory = BACKENDS.get(name)
    if factory is None:
        raise GlobalrepError(f"unknown backend {name!r}; known backends: {', '.join(sorted(BACKENDS))}")
    if isinstance(factory, str):
        module, _, attribute = factory.partition(":")
        factory = getattr(importlib.import_module(module), attribute)
    return factory


@contextmanager
def open_backend(spec: ModelSpec, options: Mapping | None = None, progress: bool = False) -> Iterator[Backend]:
    """The backend of ``spec.backend`` for one model, loaded once, closed on exit. ``options`` is
    ``config['engine']`` (e.g. ``device``, ``max_packed_tokens``; ``threads``, the job's CPU threads);
    ``progress`` shows tqdm bars."""
    backend = backend_factory(spec.backend)(spec, dict(options or {}), progress)
    try:
        yield backend
    finally:
        backend.close()
