"""Hub sources read as local files are: the hub cannot be reached here, so ``datasets.load_dataset``
answers from in-memory datasets laid out as the hub's (their features, configs and splits),
built from the demo's local samples. Each task must prepare the same items from either, and so
goes through ``Dataset.to_pandas()``'s real conversions (nested answers as arrays, integer
columns) that a local file never produces."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pandas as pd
import pytest
from datasets import Dataset, Features, Sequence, Value

from globalrep.tasks import belebele, global_opinions, sft_langid, tydiqa_goldp

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


class FakeHub:
    """``load_dataset`` and ``get_dataset_config_names`` over ``{(repo, config, split): Dataset}``;
    an unknown request fails as the hub would."""

    def __init__(self, monkeypatch, tables: dict[tuple[str, str | None, str], Dataset]):
        self.tables = tables
        self.requests: list[tuple[str, str | None, str]] = []
        monkeypatch.setattr(datasets, "load_dataset", self.load_dataset)
        monkeypatch.setattr(datasets, "get_dataset_config_names", self.config_names)

    def load_dataset(self, path, name=None, split=None, **kwargs):
        self.requests.append((path, name, split))
        try:
            return self.tables[(path, name, split)]
        except KeyError:
            raise ValueError(f"fake hub: no {path!r} config {name!r} split {split!r}") from None

    def config_names(self, path, **kwargs):
        return sorted({name for repo, name, _ in self.tables if repo == path})


def squad_as_hub(path: Path) -> Dataset:
    """A SQuAD-1.1 file in the layout of ``google-research-datasets/tydiqa`` (secondary_task)."""
    rows = [
        {"id": qa["id"], "title": article["title"], "context": paragraph["context"], "question": qa["question"],
         "answers": {"text": [a["text"] for a in qa["answers"]], "answer_start": [a["answer_start"] for a in qa["answers"]]}}
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]  # fmt: skip
    features = Features({
        "id": Value("string"), "title": Value("string"), "context": Value("string"), "question": Value("string"),
        "answers": Sequence({"text": Value("string"), "answer_start": Value("int32")}),
    })  # fmt: skip
    return Dataset.from_list(rows, features=features)


def test_tydiqa_from_the_hub_equals_the_local_files(monkeypatch):
    hub_id = "google-research-datasets/tydiqa"
    hub = FakeHub(monkeypatch, {
        (hub_id, tydiqa_goldp.HUB_CONFIG, "validation"): squad_as_hub(DEMO / "tydiqa_goldp_dev.json"),
        (hub_id, tydiqa_goldp.HUB_CONFIG, "train"): squad_as_hub(DEMO / "tydiqa_goldp_train.json"),
    })  # fmt: skip
    for sampling in ("per_language", "per_question"):
        options = {"num_shots": 1, "shot_sampling": sampling}
        local = tydiqa_goldp.prepare({**options, "train_source": str(DEMO / "tydiqa_goldp_train.json")},
                                     str(DEMO / "tydiqa_goldp_dev.json"))  # fmt: skip
        from_hub = tydiqa_goldp.prepare(options, hub_id)
        pd.testing.assert_frame_equal(from_hub, local)
    assert all(isinstance(answers, list) and answers for answers in from_hub["answers"])
    assert (hub_id, "secondary_task", "validation") in hub.requests and (
        hub_id,
        "secondary_task",
        "train",
    ) in hub.requests


def belebele_as_hub(hub_id: str) -> dict:
    """The demo's Belebele questions as the hub lays them out: one config per language variant,
    split "test", question_number an integer and correct_answer_num text."""
    frame = pd.read_json(DEMO / "belebele.jsonl", lines=True, dtype={"correct_answer_num": str})
    features = Features(
        {column: Value("int64" if column == "question_number" else "string") for column in frame.columns}
    )
    return {
        (hub_id, dialect, "test"): Dataset.from_pandas(
            part.reset_index(drop=True), features=features, preserve_index=False
        )
        for dialect, part in frame.groupby("dialect")
    }


@pytest.mark.parametrize("languages", ["all", ["fra_Latn", "eng_Latn"]])
def test_belebele_from_the_hub_equals_the_local_file(monkeypatch, languages):
    hub_id = "facebook/belebele"
    hub = FakeHub(monkeypatch, belebele_as_hub(hub_id))
    local = belebele.prepare({"languages": languages}, str(DEMO / "belebele.jsonl"))
    from_hub = belebele.prepare({"languages": languages}, hub_id)
    key = ["group", "item_id"]
    pd.testing.assert_frame_equal(
        from_hub.sort_values(key).reset_index(drop=True), local.sort_values(key).reset_index(drop=True)
    )
    expected = {"deu_Latn", "eng_Latn", "fra_Latn"} if languages == "all" else set(languages)
    assert {name for _, name, _ in hub.requests} == expected  # one config per language variant, no more


def test_global_opinions_from_the_hub_equals_the_local_file(monkeypatch):
    hub_id = global_opinions.DEFAULT_SOURCE
    frame = pd.read_csv(DEMO / "global_opinions.csv", dtype=str, keep_default_na=False)
    FakeHub(monkeypatch, {(hub_id, None, "train"): Dataset.from_pandas(frame, preserve_index=False)})
    local = global_opinions.prepare({}, str(DEMO / "global_opinions.csv"))
    pd.testing.assert_frame_equal(global_opinions.prepare({}, hub_id), local)


def test_sft_conversations_from_the_hub_equal_the_local_file(monkeypatch):
    hub_id = "HuggingFaceH4/ultrachat_200k"
    records = [
        json.loads(line)
        for line in (DEMO / "sft_ultrachat.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    split = Dataset.from_list(records)  # messages: a list of {content, role} structs, as on the hub
    FakeHub(monkeypatch, {(hub_id, None, "train_sft"): split})
    for shard in range(2):
        local = [
            (index, messages)
            for _, index, messages in sft_langid.conversations(str(DEMO / "sft_ultrachat.jsonl"), None, 2, shard)
        ]
        from_hub = list(sft_langid.conversations(hub_id, ["train_sft"], 2, shard))
        assert [(index, messages) for _, index, messages in from_hub] == local
        assert {part for part, _, _ in from_hub} == {"train_sft"}
    assert len(local) > 0
