"""The inference stage's shards: what a shard job writes, which shards scoring accepts (a
corrupt or stale one is deleted and named), and which options determine a shard."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from globalrep import config_checks, stages
from globalrep.atomic import write_parquet_atomic
from globalrep.engine.backends import BACKENDS
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec
from globalrep.sharding import shard_items
from globalrep.tasks.base import Task

ITEMS = pd.DataFrame({"item_id": [f"i{k}" for k in range(7)], "group": list("aabbbcc")})


def write_shards(root: Path, model: str, n: int) -> list[Path]:
    paths = []
    for shard in range(n):
        part = shard_items(ITEMS, n, shard)
        path = root / model / f"shard-{shard}-of-{n}.parquet"
        made_by = stages.shard_made_by("global_opinions", model, "", shard, n, part["item_id"])
        write_parquet_atomic(part[["item_id"]].assign(x_logprob=[[-1.0, -2.0]] * len(part)), path, made_by)
        paths.append(path)
    return paths


def test_corrupt_shard_is_deleted_and_named(tmp_path):
    prepared = tmp_path / "prepared.parquet"
    write_parquet_atomic(ITEMS, prepared)
    good = write_shards(tmp_path, "m1", 2)
    other = write_shards(tmp_path, "m2", 2)
    other[1].write_bytes(b"PAR1 this is not parquet")
    outs = [tmp_path / name for name in ("scores.parquet", "table.csv", "deltas.csv")]
    with pytest.raises(GlobalrepError) as caught:
        stages.score_task("global_opinions", {}, prepared, {"m1": good, "m2": other}, {}, *outs)
    message = str(caught.value)
    assert str(other[1]) in message and "Rerun snakemake" in message
    assert not other[1].exists(), "the corrupt shard must be deleted so that Snakemake recomputes it"
    assert all(path.exists() for path in [*good, other[0]])
    assert not any(path.exists() for path in outs)


def test_shard_with_wrong_items_is_deleted(tmp_path):
    paths = write_shards(tmp_path, "m", 3)
    made_by = stages.shard_made_by("global_opinions", "m", "", 0, 3, ["i0", "zzz"])
    write_parquet_atomic(pd.DataFrame({"item_id": ["i0", "zzz"]}), paths[0], made_by)
    with pytest.raises(GlobalrepError, match="made for items"):
        stages.load_predictions("global_opinions", ITEMS, {"m": paths}, {})
    assert not paths[0].exists() and paths[1].exists()


def test_load_predictions_concatenates_models(tmp_path):
    frame = stages.load_predictions(
        "global_opinions", ITEMS, {"a": write_shards(tmp_path, "a", 2), "b": write_shards(tmp_path, "b", 3)}, {}
    )
    assert sorted(frame.groupby("model")["item_id"].count().items()) == [("a", 7), ("b", 7)]


FakeTask = Task.from_module(SimpleNamespace(
    __name__="fake", NAME="fake", PROMPT_VERSION="1", MODEL_KINDS=("lm",), AXIS="opinions",
    SCORE_ONLY_OPTIONS=("focus",), OPTIONS_SCHEMA={}, prepare=lambda options, source: None, score=lambda *args: None,
    requests=lambda items, options, model_kind: list(items["item_id"]),
))  # fmt: skip


def test_infer_shard_writes_one_row_per_item(tmp_path, monkeypatch):
    monkeypatch.setattr(stages, "get_task", lambda name: FakeTask)
    seen = {}

    class FakeBackend:
        def __init__(self, spec, options, progress):
            seen["options"] = options

        def answer(self, requests, shard=None):
            return pd.DataFrame({"item_id": requests, "x_logprob": [[-1.0]] * len(requests)})

        def close(self):
            pass

    monkeypatch.setitem(BACKENDS, "fake", FakeBackend)
    prepared = tmp_path / "prepared.parquet"
    write_parquet_atomic(ITEMS, prepared)
    engine = {"device": "cpu", "threads": 1, "gpus": 0, "mem_mb": 1, "runtime": 1}
    out = tmp_path / "shard-1-of-3.parquet"
    stages.infer_shard("fake", {}, ModelSpec("m", "org/m", backend="fake"), prepared, 3, 1, engine, out)
    written = pd.read_parquet(out)
    assert list(written["item_id"]) == list(shard_items(ITEMS, 3, 1)["item_id"])
    assert seen["options"] == {"device": "cpu"}

    # More shards than items: some shards are empty and still get their (empty) file.
    shard = next(i for i in range(10) if shard_items(ITEMS, 10, i).empty)
    empty = tmp_path / f"shard-{shard}-of-10.parquet"
    stages.infer_shard("fake", {}, ModelSpec("m", "org/m", backend="fake"), prepared, 10, shard, engine, empty)
    assert pd.read_parquet(empty).empty


def test_inference_options_drop_shards_and_scoring_only_options(monkeypatch):
    monkeypatch.setattr(config_checks, "get_task", lambda name: FakeTask)
    assert config_checks.inference_options("fake", {"source": "s", "shards": 4, "focus": ["x"]}) == {"source": "s"}
