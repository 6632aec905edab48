"""What made each intermediate, recorded in it when it is written and checked by every reader.

Every Parquet output carries, in its key-value metadata under ``globalrep``, a JSON record: the
digest of its rows, what made it (``made_by``: for a prediction shard the model's inference
fingerprint, task, prompt and engine versions, shard index and count, and the digest of its
item ids) and the digests of the inputs it was computed from (``inputs``: ``{path: digest}``).
A CSV table keeps the CSV format of DESIGN.md; its record is the sidecar
``{table}.provenance.json``, written before the table is renamed into place, and its digest is
that of the table's bytes.

A reader accepts a file only when the record is there, its digest matches the content, what made
it is what the reader expects, and each recorded input that is still there has the recorded
digest. Anything else raises :class:`ProvenanceError`; :mod:`globalrep.intermediates` treats that
as a damaged file (named, deleted, rebuilt by the next run).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from globalrep.errors import GlobalrepError

KEY = b"globalrep"
SIDECAR_SUFFIX = ".provenance.json"


class ProvenanceError(GlobalrepError):
    """An intermediate that cannot say what made it, or says it was made from something else."""


def sidecar(path: str | os.PathLike) -> Path:
    """The provenance record of a CSV table: ``{table}.provenance.json`` beside it."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def items_digest(item_ids: Iterable) -> str:
    """Digest of item ids in order (a shard's items, in shard order)."""
    return _sha256("\n".join(map(str, item_ids)).encode("utf-8"))


def table_digest(table) -> str:
    """Digest of an Arrow table's column names and values (exact: floats as their shortest
    round-trip repr), the same for a table and the one read back from its Parquet file."""
    digest = hashlib.sha256()
    for name, column in zip(table.column_names, table.columns):
        digest.update(json.dumps([name, column.to_pylist()], default=str, allow_nan=True).encode("utf-8"))
    return digest.hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    return _sha256(Path(path).read_bytes())


def record(digest: str, made_by: Mapping | None = None, inputs: Mapping | None = None) -> dict:
    return {"digest": digest, "made_by": dict(made_by or {}), "inputs": dict(inputs or {})}


def input_digests(paths: Iterable[str | os.PathLike]) -> dict[str, str]:
    """``{path: recorded digest}`` of inputs that have a record (to put in an output's record)."""
    found = {}
    for path in paths:
        digest = recorded_digest(path)
        if digest is not None:
            found[str(path)] = digest
    return found


def recorded_digest(path: str | os.PathLike) -> str | None:
    """The digest a file's record holds (Parquet metadata or CSV sidecar), None without one."""
    found = _read_record(path)
    return found.get("digest") if found else None


def parquet_record(schema) -> dict | None:
    raw = (schema.metadata or {}).get(KEY)
    return json.loads(raw) if raw else None


def with_record(table, made_by: Mapping | None = None, inputs: Mapping | None = None):
    """``table`` with its record in its schema metadata."""
    entry = record(table_digest(table), made_by, inputs)
    return table.replace_schema_metadata({**(table.schema.metadata or {}), KEY: json.dumps(entry, sort_keys=True)})


def check_parquet(path: str | os.PathLike, table, expected: Mapping | None = None) -> None:
    """Raise :class:`ProvenanceError` unless ``table`` (read from ``path``) is what its record says
    and what the reader ``expected`` (``made_by`` entries)."""
    found = parquet_record(table.schema)
    if found is None:
        raise _unrecorded(path)
    if found.get("digest") != table_digest(table):
        raise ProvenanceError(f"{path}: its rows do not match the digest recorded when it was written (edited after)")
    _check(path, found, expected)


def check_csv(path: str | os.PathLike, expected: Mapping | None = None) -> None:
    """As :func:`check_parquet`, for a CSV table and its sidecar."""
    found = _read_record(path)
    if found is None:
        raise _unrecorded(path)
    if found.get("digest") != file_digest(path):
        raise ProvenanceError(f"{path}: its bytes do not match the digest in {sidecar(path).name} (edited after)")
    _check(path, found, expected)


def _check(path, found: Mapping, expected: Mapping | None) -> None:
    made_by = found.get("made_by", {})
    for key, want in (expected or {}).items():
        if made_by.get(key) != want:
            raise ProvenanceError(
                f"{path}: made for {key} {made_by.get(key)!r}, expected {want!r} (a file from another run or config)"
            )
    for source, digest in found.get("inputs", {}).items():
        current = recorded_digest(source) if Path(source).exists() else None
        if current is not None and current != digest:
            raise ProvenanceError(f"{path}: computed from another version of {source} than the one there now")


def _unrecorded(path) -> ProvenanceError:
    return ProvenanceError(
        f"{path}: records nothing about what made it (written by another program or an older globalrep)"
    )


def _read_record(path: str | os.PathLike) -> dict | None:
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return parquet_record(pq.read_schema(path))
        return json.loads(sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no record, or not one we can read: none
        return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
