"""Multi-VALUE dialect rewrites (globalrep.multivalue_adapter, nltk_corpora, dialect_rewrites):
real rewrites of a few sentences and dialogues, protected words, determinism across processes and shards, failures that keep the SAE text; the
offline NLTK data; and the SAE/dialect pairing, comparison table and McNemar's test."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TOP_LEVEL_SCHEMA
from scipy import stats as scipy_stats

from globalrep import config_checks, config_schema, dialect_pairs, dialect_rewrites, multivalue_adapter, nltk_corpora
from globalrep.atomic import write_parquet_atomic
from globalrep.errors import GlobalrepError
from globalrep.stats import mcnemar_exact
from globalrep.tasks import md3_taboo_transfer, rm_dialect_probe

REPO = Path(__file__).resolve().parents[1]
HAVE_MULTIVALUE = importlib.util.find_spec("multivalue") is not None
needs_multivalue = pytest.mark.skipif(
    not HAVE_MULTIVALUE, reason=f"Multi-VALUE is not installed ({nltk_corpora.INSTALL_HINT})"
)
TESTED = ("indian", "nigerian", "colloquial_singapore")
SENTENCES = (
    "I don't think he has ever been to the theater.",
    "She is going to the market because they need some rice.",
    "It is a very big animal that lives in the ocean.",
    "We were talking about the thing that you use to cut paper.",
    "There are many people who didn't come to the party yesterday.",
)


@pytest.fixture(scope="session")
def nltk_data(tmp_path_factory) -> Path:
    """WordNet + cmudict for NLTK: $NLTK_DATA when it has them, else built as the workflow does."""
    found = nltk_corpora.find_nltk_data()
    if found:
        return Path(found)
    if not shutil.which("apt-get"):
        pytest.skip("building WordNet needs Debian's apt-get; set NLTK_DATA to a folder with WordNet and cmudict")
    out = tmp_path_factory.mktemp("nltk") / "nltk_data"
    nltk_corpora.build_nltk_data(out)
    return out


@pytest.fixture(scope="session")
def rewriters(nltk_data) -> dict[str, multivalue_adapter.DialectRewriter]:
    if not HAVE_MULTIVALUE:
        pytest.skip(f"Multi-VALUE is not installed ({nltk_corpora.INSTALL_HINT})")
    return {code: multivalue_adapter.DialectRewriter(code, seed=1, nltk_data=nltk_data) for code in TESTED}


@pytest.fixture(scope="session")
def demo_games() -> pd.DataFrame:
    """The demo's US English MD3 games, as the transfer task prepares them."""
    return md3_taboo_transfer.prepare({"md3_dir": str(REPO / "data/demo/md3")})


# ------------------------------------------------------------------------ real rewrites


@needs_multivalue
@pytest.mark.parametrize("code", TESTED)
def test_real_rewrites_change_most_sentences_with_the_dialects_rules(rewriters, code):
    rewriter = rewriters[code]
    results = [rewriter.rewrite(sentence, f"s{i}") for i, sentence in enumerate(SENTENCES)]
    changed = [r for r, sentence in zip(results, SENTENCES) if r.text != sentence]
    assert len(changed) >= 4, results
    for result, sentence in zip(results, SENTENCES):
        assert bool(result.rules) == (result.text != sentence)  # rules are named iff text changed
        assert set(result.rules) <= set(rewriter.rules)
        assert not set(result.rules) & set(rewriter.disabled_rules)


@needs_multivalue
def test_known_dialect_features_fire(rewriters):
    """Features eWAVE attests: Indian English progressives on stative verbs ("are needing"),
    Colloquial Singapore English 'one' (e.g. "They one need"), Nigerian bare nouns."""
    indian = [rewriters["indian"].rewrite(SENTENCES[1], f"k{i}") for i in range(6)]
    assert any("progressives" in r.rules and "needing" in r.text for r in indian), indian
    singapore = [rewriters["colloquial_singapore"].rewrite(SENTENCES[0], f"k{i}") for i in range(4)]
    assert any("one_relativizer" in r.rules for r in singapore), singapore
    nigerian = [rewriters["nigerian"].rewrite(SENTENCES[2], f"k{i}") for i in range(4)]
    assert any("remove_det_definite" in r.rules and "the ocean" not in r.text for r in nigerian), nigerian


@needs_multivalue
def test_coreference_features_are_off_and_it_is_keeps_its_it(rewriters):
    indian = rewriters["indian"]
    assert set(indian.disabled_rules) == {
        "anaphoric_it",
        "null_referential_pronouns",
        "it_is_referential",
        "it_is_non_referential",
    }
    for rewriter in rewriters.values():
        assert not {"she_inanimate_objects", "he_inanimate_objects", "it_is_non_referential"} & set(rewriter.rules)
    for i in range(5):
        for rewriter in rewriters.values():
            assert rewriter.rewrite("It is raining, and it is cold outside.", f"k{i}").text.lower().startswith("it ")


@needs_multivalue
def test_protected_words_are_never_rewritten(rewriters):
    """Unprotected, "rice" becomes "rices" (mass noun plural) or moves; protected, it stays."""
    text = "They need some rice and some paper for the trip."
    rewriter = rewriters["nigerian"]
    free = [rewriter.rewrite(text, f"k{i}").text for i in range(8)]
    assert any("rices" in out for out in free), free
    for i in range(8):
        out = rewriter.rewrite(text, f"k{i}", protect=("Rice",)).text
        assert "rices" not in out and out.count("rice") == 1, out


@needs_multivalue
def test_dialogues_keep_speakers_and_secret_word(rewriters, demo_games):
    rewritten = dialect_rewrites.rewrite_items(demo_games, rewriters["indian"], {"transcript": "utterances"}, "answer")
    assert list(rewritten["item_id"]) == list(demo_games["item_id"])
    assert not rewritten["rewrite_failed"].any()
    assert (rewritten["dialect_rules"].map(len) > 0).all()
    for before, after, answer in zip(demo_games["transcript"], rewritten["transcript"], demo_games["answer"]):
        assert [speaker for speaker, _ in after] == [speaker for speaker, _ in before]
        assert " ".join(t for _, t in after) != " ".join(t for _, t in before)
        assert sum(answer.lower() in t.lower() for _, t in after) == sum(answer.lower() in t.lower() for _, t in before)


@needs_multivalue
def test_rewrites_depend_only_on_seed_and_item(rewriters, nltk_data, demo_games):
    columns = {"transcript": "utterances"}
    full = dialect_rewrites.rewrite_items(demo_games, rewriters["nigerian"], columns, "answer")
    # Another rewriter, the items in another order and without the first: same rewrites.
    again = multivalue_adapter.DialectRewriter("nigerian", seed=1, nltk_data=nltk_data)
    subset = dialect_rewrites.rewrite_items(demo_games.iloc[::-1].iloc[:-1], again, columns, "answer")
    merged = full.merge(subset, on="item_id", suffixes=("", "_again"))
    assert len(merged) == len(demo_games) - 1
    assert (merged["transcript"].map(str) == merged["transcript_again"].map(str)).all()
    other_seed = dialect_rewrites.rewrite_items(
        demo_games, multivalue_adapter.DialectRewriter("nigerian", 2, nltk_data), columns, "answer"
    )
    assert list(other_seed["transcript"].map(str)) != list(full["transcript"].map(str))


@needs_multivalue
def test_two_runs_write_identical_files(tmp_path, nltk_data, demo_games):
    """The workflow step run here and in a fresh process writes the same bytes: another hash seed,
    and the C locale with Python's UTF-8 mode off, where open() defaults to ASCII (Multi-VALUE's
    word lists are UTF-8)."""
    sae = tmp_path / "md3_taboo_transfer@sae.parquet"
    write_parquet_atomic(demo_games, sae)
    here, there = tmp_path / "here.parquet", tmp_path / "there.parquet"
    dialect_rewrites.rewrite_task_items("md3_taboo_transfer", ["indian"], 5, sae, nltk_data, [here])
    code = (
        "from globalrep.dialect_rewrites import rewrite_task_items; "
        f"rewrite_task_items('md3_taboo_transfer', ['indian'], 5, {str(sae)!r}, {str(nltk_data)!r}, [{str(there)!r}])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(REPO / "src"), "LC_ALL": "C", "PYTHONUTF8": "0"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
    assert here.read_bytes() == there.read_bytes()


# ------------------------------------------------------------------------ without Multi-VALUE


class _FailingOn:
    """A stand-in rewriter: uppercases text, raises on text containing ``bad``."""

    code = "fake"

    def __init__(self, bad: str):
        self.bad = bad

    def rewrite(self, text, key, protect=()):
        if self.bad in text:
            raise IndexError("Multi-VALUE choked")
        return multivalue_adapter.Rewrite(text.upper(), ("upper",))


def test_a_failed_rewrite_keeps_the_sae_text_and_is_counted(caplog):
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "prompt": ["fine", "bad one", "also fine"]})
    rewritten = dialect_rewrites.rewrite_items(items, _FailingOn("bad"), {"prompt": "text"})
    assert list(rewritten["prompt"]) == ["FINE", "bad one", "ALSO FINE"]
    assert list(rewritten["rewrite_failed"]) == [False, True, False]
    assert list(rewritten["dialect_rules"]) == [["upper"], [], ["upper"]]
    assert "item b failed (IndexError" in caplog.text
    summary = dialect_pairs.rewrite_summary({"fake": rewritten})
    counts = dict(zip(summary["rule"], summary["items"]))
    assert counts == {dialect_pairs.CHANGED: 2, dialect_pairs.FAILED: 1, "upper": 2}


def test_unknown_text_kind_and_dialect_are_errors():
    with pytest.raises(GlobalrepError, match="unknown dialect text kind"):
        dialect_rewrites.rewrite_items(pd.DataFrame({"item_id": ["a"], "x": ["y"]}), _FailingOn("z"), {"x": "poem"})
    with pytest.raises(GlobalrepError, match="unknown dialect.*'klingon'.*known dialects: aboriginal"):
        multivalue_adapter.check_dialects(["indian", "klingon"])


def test_protected_spans_and_dropped_rules():
    text = "The Lighthouse is a lighthouse, not a lighthouses."
    assert multivalue_adapter.protected_spans(text, ["lighthouse"]) == [(4, 13), (20, 29)]
    # Multi-VALUE's rules: {rule: {(start, end): ...}}, inclusive spans; those touching 4..13 or 20..29 go.
    rules = {"a": {(0, 2): "x", (13, 16): "y"}, "b": {(10, 12): "z", (15, 19): "v", (29, 33): "w"}}
    multivalue_adapter._drop_rules_touching(rules, multivalue_adapter.protected_spans(text, ["lighthouse"]))
    assert rules == {"a": {(0, 2): "x"}, "b": {(15, 19): "v"}}


def test_the_schema_takes_its_dialects_from_the_code_and_refuses_others():
    import jsonschema

    schema = config_schema.assemble(TOP_LEVEL_SCHEMA)
    assert schema["properties"]["dialects"]["items"]["enum"] == list(multivalue_adapter.DIALECTS)
    config = {
        "models": {"m": {"path": "org/m"}},
        "tasks": {"md3_taboo_transfer": {}},
        "dialects": ["indian", "klingon"],
    }
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    assert config_checks.config_error_message(error).startswith(
        "invalid value for config key 'dialects.1': 'klingon' is not one of ['aboriginal', "
    )


def test_dialect_codes_name_multivalue_dialects():
    assert len(multivalue_adapter.DIALECTS) == 50 and len(set(multivalue_adapter.DIALECTS.values())) == 50
    if HAVE_MULTIVALUE:  # every code names one of Multi-VALUE's dialect classes
        vectors = pd.read_csv(
            Path(importlib.util.find_spec("multivalue").origin).parent / "resources/attestation_vectors.csv"
        )
        assert set(multivalue_adapter.DIALECTS.values()) <= set(vectors.columns)


# ------------------------------------------------------------------------ NLTK data


MANPAGE = "".join(f"{i:02d}\t{name}\tsomething\n" for i, name in enumerate(
    ["adj.all", "adj.pert", "adv.all", *[f"noun.n{i}" for i in range(26)], *[f"verb.v{i}" for i in range(15)], "adj.ppl"]
))  # fmt: skip


def test_lexnames_from_wordnets_manpage():
    lines = nltk_corpora.lexnames_from_manpage(".TS\n" + MANPAGE + ".TE\n").splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[2] == "02\tadv.all\t4"
    assert lines[3] == "03\tnoun.n0\t1" and lines[29] == "29\tverb.v0\t2" and lines[44] == "44\tadj.ppl\t3"
    with pytest.raises(GlobalrepError, match="45 lexicographer files"):
        nltk_corpora.lexnames_from_manpage(MANPAGE.replace("07\t", "7\t"))


def test_find_nltk_data(tmp_path):
    ready = tmp_path / "ready"
    for marker in nltk_corpora.NLTK_MARKERS:
        (ready / marker).parent.mkdir(parents=True, exist_ok=True)
        (ready / marker).write_text("x")
    partial = tmp_path / "partial"
    (partial / "corpora/wordnet").mkdir(parents=True)
    (partial / "corpora/wordnet/lexnames").write_text("x")
    assert nltk_corpora.find_nltk_data({"NLTK_DATA": os.pathsep.join([str(partial), str(ready)])}) == str(ready)
    assert nltk_corpora.find_nltk_data({"NLTK_DATA": str(partial)}) is None
    assert nltk_corpora.find_nltk_data({}) is None


def test_built_nltk_data_has_real_wordnet_and_cmudict(nltk_data):
    lexnames = (nltk_data / "corpora/wordnet/lexnames").read_text().splitlines()
    assert lexnames[18].split("\t") == ["18", "noun.person", "1"]
    cmu = (nltk_data / "corpora/cmudict/cmudict").read_text()
    assert "\nTOMATO 1 T AH0 M EY1 T OW2\n" in cmu and "\nTOMATO 2 T AH0 M AA1 T OW2\n" in cmu
    if HAVE_MULTIVALUE:
        from nltk.corpus import cmudict, wordnet

        nltk_corpora.use_nltk_data(nltk_data)
        assert wordnet.synsets("lighthouse")[0].lexname() == "noun.artifact"
        assert cmudict.dict()["tomato"][0][-1] == "OW2"


def test_use_nltk_data_rejects_an_incomplete_folder(tmp_path):
    pytest.importorskip("nltk")
    with pytest.raises(GlobalrepError, match="lacks WordNet or cmudict"):
        nltk_corpora.use_nltk_data(tmp_path)


# ------------------------------------------------------------------------ pairs and statistics


def test_mcnemar_exact_by_hand():
    before = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 1])
    after = np.array([1, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    # One pair only SAE got right, six only the dialect: p = 2 * P(X <= 1), X ~ Bin(7, 1/2) = 16/128.
    assert mcnemar_exact(before, after) == (1, 6, pytest.approx(0.125))
    assert mcnemar_exact([1, 0], [1, 0]) == (0, 0, 1.0)
    with pytest.raises(ValueError, match="binary"):
        mcnemar_exact([0.5], [1])


def test_combine_pairs_items_and_rejects_a_partial_rewrite():
    sae = pd.DataFrame({"item_id": ["g1", "g2"], "group": ["sae", "sae"], "text": ["a", "b"]})
    indian = sae.assign(text=["A", "b"], dialect_rules=[["r"], []], rewrite_failed=[False, False])
    items = dialect_pairs.combine(sae, {"indian": indian})
    assert list(items["item_id"]) == ["g1@sae", "g2@sae", "g1@indian", "g2@indian"]
    assert list(items["pair_id"]) == ["g1", "g2", "g1", "g2"]
    assert list(items["group"]) == ["sae", "sae", "indian", "indian"]
    assert list(items["text"]) == ["a", "b", "A", "b"]
    with pytest.raises(GlobalrepError, match="the nigerian rewrite does not hold the SAE items"):
        dialect_pairs.combine(sae, {"nigerian": indian.iloc[:1]})


def _scores(values: dict[str, list[float]], model: str = "m", metric: str = "generated_correct") -> pd.DataFrame:
    rows = [
        (model, f"g{i}@{group}", group, metric, value, f"g{i}")
        for group, column in values.items()
        for i, value in enumerate(column)
    ]
    return pd.DataFrame(rows, columns=["model", "item_id", "group", "metric", "value", "pair_id"])


def test_paired_rows_and_comparison_table_by_hand():
    sae = [1, 1, 1, 0, 0, 0, 0, 0, 0, 1]
    indian = [1, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    rows = dialect_pairs.paired_rows(_scores({"sae": sae, "indian": indian}))
    differences = rows[rows["metric"] == "generated_correct_vs_sae"]
    assert list(differences["value"]) == [0, -1, 0, 1, 1, 1, 1, 1, 1, 0]
    assert set(differences["group"]) == {"indian"}
    table = dialect_pairs.comparison_table(rows)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["sae"], row["dialect_value"], row["delta"]) == (
        pytest.approx(0.4),
        pytest.approx(0.9),
        pytest.approx(0.5),
    )
    assert (row["dialect_better"], row["sae_better"], row["n"]) == (pytest.approx(0.6), pytest.approx(0.1), 10)
    assert row["test"] == "McNemar exact" and row["p_value"] == pytest.approx(0.125)
    assert row["ci_low"] < 0.5 < row["ci_high"]


def test_comparison_of_rewards_uses_the_permutation_test():
    rng = np.random.default_rng(0)
    sae = rng.normal(size=12)
    scores = _scores({"sae": list(sae), "nigerian": list(sae - 1.0)}, metric="reward")
    row = dialect_pairs.comparison_table(scores).iloc[0]
    assert row["delta"] == pytest.approx(-1.0) and row["sae_better"] == 1.0 and row["dialect_better"] == 0.0
    assert row["test"] == "sign-flip permutation" and row["p_value"] < 0.01


def test_scipy_binomtest_is_mcnemars_exact_test():
    """McNemar's exact p equals the exact binomial test on the discordant pairs."""
    b, c = 3, 11
    before = [1] * b + [0] * c + [1] * 5
    after = [0] * b + [1] * c + [1] * 5
    assert mcnemar_exact(before, after)[2] == pytest.approx(scipy_stats.binomtest(c, b + c).pvalue)


def test_rm_probe_table_scores_by_hand():
    rewards = {"sae": [0.5, 1.0, -0.2], "indian": [0.1, 1.5, -0.2]}
    rows = rm_dialect_probe.table_scores(_scores(rewards, metric="reward"), {})
    diff = rows[rows["metric"] == "reward_vs_sae"]["value"].to_numpy()
    assert diff == pytest.approx([-0.4, 0.5, 0.0])
    assert list(rows[rows["metric"] == "dialect_preferred"]["value"]) == [0.0, 1.0, 0.0]
