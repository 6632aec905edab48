"""AskRedditCountries: items, requests for both model kinds, ranks, win rates, correlations, maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from globalrep import engine
from globalrep.countries import FAVORABILITY, FAVORABILITY_2017, UNITED_STATES, load_countries
from globalrep.engine.requests import Chat, LoglikRequest, RewardRequest
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec
from globalrep.tasks import askreddit
from globalrep.tasks.base import FigureContext

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
DEMO_QUESTIONS = DEMO / "askreddit_countries.csv"
COLUMNS = ["Search Query", "Sentiment", "Questions", "Response Format", "Category"]


def write_questions(tmp_path, rows) -> Path:
    path = tmp_path / "questions.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------ items and requests


def test_prepare_reads_the_demo_questions():
    items = askreddit.prepare({}, str(DEMO_QUESTIONS))
    assert len(items) == 10 and items["item_id"].is_unique
    assert items["sentiment"].value_counts().to_dict() == {"positive": 5, "negative": 5}
    assert (items["group"] == items["sentiment"]).all()
    assert list(items.loc[0, "countries"]) == load_countries()["name"].tolist()


def test_prepare_reads_the_papers_dataset(shared_data):
    items = askreddit.prepare({}, str(shared_data / "askreddit_countries" / "AskRedditCountries_final.csv"))
    assert len(items) == 554 and items["sentiment"].value_counts().to_dict() == {"positive": 323, "negative": 231}
    assert items["category"].nunique() == 11
    assert items.loc[0, "reply"] == "I think {country} has the most wasted potential."


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (["Q", "neutral", "Which country?", "{country}.", "C"], "'neutral' is neither positive nor negative"),
        (["Q", "positive", "Which country?", "Somewhere.", "C"], "must contain {country} exactly once"),
        (["Q", "positive", " ", "{country}.", "C"], "empty question"),
    ],
)
def test_bad_rows_are_named(tmp_path, row, problem):
    good = ["Q", "negative", "Which country is loud?", "{country}.", "C"]
    with pytest.raises(GlobalrepError, match=f"row 1 .*{problem}"):
        askreddit.prepare({}, str(write_questions(tmp_path, [good, row])))


def test_missing_columns_and_files_are_named(tmp_path):
    (tmp_path / "thin.csv").write_text("Questions,Sentiment\nWhich?,positive\n")
    with pytest.raises(GlobalrepError, match="missing column.*Response Format"):
        askreddit.prepare({}, str(tmp_path / "thin.csv"))
    with pytest.raises(GlobalrepError, match="nowhere/q.csv"):
        askreddit.prepare({}, str(tmp_path / "nowhere" / "q.csv"))


def test_continuations_follow_the_replys_prefix():
    names = ["Netherlands", "Peru"]
    assert askreddit.country_continuations("I think {country} is great.", names) == (
        "I think",
        (" the Netherlands", " Peru"),
    )
    # The space the paper's rendering puts before a reply that starts with the country.
    assert askreddit.country_continuations("{country}, no contest.", names) == ("", (" The Netherlands", " Peru"))
    assert askreddit.country_continuations("Hard one. {country}.", names) == (
        "Hard one.",
        (" The Netherlands", " Peru"),
    )


def test_requests_differ_by_model_kind():
    items = askreddit.prepare({}, str(DEMO_QUESTIONS)).head(2)
    n = len(items.loc[0, "countries"])
    lm = askreddit.requests(items, {}, "lm")
    assert [type(r) for r in lm] == [LoglikRequest, LoglikRequest] and lm[0].key == "country"
    assert lm[0].context == Chat(
        messages=(("user", "Which country has the friendliest strangers you have ever met?"),),
        assistant_prefix="In my experience,",
    )
    assert len(lm[0].continuations) == n and " the United States of America" in lm[0].continuations
    rm = askreddit.requests(items, {}, "reward")
    assert [type(r) for r in rm] == [RewardRequest, RewardRequest] and rm[0].key == "reply"
    assert len(rm[0].conversations) == n
    usa = rm[1].conversations[list(items.loc[1, "countries"]).index(UNITED_STATES)]
    assert usa.messages[1] == ("assistant", "I would move to the United States of America without thinking twice.")


# ------------------------------------------------------------------------------ ranks and win rates


def test_country_scores_by_hand():
    # Rewards: q1 positive, q2 negative. Countries A, B, US; higher reward = named more readily.
    values = pd.DataFrame({"A": [3.0, 3.0], "B": [1.0, 2.0], "US": [2.0, 2.0]}, index=["q1", "q2"])
    sentiment = pd.Series({"q1": "positive", "q2": "negative"})
    scores = askreddit.country_scores(values, sentiment, higher_is_better=True, reference="US")
    got = scores.set_index(["item_id", "group", "metric"])["value"]
    # q1: A best; q2 (negative): the least named is favoured, B and US tie for first.
    assert got.xs("rank", level="metric").to_dict() == {
        ("q1", "A"): 1, ("q1", "B"): 3, ("q1", "US"): 2,
        ("q2", "A"): 3, ("q2", "B"): 1.5, ("q2", "US"): 1.5,
    }  # fmt: skip
    assert got.xs("win_rate_positive", level="metric").to_dict() == {("q1", "A"): 1.0, ("q1", "B"): 0.0}
    assert got.xs("win_rate_negative", level="metric").to_dict() == {("q2", "A"): 0.0, ("q2", "B"): 0.5}
    # The same preferences as NLL (lower = more likely) give the same ranks.
    as_nll = askreddit.country_scores(-values, sentiment, higher_is_better=False, reference="US")
    pd.testing.assert_frame_equal(as_nll, scores)
    with pytest.raises(GlobalrepError, match="reference country 'Narnia'"):
        askreddit.country_scores(values, sentiment, True, "Narnia")


def test_ranks_and_win_rates_on_the_papers_mistral_outputs(shared_data):
    """The published per-country mean per-token NLLs of Mistral-7B: ranks and win rates against
    the US computed by hand for a few countries."""
    published = pd.read_csv(
        shared_data / "paper_outputs" / "ask-reddit-perplexity-testing" / "Mistral-7B-v0.1-reformatted.csv"
    )
    countries = list(published.columns[published.columns.get_loc("use_chat_template") + 1 :])
    assert len(published) == 554 and len(countries) == 254
    values = published[countries].set_axis([f"q{i}" for i in range(len(published))])
    sentiment = pd.Series(published["Sentiment"].to_numpy(), index=values.index)
    scores = askreddit.country_scores(values, sentiment, higher_is_better=False, reference=UNITED_STATES)
    means = scores.groupby(["group", "metric"])["value"].mean()

    positive = (sentiment == "positive").to_numpy()
    us = values[UNITED_STATES]
    for country in ("United Arab Emirates", "North Korea", "Bosnia and Herzegovina", "Canada"):
        ranks = []
        for question, row in values.iterrows():
            favoured = row < row[country] if positive[values.index.get_loc(question)] else row > row[country]
            ranks.append(int(favoured.sum()) + 1)  # no ties in these files
        assert means[country, "rank"] == pytest.approx(np.mean(ranks))
        wins_positive = np.mean(values.loc[positive, country] < us[positive])
        wins_negative = np.mean(values.loc[~positive, country] > us[~positive])
        assert means[country, "win_rate_positive"] == pytest.approx(wins_positive)
        assert means[country, "win_rate_negative"] == pytest.approx(wins_negative)
    # Counted once by hand: 44 of 323 positive and 204 of 231 negative questions.
    assert means["United Arab Emirates", "win_rate_positive"] == pytest.approx(44 / 323)
    assert means["United Arab Emirates", "win_rate_negative"] == pytest.approx(204 / 231)
    assert means["North Korea", "win_rate_negative"] == pytest.approx(191 / 231)
    # "the United States of America" is long and easy to continue: by mean per-token NLL the
    # US is first on most positive questions (254 of 323) and near last on negative ones.
    us_ranks = scores[(scores["group"] == UNITED_STATES) & (scores["metric"] == "rank")]["value"].to_numpy()
    assert (us_ranks[positive] == 1).sum() == 254 and us_ranks[~positive].min() == 220


def fake_predictions(items, model_values):
    """Prediction rows as the engine writes them, from {model: (kind, questions x countries)}."""
    frames = []
    for model, (kind, values) in model_values.items():
        if kind == "reward":
            frames.append(pd.DataFrame({"item_id": items["item_id"], "reply_reward": list(values), "model": model}))
        else:
            ntokens = np.full(values.shape, 2)
            frames.append(
                pd.DataFrame(
                    {"item_id": items["item_id"], "country_logprob": list(values * ntokens),
                     "country_ntokens": list(ntokens), "model": model}
                )
            )  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_score_ranks_both_model_kinds_and_filters_small_countries():
    items = askreddit.prepare({}, str(DEMO_QUESTIONS))
    names = list(items.loc[0, "countries"])
    rng = np.random.default_rng(0)
    logprobs = -rng.uniform(1, 5, (len(items), len(names)))
    predictions = fake_predictions(items, {"lm": ("lm", logprobs), "rm": ("reward", logprobs * 2 + 1)})
    scores = askreddit.score(items, predictions, {})
    assert list(scores.columns) == ["model", "item_id", "group", "metric", "value", "sentiment"]
    kept = askreddit.kept_countries({})
    assert set(scores["group"]) == kept and "Antarctica" not in kept and len(kept) == 173
    ranks = scores[scores["metric"] == "rank"].pivot_table(index=["item_id", "group"], columns="model", values="value")
    # A reward that rises with the log-probability orders countries exactly as the NLL does.
    assert (ranks["lm"] == ranks["rm"]).all()
    assert sorted(ranks.loc[items.loc[0, "item_id"], "lm"]) == list(range(1, len(kept) + 1))
    by_metric = scores.groupby(["model", "metric"]).size()
    assert by_metric["lm", "nll"] == by_metric["lm", "nll_sum"] == len(items) * len(kept)
    assert by_metric["rm", "reward"] == len(items) * len(kept)
    nll = scores[(scores["model"] == "lm") & (scores["metric"] == "nll")].set_index(["item_id", "group"])["value"]
    assert nll[items.loc[0, "item_id"], names[0]] == pytest.approx(-logprobs[0, 0])
    everyone = askreddit.score(items, predictions, {"min_population": 0})
    assert everyone["group"].nunique() == len(names)


def test_score_rejects_answers_that_do_not_fit():
    items = askreddit.prepare({}, str(DEMO_QUESTIONS))
    short = fake_predictions(items, {"lm": ("lm", -np.ones((len(items), 5)))})
    with pytest.raises(GlobalrepError, match="5 answers for 177 countries"):
        askreddit.score(items, short, {})
    with pytest.raises(GlobalrepError, match="reference country 'Kosovo'.*min_population"):
        full = fake_predictions(items, {"lm": ("lm", -np.ones((len(items), 177)))})
        askreddit.score(items, full, {"reference": "Kosovo", "min_population": 5_000_000})


# ------------------------------------------------------------------------------ correlations


def rank_table(model_ranks: dict[str, dict[str, float]]) -> pd.DataFrame:
    rows = [(m, g, "rank", v, v, v, 1) for m, ranks in model_ranks.items() for g, v in ranks.items()]
    return pd.DataFrame(rows, columns=["model", "group", "metric", "value", "ci_low", "ci_high", "n"])


def test_correlations_between_models_and_with_us_favorability(tmp_path):
    favorability = tmp_path / "fav.csv"
    favorability.write_text("X.1,% Very/Mostly favorable\nCanada :ca:,88\nJapan :jp:,81\nIran :ir:,15\nRussia :ru:,9\n")
    table = rank_table(
        {
            "a": {"Canada": 1, "Japan": 2, "Iran": 3, "Russia": 4, "Peru": 5},
            "b": {"Canada": 2, "Japan": 1, "Iran": 4, "Russia": 3},
        }
    )
    everything = askreddit.correlation_table(table, {"us_favorability": str(favorability)})
    assert list(everything.columns) == ["a", "b", "method", "spearman", "p_value", "n"]
    got = everything[everything["method"] != "list_order"]
    assert list(zip(got["a"], got["b"])) == [("a", "b"), ("a", FAVORABILITY), ("b", FAVORABILITY)]
    assert got["method"].tolist() == ["mean_rank", "percent_rank", "percent_rank"]
    expected = stats.spearmanr([1, 2, 3, 4], [2, 1, 4, 3])
    assert got.loc[0, "spearman"] == pytest.approx(expected.statistic) and got.loc[0, "n"] == 4
    assert got.loc[0, "p_value"] == pytest.approx(expected.pvalue)
    # Most favoured by the US public = rank 1: agreeing orders correlate positively.
    assert got.loc[1, "spearman"] == pytest.approx(1.0) and got.loc[2, "spearman"] == pytest.approx(0.6)
    # Per-question scores give the same table as the per-country means.
    per_question = table.loc[table.index.repeat(2), ["model", "group", "metric", "value"]]
    pd.testing.assert_frame_equal(
        askreddit.correlation_table(per_question, {"us_favorability": str(favorability)}), everything
    )
    with pytest.raises(GlobalrepError, match="tasks.askreddit.us_favorability"):
        askreddit.correlation_table(table, {"us_favorability": str(tmp_path / "none.csv")})


def test_the_papers_list_order_correlation_and_favorability_table_by_hand(tmp_path):
    # 2023: tied percentages (Japan, Iran 50) rank 2.5 by percent but 2 and 3 in the list's own order.
    favorability = tmp_path / "fav.csv"
    favorability.write_text("X.1,% Very/Mostly favorable\nCanada :ca:,88\nJapan :jp:,50\nIran :ir:,50\nRussia :ru:,9\n")
    order = tmp_path / "order.csv"  # a 2017-style order: no percentages; Peru is not ranked by the model
    order.write_text("rank,country\n1,Russia\n2,Canada\n3,Peru\n4,Iran\n5,Japan\n6,Atlantis\n")
    table = rank_table({"m": {"Canada": 1, "Iran": 2, "Japan": 3, "Russia": 4}})
    options = {"us_favorability": str(favorability), "us_favorability_2017": str(order)}
    got = askreddit.correlation_table(table, options).set_index(["b", "method"])
    percent = stats.spearmanr([1, 2, 3, 4], [1, 2.5, 2.5, 4]).statistic  # Canada, Iran, Japan, Russia
    assert got.loc[(FAVORABILITY, "percent_rank"), "spearman"] == pytest.approx(percent)
    assert got.loc[(FAVORABILITY, "list_order"), "spearman"] == pytest.approx(
        stats.spearmanr([1, 2, 3, 4], [1, 3, 2, 4]).statistic
    )
    # 2017: Russia 1, Canada 2, Iran 4 (3rd), Japan 5 (4th) against mean ranks 4, 1, 2, 3:
    # d = 3, -1, -1, -1, so rho = 1 - 6 * 12 / (4 * 15) = -0.2.
    assert got.loc[(FAVORABILITY_2017, "list_order"), "spearman"] == pytest.approx(-0.2)
    assert got.loc[(FAVORABILITY_2017, "list_order"), "n"] == 4
    listed = askreddit.favorability_table(table, options)
    assert list(listed.columns) == ["model", "list", "country", "mean_rank", "list_rank"]
    rows = listed[listed["list"] == FAVORABILITY_2017][["country", "mean_rank", "list_rank"]].values.tolist()
    assert rows == [["Russia", 4, 1], ["Canada", 1, 2], ["Iran", 2, 4], ["Japan", 3, 5]]
    order.write_text("rank,country\n1,Russia\nfirst,Canada\n")
    with pytest.raises(GlobalrepError, match="row 3.*not a whole number"):
        askreddit.correlation_table(table, options)


def test_population_filter_after_ranking_ranks_among_all_countries():
    # Three countries, one of them tiny: by NLL the tiny one is most likely on a positive question.
    countries = ["Big", "Tiny", UNITED_STATES]
    values = pd.DataFrame([[2.0, 1.0, 3.0]], index=["q"], columns=countries)
    sentiment = pd.Series({"q": "positive"})
    before = askreddit.country_scores(values[["Big", UNITED_STATES]], sentiment, False, UNITED_STATES)
    after = askreddit.country_scores(values, sentiment, False, UNITED_STATES)
    rank = lambda frame: frame[(frame["metric"] == "rank") & (frame["group"] == "Big")]["value"].item()  # noqa: E731
    assert rank(before) == 1 and rank(after) == 2
    with pytest.raises(GlobalrepError, match="population_filter"):
        askreddit.population_filter({"population_filter": "sometimes"})


def test_too_few_countries_give_no_correlation():
    got = askreddit.correlation_table(rank_table({"a": {"Peru": 1, "Chile": 2}, "b": {"Peru": 2, "Chile": 1}}), {})
    assert got["n"].tolist() == [2] and np.isnan(got.loc[0, "spearman"]) and np.isnan(got.loc[0, "p_value"])


# ------------------------------------------------------------------------------ end to end


def test_tiny_models_answer_every_country_and_maps_are_drawn(tiny_lm_dir, tiny_rm_dir, tmp_path, one_torch_thread):
    items = askreddit.prepare({}, str(DEMO_QUESTIONS)).iloc[[0, 5]].reset_index(drop=True)
    options = {"us_favorability": str(DEMO / "us_favorability_example.csv")}
    predictions = []
    for name, path, kind in (("lm", tiny_lm_dir, "lm"), ("rm", tiny_rm_dir, "reward")):
        spec = ModelSpec(name=name, path=str(path), kind=kind, chat_template=True, dtype="float32", batch_size=64)
        answers = engine.answer(spec, askreddit.requests(items, options, kind), {"device": "cpu"})
        predictions.append(answers.assign(model=name))
    scores = askreddit.score(items, pd.concat(predictions, ignore_index=True), options)
    assert scores.groupby(["model", "metric"]).size().to_dict() == {
        ("lm", "nll"): 2 * 173, ("lm", "nll_sum"): 2 * 173, ("lm", "rank"): 2 * 173,
        ("lm", "win_rate_negative"): 172, ("lm", "win_rate_positive"): 172,
        ("rm", "rank"): 2 * 173, ("rm", "reward"): 2 * 173,
        ("rm", "win_rate_negative"): 172, ("rm", "win_rate_positive"): 172,
    }  # fmt: skip
    assert (scores.loc[scores["metric"] == "nll", "value"] > 0).all()
    means = scores.groupby(["model", "group", "metric"], as_index=False)["value"].mean()
    table = means.assign(ci_low=means["value"], ci_high=means["value"], n=2)  # the table's shape, no bootstrap
    correlations = askreddit.EXTRA_TABLES["country_correlations"](scores, {}, options)
    correlations = correlations[correlations["method"] != "list_order"]
    assert list(zip(correlations["a"], correlations["b"])) == [("lm", "rm"), ("lm", FAVORABILITY), ("rm", FAVORABILITY)]
    assert correlations["n"].tolist() == [173, 12, 12]
    written = askreddit.figures(table, None, FigureContext(tmp_path), options)
    assert sorted(path.name for path in written) == sorted(
        f"askreddit_{stem}.{suffix}"
        for stem in ("rank_map_lm", "rank_map_rm", "correlations")
        for suffix in ("pdf", "png")
    )
    assert all(path.stat().st_size > 10_000 for path in written)
