"""findings.csv on fixtures (tests/data/findings): every verdict rule, rows absent where a task or a
chain's model is, each finding agreeing with its source rows, and the words the report and the
terminal print."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from findings_checks import contradictions
from matplotlib import image

from globalrep import findings
from globalrep.figures.findings import overview_matrix, plot_findings_overview
from globalrep.tables import deltas_table, read_table

CHAINS = {"c": ["base", "sft", "pt"], "c2": ["base", "ghost"]}  # ghost: in no table
NAN = math.nan


@pytest.fixture
def inputs(test_data) -> findings.Inputs:
    folder = test_data / "findings"
    tables = {
        name: read_table(folder / f"{name}.csv")
        for name in (
            "md3_taboo_gap_changes",
            "md3_taboo_transfer_deltas",
            "where_from",
            "sft_langid",
            "askreddit_us_favorability",
        )  # fmt: skip
    }
    scores = {task: read_table(folder / f"{task}_scores.csv") for task in ("belebele", "global_opinions")}
    for task, frame in scores.items():
        tables[f"{task}_deltas"] = deltas_table(frame, CHAINS)
    tables["belebele_from_base"] = deltas_table(scores["belebele"], CHAINS, from_base=True)
    return findings.Inputs(tables, scores, CHAINS)


@pytest.fixture
def table(inputs) -> pd.DataFrame:
    return findings.findings_table(inputs)


def finding(table: pd.DataFrame, statistic: str, from_model: str, to_model: str, chain: str = "c") -> pd.Series:
    rows = table[
        (table["statistic"] == statistic)
        & (table["chain"] == chain)
        & (table["from_model"] == from_model)
        & (table["to_model"] == to_model)
    ]
    assert len(rows) == 1, (statistic, from_model, to_model, rows)
    return rows.iloc[0]


@pytest.mark.parametrize(
    ("kind", "value", "q_value", "counted", "expected"),
    [
        ("gap", 0.1, 0.01, "", "widened"),
        ("gap", -0.1, 0.01, "", "narrowed"),
        ("gap", 0.1, 0.05, "", "no significant change"),  # q, not p, decides: q must be below 0.05
        ("gap", 0.1, NAN, "", "no significant change"),  # untested
        ("gap", 0.0, 0.0, "", "no significant change"),
        ("change", 0.3, 0.001, "", "rose"),
        ("change", -0.3, 0.001, "", "fell"),
        ("change", -0.3, 0.2, "", "no significant change"),
        ("count", 2, NAN, "widened", "widened"),
        ("count", 1, NAN, "fell", "fell"),
        ("count", 0, NAN, "rose", "no significant change"),
        ("descriptive", 3, NAN, "", "descriptive"),
    ],
)
def test_verdict_rules(kind, value, q_value, counted, expected):
    assert findings.verdict(kind, value, q_value, counted) == expected
    assert expected in findings.VERDICTS


def test_every_statistic_is_defined_with_a_question_and_a_kind():
    for name, spec in findings.STATISTICS.items():
        assert spec.question in findings.QUESTIONS, name
        assert spec.kind in ("gap", "change", "count", "descriptive"), name
        assert (spec.kind == "count") == bool(spec.counted), name


def test_findings_columns_and_verdicts_on_fixtures(table):
    assert list(table.columns) == findings.COLUMNS
    assert set(table["verdict"]) <= set(findings.VERDICTS)
    # MD3: q decides, per the gap-changes table's family (p 0.04 with q 0.08 is no change)
    assert finding(table, "md3_gap_change:en_in:generated_correct", "base", "sft")["verdict"] == "widened"
    assert finding(table, "md3_gap_change:en_ng:generated_correct", "base", "sft")["verdict"] == "narrowed"
    assert finding(table, "md3_gap_change:en_in:generated_correct", "sft", "pt")["verdict"] == "no significant change"
    row = finding(table, "md3_gap_change:en_in:generated_correct", "base", "sft")
    assert (row["value"], row["ci_low"], row["ci_high"], row["q_value"]) == (0.15, 0.05, 0.25, 0.002)
    assert row["family"] == (
        "md3_taboo_gap_changes.csv: chain=c; from_model=base; to_model=sft; reference=en_us; metric=generated_correct"
    )
    # Multi-VALUE: dialect − SAE fell significantly for indian (the SAE gap widened); rose for both later
    assert finding(table, "sae_gaps_widened:md3_taboo_transfer:chose_correct", "base", "sft")[
        ["value", "verdict"]
    ].tolist() == [1, "widened"]
    assert (
        finding(table, "sae_gaps_narrowed:md3_taboo_transfer:chose_correct", "base", "sft")["verdict"]
        == "no significant change"
    )
    assert finding(table, "sae_gaps_narrowed:md3_taboo_transfer:chose_correct", "sft", "pt")[
        ["value", "verdict"]
    ].tolist() == [2, "narrowed"]
    # Languages: English gained 12 of 30 items, the others about none
    assert finding(table, "languages_improved:belebele:accuracy", "base", "sft")[["value", "verdict"]].tolist() == [
        1,
        "rose",
    ]
    assert finding(table, "languages_declined:belebele:accuracy", "base", "sft")["verdict"] == "no significant change"
    english = finding(table, "english_vs_median_change:belebele:accuracy", "base", "sft")
    assert english["value"] == pytest.approx(40.0) and english["ci_low"] > 0 and english["verdict"] == "widened"
    assert english["q_value"] < 0.05 and english["family"].startswith(
        "findings.csv: statistic=english_vs_median_change"
    )
    # base → pt from belebele_from_base: not a step of the chain, so its own rows
    assert finding(table, "languages_improved:belebele:accuracy", "base", "pt")["source_table"].startswith(
        "belebele_from_base.csv"
    )
    assert (
        len(
            table[
                (table["from_model"] == "base")
                & (table["to_model"] == "sft")
                & table["statistic"].str.startswith("languages_improved")
            ]
        )
        == 1
    )
    share = table[table["statistic"] == "english_share:tulu"].iloc[0]
    assert (share["value"], share["verdict"], share["chain"]) == (96.0, "descriptive", "")  # share_agreed, the paper's
    # Countries: answers moved towards the US's after SFT, not after preference tuning
    assert finding(table, "us_minus_rest_change", "base", "sft")["verdict"] == "widened"
    assert finding(table, "us_minus_rest_change", "sft", "pt")["verdict"] == "no significant change"
    assert finding(table, "us_rank_by_similarity_change", "base", "sft")[["value", "verdict"]].tolist() == [
        1,
        "descriptive",
    ]
    assert table[table["statistic"] == "where_from_us_rank"][["to_model", "value"]].values.tolist() == [["rm", 2]]
    gallup = finding(table, "gallup_correlation_change:us_favorability_2017", "base", "sft")
    assert gallup["value"] > 0.5 and gallup["verdict"] == "rose"


def test_findings_are_absent_where_a_task_or_model_is(inputs, table):
    assert not (table["chain"] == "c2").any()  # its second model is in no table
    assert not table["statistic"].str.contains("tydiqa_goldp").any()  # the task did not run
    without = findings.findings_table(findings.Inputs({}, {}, CHAINS))
    assert without.empty and list(without.columns) == findings.COLUMNS
    no_items = findings.findings_table(findings.Inputs(inputs.tables, {}, CHAINS))
    assert not no_items["statistic"].isin(["english_vs_median_change:belebele:accuracy", "us_minus_rest_change"]).any()
    assert not no_items.isna().all(axis=1).any()


def test_a_statistic_without_a_value_is_left_out_not_given_a_verdict(inputs, caplog):
    gaps = inputs.tables["md3_taboo_gap_changes"].copy()
    gaps["change"] = NAN  # e.g. a model whose answers were all missing in one dialect
    findings_without = findings.findings_table(findings.Inputs({**inputs.tables, "md3_taboo_gap_changes": gaps},
                                                               inputs.scores, inputs.chains))  # fmt: skip
    assert not findings_without["statistic"].str.startswith("md3_gap_change").any()
    assert findings_without["value"].notna().all()
    assert "has no value" in caplog.text and "left out" in caplog.text


def test_findings_are_ordered_by_chain_step_then_question(table):
    steps = list(dict.fromkeys(zip(table["chain"], table["from_model"], table["to_model"])))
    # chain steps in chain order (base → pt after the steps), then the SFT data, then the reward model
    assert steps == [("c", "base", "sft"), ("c", "sft", "pt"), ("c", "base", "pt"), ("", "", ""), ("", "", "rm")]
    questions = list(table[(table["from_model"] == "base") & (table["to_model"] == "sft")]["question"])
    assert questions == sorted(questions, key=list(findings.QUESTIONS).index)


def test_every_finding_agrees_with_its_source_rows(inputs, table):
    assert contradictions(table, {**inputs.tables, **{"findings": table}}) == []


def test_a_contradicting_finding_is_caught(inputs, table):
    tampered = table.copy()
    row = tampered.index[tampered["statistic"] == "md3_gap_change:en_ng:generated_correct"][0]
    tampered.loc[row, "verdict"] = "widened"  # its change is negative
    flipped = tampered.index[tampered["statistic"] == "us_rank_by_similarity_change"][0]
    tampered.loc[flipped, "value"] = 3
    problems = contradictions(tampered, inputs.tables)
    assert len(problems) == 2 and "verdict 'widened'" in problems[0] and "value 3" in problems[1]


def test_selectors_round_trip():
    text = findings.selector("belebele_deltas", chain="c", model=["a", "b"], group="Korea, Republic of")
    assert text == "belebele_deltas.csv: chain=c; model=a|b; group=Korea, Republic of"
    assert findings.parse_selector(text) == (
        "belebele_deltas",
        {"chain": ["c"], "model": ["a", "b"], "group": ["Korea, Republic of"]},
    )


def test_sentences_say_one_thing_per_step_and_question(table):
    said = findings.sentences(table, ["md3_taboo", "md3_taboo_transfer", "belebele", "global_opinions", "askreddit",
                                      "where_from", "sft_langid"])  # fmt: skip
    keys = [(s.step, s.question) for s in said]
    assert len(keys) == len(set(keys))
    first = said[0]
    assert (first.step, first.question) == ("c: base → sft", "dialect_gaps")
    assert first.clauses[0].task == "md3_taboo"
    assert first.clauses[0].text == "MD3 generated_correct US − Indian gap: widened (+0.150 [0.050, 0.250], q = 0.002)"
    texts = [clause.text for clause in first.clauses]
    assert "md3_taboo_transfer chose_correct SAE − dialect gaps: 1 widened, 0 narrowed (q < 0.05)" in texts
    lines = findings.summary_lines(table, ["md3_taboo"])
    assert len(lines) == len(said) and lines[0].startswith("  [Dialects] c: base → sft — MD3 generated_correct")


def test_overview_figure_marks_the_significant_cells(table, tmp_path):
    values, scaled, significant = overview_matrix(table)
    assert list(values.columns) == ["c:\nbase →\nsft", "c:\nsft →\npt", "c:\nbase →\npt"]
    assert significant.loc["md3_gap_change:en_in:generated_correct", "c:\nbase →\nsft"]
    assert not significant.loc["md3_gap_change:en_in:generated_correct", "c:\nsft →\npt"]
    assert scaled.abs().max(axis=1).tolist() == pytest.approx([1.0] * len(scaled))  # each statistic on its own scale
    assert values.loc["md3_gap_change:en_in:chose_correct", "c:\nsft →\npt"] == 0  # a zero change is a cell, not a hole
    pdf, png = plot_findings_overview(table, tmp_path / "overview")
    assert pdf.stat().st_size > 0 and image.imread(png).std() > 0.05
