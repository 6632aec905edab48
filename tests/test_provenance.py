"""Every intermediate records what made it, and every reader checks: a shard of another model, a
scores file that lost a row, a table without its record or computed from other scores is named
and deleted (the next run rebuilds it); a valid file is never deleted."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from globalrep import intermediates, provenance, stages
from globalrep.atomic import write_csv_atomic, write_parquet_atomic
from globalrep.errors import GlobalrepError
from globalrep.sharding import shard_items

ITEMS = pd.DataFrame({"item_id": [f"i{k}" for k in range(6)], "group": list("aabbcc")})
TASK = "global_opinions"


def write_shard(path: Path, model: str, fingerprint: str, shard: int = 0, n: int = 1) -> Path:
    part = shard_items(ITEMS, n, shard)
    made_by = stages.shard_made_by(TASK, model, fingerprint, shard, n, part["item_id"])
    write_parquet_atomic(part[["item_id"]].assign(x_logprob=[[-1.5, -0.25]] * len(part)), path, made_by)
    return path


def expected_shard(model: str, fingerprint: str, shard: int = 0, n: int = 1) -> dict:
    return stages.shard_made_by(TASK, model, fingerprint, shard, n, shard_items(ITEMS, n, shard)["item_id"])


def test_a_shard_records_what_made_it_and_reads_back_unchanged(tmp_path):
    path = write_shard(tmp_path / "base.parquet", "base", "fp-base", 1, 2)
    made_by = provenance.parquet_record(pq.read_schema(path))["made_by"]
    assert made_by == expected_shard("base", "fp-base", 1, 2)
    frame = intermediates.read_parquet_output(path, expected_shard("base", "fp-base", 1, 2))
    assert list(frame["item_id"]) == ["i3", "i4", "i5"] and path.exists()


def test_another_models_shard_copied_over_is_named_and_deleted(tmp_path):
    base = tmp_path / "base" / "shard-0-of-1.parquet"
    sft = write_shard(tmp_path / "sft" / "shard-0-of-1.parquet", "sft", "fp-sft")
    base.parent.mkdir()
    base.write_bytes(sft.read_bytes())
    with pytest.raises(GlobalrepError) as caught:
        stages.load_predictions(TASK, ITEMS, {"base": [base], "sft": [sft]}, {"base": "fp-base", "sft": "fp-sft"})
    message = str(caught.value)
    assert f"{base}: made for model 'sft', expected 'base'" in message and "Rerun snakemake" in message
    assert not base.exists() and sft.exists(), "only the wrong shard goes"


@pytest.mark.parametrize(
    ("what", "expected", "message"),
    [
        (
            "another config of the model",
            expected_shard("base", "fp-new"),
            "made for fingerprint 'fp-old', expected 'fp-new'",
        ),
        ("another shard layout", expected_shard("base", "fp-old", 0, 2), "made for n_shards 1, expected 2"),
    ],
)
def test_a_shard_from_another_config_or_layout_is_refused(tmp_path, what, expected, message):
    path = write_shard(tmp_path / "shard.parquet", "base", "fp-old")
    with pytest.raises(GlobalrepError, match=message):
        intermediates.read_parquet_output(path, expected)
    assert not path.exists(), what


def test_a_parquet_file_without_a_record_is_refused(tmp_path):
    path = tmp_path / "shard.parquet"
    ITEMS[["item_id"]].to_parquet(path)  # as another program, or globalrep before records, writes it
    with pytest.raises(GlobalrepError, match=r"shard\.parquet: records nothing about what made it.*It was deleted"):
        intermediates.read_parquet_output(path)
    assert not path.exists()


def test_scores_that_lost_a_row_are_refused_even_with_their_record(tmp_path):
    scores = tmp_path / "scores.parquet"
    rows = pd.DataFrame(
        {"model": "m", "item_id": ITEMS["item_id"], "group": ITEMS["group"], "metric": "x", "value": 0.5}
    )
    write_parquet_atomic(rows, scores, {"kind": "scores", "task": TASK})
    table = pq.read_table(scores)
    pq.write_table(table.slice(1), scores)  # one row dropped, the schema's metadata (the record) kept
    with pytest.raises(GlobalrepError, match=r"scores\.parquet: its rows do not match the digest recorded"):
        stages.extra_table("md3_taboo", {}, scores, {}, "gaps", tmp_path / "gaps.csv")
    assert not scores.exists() and not (tmp_path / "gaps.csv").exists()


def test_a_table_edited_or_without_its_record_is_refused(tmp_path):
    table = tmp_path / "t.csv"
    write_csv_atomic(pd.DataFrame({"model": ["m", "n"], "value": [0.25, 0.5]}), table, {"kind": "table"})
    assert json.loads(provenance.sidecar(table).read_text())["digest"] == provenance.file_digest(table)
    assert len(intermediates.read_table_output(table)) == 2
    table.write_text("model,value\nm,0.25\n")
    with pytest.raises(GlobalrepError, match=r"t\.csv: its bytes do not match the digest in t\.csv\.provenance\.json"):
        intermediates.read_table_output(table)
    assert not table.exists() and not provenance.sidecar(table).exists()
    pd.DataFrame({"model": ["m"]}).to_csv(table, index=False)
    with pytest.raises(GlobalrepError, match=r"t\.csv: records nothing about what made it"):
        intermediates.read_table_output(table)


def test_a_table_computed_from_other_scores_is_stale(tmp_path):
    scores, table = tmp_path / "scores.parquet", tmp_path / "t.csv"
    write_parquet_atomic(pd.DataFrame({"value": [1.0, 2.0]}), scores)
    write_csv_atomic(pd.DataFrame({"mean": [1.5]}), table, inputs=[scores])
    intermediates.read_table_output(table)
    write_parquet_atomic(pd.DataFrame({"value": [1.0]}), scores)  # the scores changed since
    with pytest.raises(GlobalrepError, match=rf"t\.csv: computed from another version of {scores}"):
        intermediates.read_table_output(table)
    assert scores.exists() and not table.exists()


def test_rewriting_the_same_rows_keeps_the_digest(tmp_path):
    # Values read back from Parquet digest as written: a rebuilt, unchanged input is not "another
    # version", so tables computed from it stay valid.
    frame = pd.DataFrame(
        {"item_id": ["a", "b"], "value": [0.1 + 0.2, float("nan")], "n": [1, 2], "lp": [[-1.0], [-2.5, 0.0]]}
    )
    first, second = tmp_path / "1.parquet", tmp_path / "2.parquet"
    write_parquet_atomic(frame, first)
    write_parquet_atomic(intermediates.load_parquet(first), second)
    assert provenance.recorded_digest(first) == provenance.recorded_digest(second)
