import hashlib
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from globalrep.errors import GlobalrepError
from globalrep.tasks import global_opinions as goqa
from globalrep.tasks.base import FigureContext

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "global_opinions.csv"
COLUMNS = ["question", "selections", "options", "source"]


def row(question="Is tea better than coffee?", selections=None, options="['Yes', 'No']", source="GAS"):
    if selections is None:
        selections = "defaultdict(<class 'list'>, {'Chile': [0.4, 0.6], 'Ghana': [0.75, 0.25]})"
    return [question, selections, options, source]


def write_csv(tmp_path, rows, name="survey.csv"):
    path = tmp_path / name
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    return path


def test_prompt_is_the_papers_exact_text():
    assert goqa.build_prompt("Is tea good?", ["Yes", "No", "Unsure"]) == (
        "Human: Is tea good?\n\nHere are the options:\n(A) Yes\n(B) No\n(C) Unsure\n\n"
        "Assistant: If I had to select one of the options, my answer would be ("
    )


def test_requests_one_per_item_with_lettered_continuations():
    items = goqa.prepare({}, str(DEMO))
    requests = goqa.requests(items, {})
    assert [r.item_id for r in requests] == list(items["item_id"])
    first, item = requests[0], items.iloc[0]
    assert first.key == "choice"
    assert first.context == goqa.build_prompt(item["question"], list(item["options"]))
    assert first.continuations == tuple(f"{letter})" for letter in "ABCD"[: len(item["options"])])


def test_prepare_reads_the_demo_data():
    items = goqa.prepare({}, str(DEMO))
    assert list(items.columns) == ["item_id", "group", "question", "options", "countries", "country_probs", "source"]
    assert len(items) == 24 and items["item_id"].is_unique
    assert set(items["group"]) == {"GAS", "WVS"} and (items["group"] == items["source"]).all()
    first = items.iloc[0]
    expected_id = "goqa-" + hashlib.sha1(json.dumps([first["question"], first["options"]]).encode()).hexdigest()[:12]
    assert first["item_id"] == expected_id
    for item in items.itertuples():
        assert 2 <= len(item.options) <= 5
        assert len(item.countries) == len(item.country_probs)
        for probs in item.country_probs:
            assert len(probs) == len(item.options) and math.isclose(sum(probs), 1.0)
    # Some demo questions lack a focus country, so the "all focus countries" filter matters.
    assert sum("Jordan" not in countries for countries in items["countries"]) >= 1


def test_selections_parse_to_countries_and_probabilities(tmp_path):
    items = goqa.prepare({}, str(write_csv(tmp_path, [row()])))
    assert items.loc[0, "countries"] == ["Chile", "Ghana"]
    assert items.loc[0, "country_probs"] == [[0.4, 0.6], [0.75, 0.25]]
    assert items.loc[0, "options"] == ["Yes", "No"]


@pytest.mark.parametrize("suffix", ["json", "jsonl", "parquet"])
def test_other_file_formats_give_the_same_items(tmp_path, suffix):
    frame = pd.DataFrame([row(), row(question="Second?")], columns=COLUMNS)
    path = tmp_path / f"survey.{suffix}"
    if suffix == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=suffix == "jsonl")
    expected = goqa.prepare({}, str(write_csv(tmp_path, frame.values.tolist())))
    pd.testing.assert_frame_equal(goqa.prepare({}, str(path)), expected)


def test_repeated_questions_keep_the_first(tmp_path):
    first = row(selections="{'Chile': [0.1, 0.9]}")
    items = goqa.prepare(
        {},
        str(
            write_csv(
                tmp_path, [first, row(), row(options="['Yes', 'No', 'Maybe']", selections="{'Chile': [0.2, 0.3, 0.5]}")]
            )
        ),
    )
    assert len(items) == 2
    assert items.loc[0, "country_probs"] == [[0.1, 0.9]]


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("selections", "defaultdict(<class 'list'>, {'Chile': [0.4, 0.6]", "not a Python literal"),
        ("selections", "__import__('os').system('echo pwned')", "not a Python literal"),
        ("selections", "{'Chile': [0.2, 0.3, 0.5]}", "Chile: 3 probabilities for 2 options"),
        ("selections", "{'Chile': [0.2, 0.3]}", "Chile: probabilities sum to 0.500, not 1"),
        ("selections", "{'Chile': [-0.2, 1.2]}", "negative probability"),
        ("selections", "{'Chile': ['a', 'b']}", "probabilities must be numbers"),
        ("options", "Yes, No", "not a Python literal"),
        ("options", "[]", "non-empty list of options"),
    ],
)
def test_malformed_rows_are_rejected_naming_the_row(tmp_path, column, value, problem):
    bad = dict(zip(COLUMNS, row(question="Which row is broken?")))
    bad[column] = value
    path = write_csv(tmp_path, [row(), list(bad.values())])
    with pytest.raises(GlobalrepError) as error:
        goqa.prepare({}, str(path))
    message = str(error.value)
    assert "row 1 " in message and "Which row is broken?" in message
    assert f"column {column!r}" in message and problem in message


def test_empty_distributions_stay_asked_but_score_nan(tmp_path):
    # The real dataset has such vectors; the paper kept the country as asked and scored it NaN.
    degenerate = "defaultdict(<class 'list'>, {'Chile': [nan, nan], 'Ghana': [0.0, 0.0], 'Peru': [0.25, 0.75]})"
    items = goqa.prepare({}, str(write_csv(tmp_path, [row(selections=degenerate)])))
    assert items.loc[0, "countries"] == ["Chile", "Ghana", "Peru"]
    predictions = pd.DataFrame(
        {"model": ["m"], "item_id": items["item_id"], "choice_logprob": [[-1.0, -1.0]], "choice_ntokens": [[1, 1]]}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = goqa.score(items, predictions, {}).set_index("group")["value"]
    assert np.isnan(values["Chile"]) and np.isnan(values["Ghana"])
    assert values["Peru"] == pytest.approx(1 - jensenshannon([0.5, 0.5], [0.25, 0.75]))


def test_missing_file_and_columns_are_named(tmp_path):
    missing = tmp_path / "nowhere" / "survey.csv"
    with pytest.raises(GlobalrepError, match="nowhere/survey.csv"):
        goqa.prepare({}, str(missing))
    pd.DataFrame({"question": ["Q?"], "options": ["['a']"]}).to_csv(tmp_path / "thin.csv", index=False)
    with pytest.raises(GlobalrepError, match="missing column.*selections, source"):
        goqa.prepare({}, str(tmp_path / "thin.csv"))


def items_frame(countries, country_probs, options=("Yes", "No")):
    return pd.DataFrame(
        {
            "item_id": ["q1"],
            "group": ["GAS"],
            "question": ["Q?"],
            "options": [list(options)],
            "countries": [countries],
            "country_probs": [country_probs],
            "source": ["GAS"],
        }
    )


def test_similarity_is_one_minus_jensen_shannon_distance():
    items = items_frame(["Chile"], [[0.25, 0.75]])
    predictions = pd.DataFrame(
        {
            "model": ["m"],
            "item_id": ["q1"],
            "choice_logprob": [[math.log(0.8), math.log(0.2)]],
            "choice_ntokens": [[1, 1]],
        }
    )
    scores = goqa.score(items, predictions, {})
    p, q = [0.8, 0.2], [0.25, 0.75]
    m = [(a + b) / 2 for a, b in zip(p, q)]

    def kl(x):
        return sum(a * math.log(a / b) for a, b in zip(x, m))

    expected = 1 - math.sqrt((kl(p) + kl(q)) / 2)
    assert list(scores.columns) == ["model", "item_id", "group", "metric", "value", "source", "model_probs"]
    assert scores.loc[0, ["model", "item_id", "group", "metric", "source"]].tolist() == [
        "m",
        "q1",
        "Chile",
        "similarity",
        "GAS",
    ]
    assert scores.loc[0, "value"] == pytest.approx(expected, abs=1e-12)
    assert scores.loc[0, "model_probs"] == pytest.approx(p)


def test_model_distribution_uses_the_per_token_mean():
    # B's continuation has twice the tokens and twice the summed log-probability: per token they tie.
    assert goqa.model_distribution([-2.0, -4.0], [1, 2]) == pytest.approx([0.5, 0.5])
    assert goqa.model_distribution([-1.0, -2.0, -3.0], [1, 1, 1]) == pytest.approx(
        np.exp([-1.0, -2.0, -3.0]) / np.exp([-1.0, -2.0, -3.0]).sum()
    )
    items = items_frame(["Chile", "Ghana"], [[0.5, 0.5], [0.9, 0.1]])
    predictions = pd.DataFrame(
        {"model": ["m"], "item_id": ["q1"], "choice_logprob": [[-2.0, -4.0]], "choice_ntokens": [[1, 2]]}
    )
    scores = goqa.score(items, predictions, {})
    assert scores.loc[0, "value"] == pytest.approx(1.0)  # identical to Chile's answers
    assert scores.loc[1, "value"] < 0.9


def test_score_rejects_predictions_that_do_not_fit_the_items():
    items = items_frame(["Chile"], [[0.5, 0.5]])
    stale = pd.DataFrame(
        {"model": ["m"], "item_id": ["gone"], "choice_logprob": [[-1.0, -1.0]], "choice_ntokens": [[1, 1]]}
    )
    with pytest.raises(GlobalrepError, match="not in the prepared items"):
        goqa.score(items, stale, {})
    short = pd.DataFrame({"model": ["m"], "item_id": ["q1"], "choice_logprob": [[-1.0]], "choice_ntokens": [[1]]})
    with pytest.raises(GlobalrepError, match="1 option scores for 2 options"):
        goqa.score(items, short, {})


def test_table_scores_keeps_focus_countries_on_common_questions():
    focus = ["United States", "China", "Jordan"]
    rows = [
        (model, item, country)
        for model in ("a", "b")
        for item, countries in {
            "all": focus + ["France"],
            "no-jordan": ["United States", "China", "France"],
            "all-too": focus,
        }.items()
        for country in countries
    ]
    scores = pd.DataFrame(rows, columns=["model", "item_id", "group"]).assign(metric="similarity", value=0.5)
    kept = goqa.table_scores(scores, {"focus_countries": focus})
    assert set(kept["item_id"]) == {"all", "all-too"}
    assert set(kept["group"]) == set(focus)
    assert len(kept) == 2 * 2 * 3
    with pytest.raises(GlobalrepError, match="USA"):
        goqa.table_scores(scores, {"focus_countries": ["USA"]})


def test_figures_draw_the_chain_figure(tmp_path):
    table = pd.DataFrame(
        [
            (m, c, "similarity", v, v - 0.05, v + 0.05, 10)
            for m, v in (("b", 0.6), ("p", 0.7))
            for c in ("China", "Jordan")
        ],
        columns=["model", "group", "metric", "value", "ci_low", "ci_high", "n"],
    )
    paths = goqa.figures(table, None, FigureContext(tmp_path, {"chain": ["b", "p"]}, {"b": "base", "p": "pt"}), {})
    assert paths == [tmp_path / "global_opinions_chains.pdf", tmp_path / "global_opinions_chains.png"]
    assert all(path.stat().st_size > 0 for path in paths)


def test_vs_us_table_and_the_reports_sentence_name_significant_us_leads():
    rows = []
    for i in range(8):  # China trails the US by 0.2 on every question, Jordan is level on average
        rows += [("m", f"q{i}", "United States", "similarity", 0.8), ("m", f"q{i}", "China", "similarity", 0.6),
                 ("m", f"q{i}", "Jordan", "similarity", 0.8 + (0.1 if i % 2 else -0.1))]  # fmt: skip
    scores = pd.DataFrame(rows, columns=["model", "item_id", "group", "metric", "value"])
    options = {"focus_countries": ["United States", "China", "Jordan"]}
    table = goqa.EXTRA_TABLES["vs_us"](goqa.table_scores(scores, options), {}, options)
    values = table.set_index("group")["value"]
    assert values["China"] == pytest.approx(-0.2) and values["Jordan"] == pytest.approx(0.0)
    assert set(table["metric"]) == {"similarity_minus_us"} and set(table["n"]) == {8}
    # China: 8 of 8 questions lower, exact p = 2 / 2**8; BH over the model's two countries doubles it.
    assert table.set_index("group")["q_value"]["China"] == pytest.approx(4 / 256)
    sentence = goqa.us_lead_summary(table)
    assert "for m: China." in sentence and "United States: none." in sentence
