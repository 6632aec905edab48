"""Short stable hashes: item ids from an item's content, and the fingerprints that decide what
reruns. At the bottom of the package: it imports nothing of globalrep."""

from __future__ import annotations

import hashlib
import json


def digest(text: str, length: int = 12) -> str:
    """The first ``length`` hex digits of the SHA-1 of ``text``."""
    return hashlib.sha1(text.encode()).hexdigest()[:length]


def content_id(prefix: str, *parts: object, length: int = 12) -> str:
    """A stable item id from the item's content: ``{prefix}-{sha1 of the JSON of parts}``, so the
    same item gets the same id in every file it is read from (prepared items, published outputs)."""
    return f"{prefix}-{digest(json.dumps(list(parts)), length)}"


def fingerprint(*parts: object) -> str:
    """A short stable hash of JSON-serialisable parts (dict keys sorted)."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
