"""AskRedditCountries (Ryan, Held & Yang 2024): which countries does a model favour in its answers?

Each question ("Which country makes the best food?") comes with a reply that names a country
("Easily {country}."). A reward model scores question + reply for every country; a language
model scores the country's name after the question and the reply's text before ``{country}``
(mean per-token negative log-likelihood, lower = more likely; the sum too). Per question the
countries are ranked, best first: highest reward or lowest NLL on positive questions, the
reverse on negative ones. Per country: the mean rank, and the win rates against the United
States on positive and on negative questions (a win = the model favours the country over the
US: prefers it on a positive question, avoids it more on a negative one; a tie counts half).
Countries below a minimum population are left out before ranking (``population_filter:
before_ranking``), or, as in the paper, after ranking among all countries (``after_ranking``).

Correlations (``country_correlations.csv``, Spearman; rank 1 = most favoured everywhere, so a
positive correlation means agreement), each row naming its ``method``: ``mean_rank`` between every
two models' mean ranks; ``percent_rank`` between a model's mean ranks and the ranks of the US
public's % favorable (Gallup 2023; tied percentages share a rank); and the paper's
``list_order``, between a model's mean ranks of the countries on a Gallup list and that list's own
order, for the 2023 list and the 2017 list (an order only). ``us_favorability.csv`` lists each
model's mean rank of every listed country beside its rank on the list. By default these use the
ranks above; with ``correlation_countries`` (the paper's: ``paper``, 181 names), each question's
countries are ranked again among that set only (``correlation_rank``), as the paper's analysis
ranked them, and the correlations use those ranks.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from globalrep import published_files as pf
from globalrep.countries import (
    DEFAULT_ARTICLES,
    FAVORABILITY,
    FAVORABILITY_2017,
    PAPER_CORRELATION_COUNTRIES,
    PAPER_FAVORABILITY_2017,
    PLACEHOLDER,
    bundled_or_path,
    check_template,
    country_phrase,
    fill_reply,
    load_countries,
    read_country_set,
    read_favorability_order,
    read_us_favorability,
    starts_sentence,
)
from globalrep.digests import content_id
from globalrep.engine.answers import Answers, loglik_answer, prediction_frame, reward_answer
from globalrep.engine.requests import Chat, LoglikRequest, RewardRequest
from globalrep.errors import GlobalrepError
from globalrep.sources import read_records, require_columns
from globalrep.tasks.base import FigureContext, check_known_items, load_options_schema, option_defaults

NAME = "askreddit"
PROMPT_VERSION = (
    "3"  # 2: a reply starting with {country} scores the space before it; 3: the paper's "Republic" article rule
)
MODEL_KINDS = ("lm", "reward")
AXIS = "opinions"  # the report's section: dialects | languages | opinions
# The options and their defaults: askreddit.schema.yaml beside this module.
OPTIONS_SCHEMA = load_options_schema(__file__)
DEFAULTS = option_defaults(OPTIONS_SCHEMA)
# Options that change only scoring: editing them reruns no inference.
SCORE_ONLY_OPTIONS = ("min_population", "population_filter", "reference", "us_favorability", "us_favorability_2017")

DEFAULT_SOURCE = DEFAULTS["source"]
DEFAULT_MIN_POPULATION = DEFAULTS["min_population"]
POPULATION_FILTERS = ("before_ranking", "after_ranking")
REQUIRED_COLUMNS = ("Questions", "Sentiment", "Response Format")
OPTIONAL_COLUMNS = ("Search Query", "Category")
SENTIMENTS = ("positive", "negative")
CORRELATION_COLUMNS = ["a", "b", "method", "spearman", "p_value", "n"]
FAVORABILITY_COLUMNS = ["model", "list", "country", "mean_rank", "list_rank"]
# The correlations' ranks: the map's (``rank``) unless ``correlation_countries`` names a set.
ALL_COUNTRIES = "all"
CORRELATION_RANK = "correlation_rank"

log = logging.getLogger(__name__)

# The published files' columns before the countries (the perplexity and the reward layout).
PUBLISHED_META_COLUMNS = frozenset(
    ("Question", "Full Prompt", "model", "reward_model", "Search Query", "Sentiment",
     "Response Format", "Category", "seed", "add_article", "use_chat_template")
)  # fmt: skip


def item_id(question: str, reply: str) -> str:
    return content_id("askr", question, reply)


# ---------------------------------------------------------------------------------- prepare


def prepare(options: dict, source: str | None = None) -> pd.DataFrame:
    """One row per question: ``item_id, group (= sentiment), question, reply, sentiment,
    category, search_query, countries`` (the country list's names, in its order, then those of
    the ``correlation_countries`` set that the list lacks)."""
    source = source or DEFAULT_SOURCE
    raw = read_records(source, options.get("split", DEFAULTS["split"]), "AskRedditCountries", DEFAULT_SOURCE)
    require_columns(
        raw,
        REQUIRED_COLUMNS,
        source,
        f"AskRedditCountries needs {', '.join(REQUIRED_COLUMNS)} (and optionally {', '.join(OPTIONAL_COLUMNS)})",
    )
    countries = load_countries(options.get("countries")).get("name").tolist()
    countries += [name for name in correlation_set(options) or [] if name not in countries]
    rows = []
    for index, record in enumerate(raw.to_dict("records")):
        question = str(record["Questions"]).strip()
        reply = str(record["Response Format"]).strip()
        sentiment = str(record["Sentiment"]).strip().lower()
        where = f"{source}: row {index} (counting from 0; question {question[:60]!r})"
        if not question:
            raise GlobalrepError(f"{where}: empty question")
        if sentiment not in SENTIMENTS:
            raise GlobalrepError(f"{where}: Sentiment {record['Sentiment']!r} is neither positive nor negative")
        check_template(reply, where)
        rows.append(
            {
                "item_id": item_id(question, reply),
                "group": sentiment,
                "question": question,
                "reply": reply,
                "sentiment": sentiment,
                "category": str(record.get("Category", "")),
                "search_query": str(record.get("Search Query", "")),
                "countries": countries,
            }
        )
    frame = pd.DataFrame(rows)
    duplicates = frame["item_id"].duplicated()
    if duplicates.any():
        log.info("%s: dropped %d repeated (question, reply) rows, keeping the first", source, int(duplicates.sum()))
    return frame[~duplicates].reset_index(drop=True)


# --------------------------------------------------------------------------------- requests


def country_continuations(
    reply: str, countries: list[str], articles: str = DEFAULT_ARTICLES
) -> tuple[str, tuple[str, ...]]:
    """The reply's text before ``{country}`` (the assistant's prefix) and each country's
    continuation after it. The continuation starts with one space, where tokenizers put it
    ("I think" + " the Netherlands"), also for a reply that starts with the country: the context
    (the question's rendering) ends without whitespace, as the paper cut it."""
    before = reply.split(PLACEHOLDER, 1)[0]
    start = starts_sentence(before)
    return before.rstrip(), tuple(" " + country_phrase(country, start, articles) for country in countries)


def requests(items: pd.DataFrame, options: dict, model_kind: str = "lm") -> list[LoglikRequest | RewardRequest]:
    """Per question, for a reward model: question + filled reply, one conversation per country
    (key ``reply``); for a language model: one request scoring every country's name after the
    question and the reply's prefix (key ``country``), packed into shared-context forwards."""
    articles = options.get("articles", DEFAULTS["articles"])
    made = []
    for item in items.itertuples(index=False):
        countries = list(item.countries)
        if model_kind == "reward":
            conversations = tuple(
                Chat(messages=(("user", item.question), ("assistant", fill_reply(item.reply, country, articles))))
                for country in countries
            )
            made.append(RewardRequest(item_id=item.item_id, key="reply", conversations=conversations))
        else:
            prefix, continuations = country_continuations(item.reply, countries, articles)
            context = Chat(messages=(("user", item.question),), assistant_prefix=prefix)
            made.append(
                LoglikRequest(item_id=item.item_id, key="country", context=context, continuations=continuations)
            )
    return made


# ------------------------------------------------------------------------------------ score


def favour(values: pd.DataFrame, sentiment: pd.Series, higher_is_better: bool) -> pd.DataFrame:
    """How much the model favours each country on each question (rows: questions, columns:
    countries), higher = more favoured: the value (reward) or its negative (NLL), negated again
    on negative questions."""
    sign = np.where(sentiment.reindex(values.index).to_numpy() == "negative", -1.0, 1.0)
    oriented = values if higher_is_better else -values
    return oriented.mul(sign, axis=0)


def country_scores(values: pd.DataFrame, sentiment: pd.Series, higher_is_better: bool, reference: str) -> pd.DataFrame:
    """Per question and country (``values``: rows = item_id, columns = countries): ``rank``
    (1 = most favoured; ties share the mean rank) and ``win_rate_{sentiment}`` (1 when the
    country is favoured over ``reference``, 0.5 on a tie, 0 otherwise; none for ``reference``).
    Long rows ``item_id, group, metric, value, sentiment``."""
    if reference not in values.columns:
        raise GlobalrepError(
            f"{NAME}: the reference country {reference!r} is not among the scored countries "
            "(config key 'tasks.askreddit.reference'; is it below min_population?)"
        )
    favoured = favour(values, sentiment, higher_is_better)
    ranks = rank_countries(favoured)
    wins = np.sign(favoured.sub(favoured[reference], axis=0)).add(1).div(2)
    wins = wins.drop(columns=reference)
    frames = [_long(ranks, "rank", sentiment)]
    for label in SENTIMENTS:
        rows = sentiment.reindex(wins.index) == label
        frames.append(_long(wins[rows.to_numpy()], f"win_rate_{label}", sentiment))
    return pd.concat(frames, ignore_index=True)


def rank_countries(favoured: pd.DataFrame) -> pd.DataFrame:
    """Per question, each country's rank among the columns (1 = most favoured; ties share the
    mean rank)."""
    return favoured.rank(axis=1, ascending=False, method="average")


def _long(wide: pd.DataFrame, metric: str, sentiment: pd.Series) -> pd.DataFrame:
    """Rows ``item_id, group, metric, value, sentiment`` of a (questions x countries) frame."""
    long = wide.rename_axis(index="item_id", columns="group").stack(future_stack=True).rename("value").reset_index()
    long.insert(2, "metric", metric)
    long["sentiment"] = long["item_id"].map(sentiment)
    return long.dropna(subset=["value"])


def model_values(rows: pd.DataFrame, items: pd.DataFrame, model: str) -> tuple[dict[str, pd.DataFrame], bool]:
    """One model's answers as (questions x countries) frames: ``{"reward": ...}`` for a reward
    model; ``{"nll": ..., "nll_sum": ...}`` for a language model. Also whether higher is better."""
    rows = rows.set_index("item_id")
    countries = items.set_index("item_id")["countries"]
    is_reward = "reply_reward" in rows.columns and rows["reply_reward"].notna().all()
    has_loglik = "country_logprob" in rows.columns and rows["country_logprob"].notna().all()
    if not (is_reward or has_loglik):
        raise GlobalrepError(f"{NAME}: model {model!r} has neither rewards nor log-likelihoods; rerun its inference")

    def matrix(column: str) -> np.ndarray:
        lists = rows[column]
        bad = [item for item, value in lists.items() if len(value) != len(countries[item])]
        if bad:
            raise GlobalrepError(
                f"{NAME}: model {model!r}, item {bad[0]}: {len(lists[bad[0]])} answers for "
                f"{len(countries[bad[0]])} countries; rerun inference on the current prepared data"
            )
        return np.stack([np.asarray(value, dtype=float) for value in lists])

    names = list(countries[rows.index[0]])
    if any(list(countries[item]) != names for item in rows.index):
        raise GlobalrepError(f"{NAME}: the prepared questions do not share one country list; prepare the task again")

    def frame(array: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(array, index=rows.index, columns=names)

    if is_reward:
        return {"reward": frame(matrix("reply_reward"))}, True
    logprob, ntokens = matrix("country_logprob"), matrix("country_ntokens")
    if (ntokens <= 0).any():
        raise GlobalrepError(f"{NAME}: model {model!r}: a country continuation has no tokens")
    if "published" in rows.columns and rows["published"].eq(True).all():
        return {"nll": frame(-logprob / ntokens)}, False  # the paper published the per-token mean only
    return {"nll": frame(-logprob / ntokens), "nll_sum": frame(-logprob)}, False


def score(items: pd.DataFrame, predictions: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Long per-question scores ``model, item_id, group (= country), metric, value, sentiment``:
    ``rank``, ``win_rate_positive`` / ``win_rate_negative``, and the raw ``reward`` or ``nll``
    and ``nll_sum``, for the countries with at least ``min_population`` people, ranked among
    those (``population_filter: before_ranking``) or among all countries of the list
    (``after_ranking``); with a ``correlation_countries`` set also ``correlation_rank``, the rank
    among that set's countries only (whatever their population)."""
    check_known_items(NAME, items, predictions)
    listed = set(load_countries(options.get("countries"))["name"])
    kept = kept_countries(options)
    in_set = correlation_set(options)
    rank_all = population_filter(options) == "after_ranking"
    reference = options.get("reference", DEFAULTS["reference"])
    sentiment = items.set_index("item_id")["sentiment"]
    frames = []
    for model, rows in predictions.groupby("model", sort=False):
        raw, higher_is_better = model_values(rows, items, model)
        ranked = raw["reward" if higher_is_better else "nll"]  # the paper ranks by per-token NLL
        on_list = ranked[[country for country in ranked.columns if country in listed]]
        columns = [country for country in on_list.columns if country in kept]
        for metric, values in raw.items():
            frames.append(_long(values[columns], metric, sentiment).assign(model=model))
        countries = country_scores(on_list if rank_all else on_list[columns], sentiment, higher_is_better, reference)
        frames.append(countries[countries["group"].isin(kept)].assign(model=model))
        if in_set is not None:
            absent = [country for country in in_set if country not in ranked.columns]
            if absent:
                raise GlobalrepError(
                    f"{NAME}: the prepared questions lack {len(absent)} countries of 'correlation_countries' "
                    f"({', '.join(absent[:5])}); prepare the task again"
                )
            set_ranks = rank_countries(favour(ranked[in_set], sentiment, higher_is_better))
            frames.append(_long(set_ranks, CORRELATION_RANK, sentiment).assign(model=model))
    if not frames:
        return pd.DataFrame(columns=["model", "item_id", "group", "metric", "value", "sentiment"])
    scores = pd.concat(frames, ignore_index=True)
    return scores[["model", "item_id", "group", "metric", "value", "sentiment"]]


def population_filter(options: dict) -> str:
    """When small countries are left out: ``before_ranking`` (default) or ``after_ranking`` (the paper)."""
    order = options.get("population_filter", DEFAULTS["population_filter"])
    if order not in POPULATION_FILTERS:
        raise GlobalrepError(
            f"config key 'tasks.{NAME}.population_filter' is {order!r}; use one of {', '.join(POPULATION_FILTERS)}"
        )
    return order


def correlation_set(options: dict) -> list[str] | None:
    """The countries the correlations rank among (``correlation_countries``): None for ``all``
    (they use the ranks of ``score``); else the set's names (``paper``: the paper's 181, bundled),
    under the country list's name where Natural Earth renamed one since the set was written (the
    paper's "Czech Republic" is our "Czechia")."""
    value = options.get("correlation_countries", DEFAULTS["correlation_countries"])
    if value == ALL_COUNTRIES:
        return None
    names = read_country_set(bundled_or_path(value, PAPER_CORRELATION_COUNTRIES))
    listed = set(load_countries(options.get("countries"))["name"])
    renamed = {old: new for new, old in pf.OLD_NATURAL_EARTH_NAMES.items() if new in listed}
    return [name if name in listed else renamed.get(name, name) for name in names]


def kept_countries(options: dict) -> set[str]:
    """Names of the countries with at least ``min_population`` people (Natural Earth POP_EST)."""
    countries = load_countries(options.get("countries"))
    minimum = options.get("min_population", DEFAULT_MIN_POPULATION)
    kept = countries.loc[countries["population"] >= minimum, "name"]
    log.info("%d of %d countries have at least %s people", len(kept), len(countries), f"{minimum:,}")
    return set(kept)


# ----------------------------------------------------------------------------- correlations


def correlation_table(scores: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Spearman correlations ``a, b, method, spearman, p_value, n``: ``mean_rank`` between every
    two models' mean ranks; with ``us_favorability`` set, ``percent_rank`` between each model's
    mean ranks and the ranks of the % favorable (1 = most favourable) as ``us_favorability_2023``;
    then the paper's ``list_order`` between each model's mean ranks and each configured list's own
    order (``us_favorability_2023``, ``us_favorability_2017``). ``scores`` are per-question scores
    or the ``askreddit.csv`` table (its values are already the means). ``n`` counts the countries
    both sides rank; fewer than 3 give no correlation."""
    models = mean_ranks(scores, options)
    lists = favorability_lists(options)
    series = dict(models)
    if FAVORABILITY in lists:
        percent = lists[FAVORABILITY].set_index("name")["favorability"]
        series[FAVORABILITY] = percent.rank(ascending=False)
    rows = []
    for a, b in combinations(series, 2):
        rows.append((a, b, "percent_rank" if b == FAVORABILITY else "mean_rank", *_correlation(series[a], series[b])))
    for model, ranks in models.items():
        for label, listed in lists.items():
            rows.append((model, label, "list_order", *_correlation(ranks, listed.set_index("name")["list_rank"])))
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def favorability_table(scores: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Per model and configured Gallup list, each listed country the model ranks: ``model, list,
    country, mean_rank, list_rank`` (1 = most favoured / favourable), in list order."""
    lists = favorability_lists(options)
    rows = [
        (model, label, country.name, ranks[country.name], country.list_rank)
        for model, ranks in mean_ranks(scores, options).items()
        for label, listed in lists.items()
        for country in listed.itertuples(index=False)
        if country.name in ranks.index
    ]
    return pd.DataFrame(rows, columns=FAVORABILITY_COLUMNS)


def mean_ranks(scores: pd.DataFrame, options: dict) -> dict[str, pd.Series]:
    """``{model: mean rank per country}``, models in order of appearance: the ranks among the
    ``correlation_countries`` set where one is configured, else the ranks of ``score``."""
    metric = "rank" if correlation_set(options) is None else CORRELATION_RANK
    ranks = scores[scores["metric"] == metric].groupby(["model", "group"], sort=False)["value"].mean()
    return {model: ranks.xs(model) for model in ranks.index.unique("model")}


def favorability_lists(options: dict) -> dict[str, pd.DataFrame]:
    """The configured Gallup lists, ``{label: name, code, list_rank[, favorability]}``: the 2023
    list (``us_favorability``, its own order is its row order) and the 2017 order
    (``us_favorability_2017``; ``paper``: the paper's, bundled)."""
    countries = None
    lists = {}
    for key, label in (("us_favorability", FAVORABILITY), ("us_favorability_2017", FAVORABILITY_2017)):
        path = options.get(key)
        if not path:
            continue
        if key == "us_favorability_2017":
            path = str(bundled_or_path(path, PAPER_FAVORABILITY_2017))
        if not Path(path).is_file():
            raise GlobalrepError(
                f"US favorability file {path!r} does not exist (config key 'tasks.{NAME}.{key}', "
                "relative to the working directory)"
            )
        countries = load_countries(options.get("countries")) if countries is None else countries
        if key == "us_favorability":
            listed = read_us_favorability(path, countries)
            lists[label] = listed.assign(list_rank=range(1, len(listed) + 1))
        else:
            lists[label] = read_favorability_order(path, countries)
    return lists


def _correlation(x: pd.Series, y: pd.Series) -> tuple[float, float, int]:
    """Spearman of two per-country series over the countries both have: ``(rho, p, n)``."""
    common = x.index.intersection(y.index)
    return (*_spearman(x[common], y[common]), len(common))


def _spearman(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    from scipy import stats  # imported here: see globalrep.stats

    if len(x) < 3 or x.nunique() < 2 or y.nunique() < 2:
        return (np.nan, np.nan)  # no correlation to measure, rather than scipy's warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        result = stats.spearmanr(x.to_numpy(), y.to_numpy())
    return (float(result.statistic), float(result.pvalue))


# Written as results/tables/askreddit_country_correlations.csv and askreddit_us_favorability.csv.
EXTRA_TABLES = {
    "country_correlations": lambda scores, chains, options: correlation_table(scores, options),
    "us_favorability": lambda scores, chains, options: favorability_table(scores, options),
}


# ---------------------------------------------------------------------------------- figures


def figures(tables: pd.DataFrame, deltas: pd.DataFrame, context: FigureContext, options: dict) -> list[Path]:
    """Per model a world map of the mean rank; one heatmap of the correlations."""
    from globalrep.figures.correlations import plot_correlation_heatmap
    from globalrep.figures.maps import plot_model_maps

    written = plot_model_maps(
        tables,
        "rank",
        load_countries(options.get("countries")),
        context.out_dir / f"{NAME}_rank_map",
        title="AskRedditCountries: {model}'s mean rank of each country",
        label="mean rank over questions (1 = most favoured)",
        cmap="RdYlGn_r",
    )
    correlations = correlation_table(tables, options)
    correlations = correlations[correlations["method"] != "list_order"]  # one value per pair in the heatmap
    if len(correlations):
        written += plot_correlation_heatmap(
            correlations,
            context.out_dir / f"{NAME}_correlations",
            title="Spearman correlation of country mean ranks",
        )
    return written


# ------------------------------------------------------------------------------- published


def read_published(path: Path, items: pd.DataFrame, requests: Sequence, model) -> pd.DataFrame:
    """The backend ``published``: per question the published value of every country (a language model's mean per-token NLL, or the reward model's reward)."""
    published = pf.read_csv(path, "a published AskReddit file", dtype=str, keep_default_na=False)
    require_columns(published, ("Question", "Response Format"), path, "a published AskReddit file")
    countries = [column for column in published.columns if column not in PUBLISHED_META_COLUMNS]
    ids = [item_id(str(q).strip(), str(r).strip()) for q, r in zip(published["Question"], published["Response Format"])]
    values = published[countries].set_axis(ids).apply(lambda column: pf.column_numbers(column, path))
    values = values[~values.index.duplicated()]
    wanted = list(items["countries"].iloc[0]) if len(items) else []
    values = pf.country_columns(values, wanted, path)
    answers: Answers = {}
    for request in requests:
        if request.item_id not in values.index:
            continue
        row = values.loc[request.item_id].tolist()
        answers[(request.item_id, "missing_answer")] = bool(np.isnan(row).any())
        if model.kind == "reward":
            answers.update(reward_answer(request, row))
        else:  # mean per-token NLL: one "token" of log-probability -NLL
            answers.update(loglik_answer(request, [-v for v in row], [1] * len(row)))
    return prediction_frame(answers)
