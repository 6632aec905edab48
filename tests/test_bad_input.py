"""Bad source files and damaged intermediate files: a GlobalrepError naming the file and the line
or row, never a parser's traceback; our own damaged outputs are deleted so that a rerun rebuilds
them; job logs show a GlobalrepError once, without a traceback."""

from __future__ import annotations

import codecs
import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from globalrep import intermediates, provenance, sources, stages
from globalrep.atomic import write_csv_atomic, write_parquet_atomic
from globalrep.errors import GlobalrepError
from globalrep.tasks import belebele, global_opinions, tydiqa_goldp

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
SRC = Path(__file__).resolve().parents[1] / "src"


# ------------------------------------------------------------------------------ source files


def test_belebele_line_that_is_not_json_is_named(tmp_path):
    lines = (DEMO / "belebele.jsonl").read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "belebele.jsonl"
    bad.write_text("\n".join([lines[0], lines[1], "{not json", *lines[2:]]) + "\n", encoding="utf-8")
    with pytest.raises(GlobalrepError, match=r"belebele\.jsonl, line 3: not JSON"):
        belebele.prepare({}, str(bad))


def test_a_byte_order_mark_is_accepted_in_every_text_format(tmp_path):
    for name in ("belebele.jsonl", "tydiqa_goldp_dev.json", "global_opinions.csv"):
        (tmp_path / name).write_bytes(codecs.BOM_UTF8 + (DEMO / name).read_bytes())
    assert belebele.prepare({}, str(tmp_path / "belebele.jsonl")).equals(
        belebele.prepare({}, str(DEMO / "belebele.jsonl"))
    )
    assert global_opinions.prepare({}, str(tmp_path / "global_opinions.csv")).equals(
        global_opinions.prepare({}, str(DEMO / "global_opinions.csv"))
    )
    rows = tydiqa_goldp._squad_rows(tmp_path / "tydiqa_goldp_dev.json")
    assert rows == tydiqa_goldp._squad_rows(DEMO / "tydiqa_goldp_dev.json") and rows


def test_a_json_table_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "items.json"
    path.write_bytes(codecs.BOM_UTF8 + json.dumps([{"a": "x", "b": 1}, {"a": "y", "b": 2}]).encode())
    assert sources.read_records(str(path), "", "items", "org/name").to_dict("list") == {"a": ["x", "y"], "b": [1, 2]}


def test_an_empty_csv_is_named(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(GlobalrepError, match=r"empty\.csv: the file is empty"):
        global_opinions.prepare({}, str(tmp_path / "empty.csv"))


def test_a_csv_row_with_extra_fields_names_its_line(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("a,b,c,d,e\n1,2,3,4,5\n1,2,3,4,5\n1,2,3,4,5,6,7\n")
    with pytest.raises(GlobalrepError, match=r"wide\.csv: not valid CSV \(.*line 4, saw 7"):
        sources.read_records(str(path), "", "items", "org/name")


def test_a_json_file_that_is_not_json_names_its_line(tmp_path):
    path = tmp_path / "items.json"
    path.write_text('[\n{"a": 1},\n{"a": 2,,}\n]')
    with pytest.raises(GlobalrepError, match=r"items\.json, line 3: not JSON"):
        sources.read_records(str(path), "", "items", "org/name")
    (tmp_path / "dev.json").write_text('{"data": [\n}')
    with pytest.raises(GlobalrepError, match=r"dev\.json, line 2: not JSON"):
        tydiqa_goldp._squad_rows(tmp_path / "dev.json")


def test_a_nul_character_is_named_by_line_and_column(tmp_path):
    (tmp_path / "nul.csv").write_bytes(b"question,options\nWhy?,\"['a', 'b']\"\nWh\x00y?,\"['a']\"\n")
    with pytest.raises(
        GlobalrepError, match=r"nul\.csv, line 3, column 3: a NUL character; the file is binary or damaged"
    ):
        global_opinions.prepare({}, str(tmp_path / "nul.csv"))
    (tmp_path / "nul.jsonl").write_bytes(b'{"a": 1}\n\x00{"a": 2}\n')
    with pytest.raises(GlobalrepError, match=r"nul\.jsonl, line 2, column 1: a NUL character"):
        sources.read_records(str(tmp_path / "nul.jsonl"), "", "items", "org/name")


def test_a_column_name_given_twice_is_named(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("question,options,selections,options\nWhy?,\"['a']\",x,\"['b']\"\n")
    with pytest.raises(
        GlobalrepError,
        match=r"twice\.csv, line 1: column 4 is named 'options' like column 2; give each column its own name",
    ):
        global_opinions.prepare({}, str(path))


def test_text_that_is_not_utf8_is_named(tmp_path):
    (tmp_path / "latin.csv").write_bytes("a,b\ncafé,1\n".encode("latin-1"))
    with pytest.raises(GlobalrepError, match=r"latin\.csv: not UTF-8 text"):
        sources.read_records(str(tmp_path / "latin.csv"), "", "items", "org/name")


def test_tydiqa_question_without_answers_is_named_by_its_id(tmp_path):
    data = json.loads((DEMO / "tydiqa_goldp_dev.json").read_text(encoding="utf-8"))
    qa = data["data"][0]["paragraphs"][0]["qas"][0]
    del qa["answers"]
    (tmp_path / "dev.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(
        GlobalrepError, match=rf"dev\.json: not SQuAD-1.1 JSON: question {qa['id']} has no 'answers' field"
    ):
        tydiqa_goldp._squad_rows(tmp_path / "dev.json")


# ------------------------------------------------------------------------------ our own outputs


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_prepared_file_is_deleted_named_and_leaves_the_shards_alone(tmp_path):
    prepared, shard = tmp_path / "prepared.parquet", tmp_path / "m" / "0-of-1.parquet"
    write_parquet_atomic(pd.DataFrame({"item_id": ["a", "b"], "group": ["x", "y"]}), prepared)
    write_parquet_atomic(
        pd.DataFrame({"item_id": ["a", "b"]}), shard, stages.shard_made_by("global_opinions", "m", "", 0, 1, ["a", "b"])
    )
    truncate(prepared)
    outs = [tmp_path / name for name in ("scores.parquet", "table.csv", "deltas.csv")]
    with pytest.raises(GlobalrepError) as caught:
        stages.score_task("global_opinions", {}, prepared, {"m": [shard]}, {}, *outs)
    message = str(caught.value)
    assert str(prepared) in message and "run snakemake again" in message and "Traceback" not in message
    assert not prepared.exists() and shard.exists(), "only the bad input goes"
    assert not any(path.exists() for path in outs)


def test_a_truncated_table_is_named_even_when_it_still_parses(tmp_path):
    table = tmp_path / "table.csv"
    write_csv_atomic(pd.DataFrame({"model": ["m"] * 20, "value": [0.123456789] * 20}), table)
    data = table.read_bytes()
    table.write_bytes(data[: data.rindex(b"\n") - 3])  # cut inside the last row
    assert len(pd.read_csv(table)) == 20, "pandas alone reads the cut file without a word"
    with pytest.raises(GlobalrepError, match=r"table\.csv: cannot be read .*cut short.*It was deleted"):
        intermediates.read_table_output(table)
    assert not table.exists()


def test_an_unclosed_quote_in_a_table_is_named(tmp_path):
    table = tmp_path / "deltas.csv"
    table.write_text('chain,group\nc,"open\n')
    with pytest.raises(GlobalrepError, match=r"deltas\.csv: cannot be read \(ParserError"):
        intermediates.read_table_output(table)


def test_jobs_that_find_the_same_damaged_input_all_fail_cleanly(tmp_path, monkeypatch):
    # Two jobs read one damaged file (seen in a run: two extra tables, one truncated scores file);
    # the other job deletes it between this one's check that it is there and its own deletion.
    scores = tmp_path / "scores.parquet"

    def damaged(path, expected=None):
        raise GlobalrepError(f"{path}: cannot be read (ArrowInvalid: Parquet magic bytes not found)")

    monkeypatch.setattr(Path, "exists", lambda self: True)  # seen before the other job deleted it
    with pytest.raises(GlobalrepError, match=r"scores\.parquet: cannot be read .*It was deleted"):
        intermediates.read_output(scores, damaged)


def test_a_missing_input_is_not_called_deleted(tmp_path):
    with pytest.raises(GlobalrepError, match=r"gone\.parquet: missing: run snakemake again") as caught:
        intermediates.read_parquet_output(tmp_path / "gone.parquet")
    assert "deleted" not in str(caught.value)


# ------------------------------------------------------------------------------ job logs


def run_job(tmp_path: Path, raise_line: str) -> tuple[subprocess.CompletedProcess, str]:
    log = tmp_path / "job.log"
    code = f"from globalrep.logs import setup_logging\nfrom globalrep.errors import GlobalrepError\nsetup_logging({str(log)!r})\n{raise_line}\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)})
    return done, log.read_text()


def test_a_globalrep_error_is_printed_once_with_the_log_path_and_no_traceback(tmp_path):
    done, log = run_job(tmp_path, "raise GlobalrepError('data.csv, line 4: broken')")
    assert done.returncode == 1
    assert done.stderr.count("data.csv, line 4: broken") == 1 and "Traceback" not in done.stderr
    assert f"(log: {tmp_path / 'job.log'})" in done.stderr
    assert log.count("data.csv, line 4: broken") == 1 and "Traceback" not in log


def test_a_bug_keeps_its_traceback_once(tmp_path):
    done, log = run_job(tmp_path, "raise KeyError('oops')")
    assert done.returncode == 1
    assert done.stderr.count("Traceback") == 1 and "uncaught error" in done.stderr and "KeyError: 'oops'" in done.stderr
    assert log.count("Traceback") == 1


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    # SIGKILL skips the cleanup of an atomic write; the next write of that output removes its
    # leftover temporaries (files and folders), never another output's.
    table = tmp_path / "md3_taboo.csv"
    leftover_file = tmp_path / ".md3_taboo.csv.4242.0123abcd.tmp"
    leftover_folder = tmp_path / ".md3_taboo.csv.77.deadbeef.tmp"
    others = [tmp_path / ".md3_taboo.csv.x.4242.0123abcd.tmp", tmp_path / ".md3_taboo_deltas.csv.1.0123abcd.tmp"]
    for path in [leftover_file, *others]:
        path.write_text("partial")
    leftover_folder.mkdir()
    (leftover_folder / "figure.png").write_text("partial")
    write_csv_atomic(pd.DataFrame({"model": ["m"]}), table)
    assert sorted(tmp_path.iterdir()) == sorted([table, provenance.sidecar(table), *others])


# ------------------------------------------------------------------------------ the machine


def test_a_full_disk_names_the_output_in_one_line(tmp_path, monkeypatch):
    def no_space(self, path, **kwargs):
        Path(path).write_text("model,value\n")  # part of the table, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", no_space)
    table = tmp_path / "table.csv"
    with pytest.raises(
        GlobalrepError, match=rf"^{re.escape(str(table))}: No space left on device \(ENOSPC\); free disk space"
    ):
        write_csv_atomic(pd.DataFrame({"model": ["m"]}), table)
    assert list(tmp_path.iterdir()) == [], "no partial table, no temporary"


@pytest.mark.parametrize(
    ("code", "cause"), [(errno.EROFS, "Read-only file system"), (errno.EACCES, "Permission denied")]
)
def test_a_read_only_or_forbidden_folder_names_the_output(tmp_path, monkeypatch, code, cause):
    # As root (CI containers) chmod forbids nothing: the rename fails as it would on the mount.
    def refused(source, target):
        raise OSError(code, cause, str(source))

    monkeypatch.setattr(os, "replace", refused)
    shard = tmp_path / "shard.parquet"
    with pytest.raises(GlobalrepError, match=rf"^{re.escape(str(shard))}: {cause} \({errno.errorcode[code]}\)"):
        write_parquet_atomic(pd.DataFrame({"item_id": ["a"]}), shard)


def test_a_machine_fault_in_a_job_is_one_line_without_traceback(tmp_path):
    done, log = run_job(tmp_path, "raise OSError(28, 'No space left on device')")
    assert done.returncode == 1 and "Traceback" not in done.stderr + log
    assert "a file: No space left on device (ENOSPC); free disk space or fix the permissions" in done.stderr
    done, log = run_job(tmp_path, "raise PermissionError(13, 'Permission denied', 'results/report.html')")
    assert "results/report.html: Permission denied (EACCES)" in done.stderr and "Traceback" not in done.stderr + log
