import json
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import binomtest

from globalrep.errors import GlobalrepError
from globalrep.langid import Detection, Detectors
from globalrep.languages import base_language, language_name
from globalrep.tables import DELTA_COLUMNS
from globalrep.tasks import sft_langid
from globalrep.tasks.base import FigureContext

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
DEMO_OPTIONS = {
    "datasets": {
        "tulu-demo": {"source": str(DEMO / "sft_tulu.jsonl")},
        "ultrachat-demo": {"source": str(DEMO / "sft_ultrachat.jsonl")},
    },
    "low_accuracy": True,  # lingua's full models take ~15 s to load; same code path otherwise
}


@pytest.fixture(scope="module", params=[("langdetect", "fasttext"), ("langdetect", "lingua"), ("fasttext", "lingua")])
def detectors(request):
    return Detectors(request.param, seed=0, low_accuracy=True)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Could you explain how the water cycle works, step by step, for a school project?", "en"),
        ("Könnten Sie mir bitte erklären, wie der Wasserkreislauf für ein Schulprojekt funktioniert?", "de"),
        ("Pourriez-vous m'expliquer comment fonctionne le cycle de l'eau pour un projet scolaire ?", "fr"),
        ("请你一步一步地解释一下水循环是怎样运作的。", "zh"),
        ("12345 67890", "unknown"),
        ("", "unknown"),
    ],
)
def test_both_detectors_agree_on_clear_text(detectors, text, language):
    found = detectors.detect(text)
    assert found.language == language
    if language != "unknown":  # on digits only, fastText still guesses (with a low score)
        assert found.first == found.second == language


def test_the_papers_pair_is_the_default_and_pairs_are_checked():
    assert Detectors(seed=0).names == ("langdetect", "fasttext")
    for bad in (["langdetect"], ["lingua", "lingua"], ["langdetect", "cld3"]):
        with pytest.raises(GlobalrepError, match="tasks.sft_langid.detectors"):
            sft_langid.detector_names({"detectors": bad})


def test_fasttext_reads_text_as_one_line():
    fasttext_only = Detectors(("fasttext", "langdetect"), seed=0)
    found = fasttext_only.detect("Könnten Sie mir bitte erklären,\nwie der Wasserkreislauf funktioniert?")
    assert found.first == "de"  # a newline inside would make fastText fail
    assert fasttext_only.detect("  \n ").first == "unknown"


def test_disagreement_is_unknown_and_codes_are_folded():
    assert Detection("en", "de").language == "unknown"
    assert Detection("zh", "zh").language == "zh"
    assert base_language("zh-cn") == base_language("ZH") == "zh"
    assert base_language(None) == "unknown"
    assert language_name("zh") == "Chinese" and language_name("unknown") == "unknown"


def test_langdetect_is_reproducible_with_its_seed():
    text = "ok ja"  # short and ambiguous: langdetect's random trials decide
    first = Detectors(seed=3)
    assert {first.detect(text) for _ in range(3)} == {Detectors(seed=3).detect(text)}


def write_jsonl(path: Path, conversations) -> Path:
    lines = [json.dumps({"messages": [{"role": r, "content": c} for r, c in conv]}) for conv in conversations]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


CONVERSATIONS = [[("user", f"question {i}"), ("assistant", f"answer {i}")] for i in range(7)]


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_shards_cover_every_conversation_once(tmp_path, suffix):
    path = write_jsonl(tmp_path / "sft.jsonl", CONVERSATIONS)
    if suffix == "parquet":
        records = [json.loads(line) for line in path.read_text().splitlines()]
        path = tmp_path / "sft.parquet"
        pd.DataFrame(records).to_parquet(path)
    seen = [
        (index, messages[0][1])
        for k in range(3)
        for _, index, messages in sft_langid.conversations(str(path), [], 3, k)
    ]
    assert sorted(seen) == [(i, f"question {i}") for i in range(7)]
    assert [index for _, index, _ in sft_langid.conversations(str(path), [], 3, 1)] == [1, 4]


def test_a_shard_does_not_parse_other_shards_lines(tmp_path):
    path = write_jsonl(tmp_path / "sft.jsonl", CONVERSATIONS[:3])
    lines = path.read_text().splitlines()
    lines[1] = "{broken"
    path.write_text("\n".join(lines) + "\n")
    assert [index for _, index, _ in sft_langid.conversations(str(path), [], 2, 0)] == [0, 2]
    with pytest.raises(GlobalrepError, match="sft.jsonl, line 2: not JSON"):
        list(sft_langid.conversations(str(path), [], 2, 1))


def test_bad_messages_are_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{"prompt": "no messages"}\n')
    with pytest.raises(GlobalrepError, match="bad.jsonl, line 2: no 'messages' field"):
        list(sft_langid.conversations(str(path), [], 1, 0))
    path.write_text('{"messages": [{"role": "user", "content": 3}]}\n')
    with pytest.raises(GlobalrepError, match="bad.jsonl, line 1: 'messages' must be a list"):
        list(sft_langid.conversations(str(path), [], 1, 0))
    with pytest.raises(GlobalrepError, match=r"tasks.sft_langid.datasets.x.source"):
        sft_langid.check_sources({"datasets": {"x": {"source": str(tmp_path / "nowhere" / "x.jsonl")}}})


def test_share_table_by_hand():
    languages = ["en"] * 6 + ["de"] * 2 + ["unknown"] * 2
    roles = ["user", "assistant"] * 5
    messages = pd.DataFrame({"dataset": "d", "role": roles, "language": languages})
    table = sft_langid.share_table(messages).set_index(["metric", "group"])
    assert table.loc[("share", "en"), "value"] == pytest.approx(60.0) and table.loc[("share", "en"), "n"] == 10
    assert table.loc[("share", "de"), "group_name"] == "German"
    # user messages: en, en, en, de, unknown -> 3 of 5 English
    assert table.loc[("share_user", "en"), "value"] == pytest.approx(60.0) and table.loc[("share_user", "en"), "n"] == 5
    wilson = binomtest(2, 10).proportion_ci(confidence_level=0.95, method="wilson")
    assert table.loc[("share", "de"), ["ci_low", "ci_high"]].tolist() == pytest.approx(
        [100 * wilson.low, 100 * wilson.high]
    )
    for metric, frame in table.groupby(level="metric"):
        assert frame["value"].sum() == pytest.approx(100.0), metric
    # The paper's denominator: the 8 agreed messages (6 en, 2 de); no unknown row.
    assert (
        table.loc[("share_agreed", "en"), "value"] == pytest.approx(75.0)
        and table.loc[("share_agreed", "en"), "n"] == 8
    )
    assert ("share_agreed", "unknown") not in table.index
    # agreed user messages: en, en, en, de -> 3 of 4
    assert table.loc[("share_agreed_user", "en"), "value"] == pytest.approx(75.0)
    assert table.loc[("share_agreed_user", "de"), "n"] == 4


def test_demo_shards_to_tables_and_figure(tmp_path):
    shards = {}
    for name in DEMO_OPTIONS["datasets"]:
        shards[name] = [tmp_path / f"{name}-{k}.parquet" for k in range(2)]
        for k, path in enumerate(shards[name]):
            sft_langid.detect_shard(name, DEMO_OPTIONS, 2, k, path)
    one = pd.read_parquet(shards["tulu-demo"][0])
    assert list(one.columns) == sft_langid.MESSAGE_COLUMNS  # no message text is kept
    sft_langid.write_tables(shards, tmp_path / "m.parquet", tmp_path / "t.csv", tmp_path / "d.csv")
    messages = pd.read_parquet(tmp_path / "m.parquet")
    assert len(messages) == 24 + 18 and not messages.duplicated(["dataset", "conversation", "turn"]).any()
    table = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    assert list(table.columns) == sft_langid.TABLE_COLUMNS
    shares = table[table["metric"] == "share"].set_index(["model", "group"])["value"]
    assert shares[("ultrachat-demo", "en")] == 100.0
    assert {"de", "es", "fr", "zh", "unknown"} <= set(shares["tulu-demo"].index)
    agreed = table[(table["metric"] == "share_agreed") & (table["model"] == "tulu-demo")]
    assert "unknown" not in set(agreed["group"]) and agreed["value"].sum() == pytest.approx(100.0)
    tulu = messages[messages["dataset"] == "tulu-demo"]
    assert set(agreed["n"]) == {int((tulu["language"] != "unknown").sum())} and set(tulu["detectors"]) == {
        "langdetect+fasttext"
    }
    assert list(pd.read_csv(tmp_path / "d.csv").columns) == DELTA_COLUMNS
    paths = sft_langid.figures(table, pd.read_csv(tmp_path / "d.csv"), FigureContext(tmp_path / "fig"), {})
    assert sorted(p.suffix for p in paths) == [".pdf", ".png"] and all(p.stat().st_size > 0 for p in paths)
