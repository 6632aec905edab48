"""GlobalOpinionQA (Durmus et al. 2023): whose survey opinions does a model's answer distribution match?

Per question the model's distribution over the options is compared with each surveyed
country's answer distribution; similarity = 1 − Jensen–Shannon distance (natural log), as in
the paper we reproduce.
"""

from __future__ import annotations

import ast
import logging
import string
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from globalrep import published_files as pf
from globalrep.digests import content_id
from globalrep.engine.answers import Answers, loglik_answer, prediction_frame
from globalrep.engine.requests import LoglikRequest
from globalrep.errors import GlobalrepError
from globalrep.prompt_templates import prompt_renderer
from globalrep.sources import read_records, require_columns
from globalrep.tables import reference_differences_table
from globalrep.tasks.base import FigureContext, check_known_items, load_options_schema, option_defaults

NAME = "global_opinions"
PROMPT_VERSION = "1"
MODEL_KINDS = ("lm",)
AXIS = "opinions"  # the report's section: dialects | languages | opinions
# The options and their defaults: global_opinions.schema.yaml beside this module.
OPTIONS_SCHEMA = load_options_schema(__file__)
DEFAULTS = option_defaults(OPTIONS_SCHEMA)
# Options that change only scoring: editing them reruns no inference.
SCORE_ONLY_OPTIONS = ("focus_countries",)

DEFAULT_SOURCE = DEFAULTS["source"]
UNITED_STATES = "United States"
FOCUS_COUNTRIES = tuple(DEFAULTS["focus_countries"])
REQUIRED_COLUMNS = ("question", "selections", "options", "source")
# A source with these columns and no `selections` is one of the paper's published outputs files.
PUBLISHED_COLUMNS = {"question", "options", "probs"}
PUBLISHED_GROUP = "published"
# A published file's columns before the countries' similarities (-1: the country was not asked).
PUBLISHED_META_COLUMNS = frozenset(
    ("question", "options", "probs", "model_id", "load_8bit", "max_choice", "chose_first", "chose_last", "chose_middle",
     "using_chat_template")
)  # fmt: skip
NOT_ASKED = -1
LETTERS = string.ascii_uppercase
# Survey shares are rounded (often to two decimals), so a vector may miss 1 by a few hundredths.
SUM_TOLERANCE = 0.05

log = logging.getLogger(__name__)


def build_prompt(question: str, options: list[str], task_options: dict | None = None) -> str:
    """The prompt from the task's template (option ``prompt_template``; default
    globalrep/prompt_templates/global_opinions.jinja, the paper's: lettered options, then the
    assistant's answer up to ``(``)."""
    return prompt_renderer(NAME, task_options or {})(question=question, options=options, letters=LETTERS)


def item_id(question: str, options: list[str]) -> str:
    return content_id("goqa", question, options)


# ---------------------------------------------------------------------------------- prepare


def prepare(options: dict, source: str | None = None) -> pd.DataFrame:
    """Read a local CSV/JSON/JSONL/Parquet file or a Hugging Face dataset into one row per question:
    ``item_id, group (= source), question, options, countries, country_probs, source``."""
    source = source or DEFAULT_SOURCE
    raw = read_records(source, options.get("split", DEFAULTS["split"]), "GlobalOpinionQA", DEFAULT_SOURCE)
    if PUBLISHED_COLUMNS <= set(raw.columns) and "selections" not in raw.columns:
        return _published_items(raw, source)
    require_columns(raw, REQUIRED_COLUMNS, source, f"GlobalOpinionQA needs {', '.join(REQUIRED_COLUMNS)}")
    rows = raw[list(REQUIRED_COLUMNS)].itertuples(index=False)
    items = [_parse_row(source, index, row) for index, row in enumerate(rows)]
    empty = sum(not _has_mass(probs) for item in items for probs in item["country_probs"])
    if empty:
        log.warning(
            "%s: %d country distributions have no probability mass (NaN or all zero); their "
            "similarity is NaN, as in the paper, and means skip them",
            source,
            empty,
        )
    frame = pd.DataFrame(
        items, columns=["item_id", "group", "question", "options", "countries", "country_probs", "source"]
    )
    duplicates = frame["item_id"].duplicated()
    if duplicates.any():
        log.info("%s: dropped %d repeated (question, options) rows, keeping the first", source, int(duplicates.sum()))
    return frame[~duplicates].reset_index(drop=True)


def _published_items(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """Items from one of the paper's published outputs files (``question, options, probs, ...``
    and per country its similarity, −1 where not asked): the questions and who was asked, without
    the countries' distributions (empty), so only published similarities can be scored."""
    similarities = published_similarities(raw)
    countries = list(similarities.columns)
    asked = similarities != NOT_ASKED  # NaN (an empty survey vector) was asked
    rows = []
    for index, (row, asked_row) in enumerate(zip(raw.itertuples(index=False), asked.itertuples(index=False))):
        question = str(row.question)
        options = parse_options(row.options, row_error(source, index, question))
        names = [country for country, was_asked in zip(countries, asked_row) if was_asked]
        rows.append(
            {
                "item_id": item_id(question, options),
                "group": PUBLISHED_GROUP,
                "question": question,
                "options": options,
                "countries": names,
                "country_probs": [[] for _ in names],
                "source": PUBLISHED_GROUP,
            }
        )
    log.info(
        "%s: %d questions from the paper's published outputs, without the countries' distributions", source, len(rows)
    )
    frame = pd.DataFrame(rows)
    return frame[~frame["item_id"].duplicated()].reset_index(drop=True)


def _parse_row(source: str, index: int, row) -> dict:
    """One validated item."""
    # An empty question stays: the dataset has one (the paper asked it, options only).
    question = str(row.question)
    bad = row_error(source, index, question)
    options = parse_options(row.options, bad)

    selections = _literal(_dict_part(str(row.selections)), bad, "selections")
    if not isinstance(selections, dict) or not selections:
        raise bad("selections", "expected a non-empty mapping of country to probabilities")
    countries, country_probs = [], []
    for country, probs in selections.items():
        if not isinstance(country, str) or not isinstance(probs, (list, tuple)):
            raise bad("selections", f"entry {country!r} must map a country name to a list of probabilities")
        if not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in probs):
            raise bad("selections", f"{country}: probabilities must be numbers, got {probs!r}")
        vector = np.asarray(probs, dtype=float)
        if len(vector) != len(options):
            raise bad("selections", f"{country}: {len(vector)} probabilities for {len(options)} options")
        if (vector < 0).any():
            raise bad("selections", f"{country}: negative probability in {probs!r}")
        # A country without probability mass (NaN or all zero; the real dataset has some) stays
        # "asked", as in the paper, which scores it NaN: the focus-country filter must count it.
        if _has_mass(vector):
            if abs(vector.sum() - 1) > SUM_TOLERANCE:
                raise bad("selections", f"{country}: probabilities sum to {vector.sum():.3f}, not 1")
            vector = vector / vector.sum()
        countries.append(country)
        country_probs.append(vector.tolist())
    group = str(row.source)
    return {
        "item_id": item_id(question, options),
        "group": group,
        "question": question,
        "options": options,
        "countries": countries,
        "country_probs": country_probs,
        "source": group,
    }


def row_error(source: str, index: int, question: str):
    """``bad(column, problem)``: the error for one row of ``source``, naming row, question and column."""

    def bad(column: str, problem: str) -> GlobalrepError:
        where = f"row {index} (counting from 0; question {question[:60]!r})"
        return GlobalrepError(f"{source}: {where}, column {column!r}: {problem}")

    return bad


def parse_options(text, bad) -> list[str]:
    """The options of a row: a non-empty list of at most 26 strings or numbers, as text."""
    options = _literal(text, bad, "options")
    if not isinstance(options, (list, tuple)) or not options:
        raise bad("options", f"expected a non-empty list of options, got {type(options).__name__}")
    if not all(isinstance(option, (str, int, float)) and not isinstance(option, bool) for option in options):
        raise bad("options", "every option must be a string or a number")
    if len(options) > len(LETTERS):
        raise bad("options", f"{len(options)} options; the prompt letters them A–Z (at most {len(LETTERS)})")
    return [str(option) for option in options]  # the paper's prompt writes str(option)


def _has_mass(probs) -> bool:
    probs = np.asarray(probs, dtype=float)
    return bool(np.isfinite(probs).all() and probs.sum() > 0)


def _dict_part(selections: str) -> str:
    """``defaultdict(<class 'list'>, {...})`` → ``{...}``; a plain dict passes unchanged."""
    start, end = selections.find("{"), selections.rfind("}")
    return selections[start : end + 1] if 0 <= start < end else selections


class _NonFiniteNames(ast.NodeTransformer):
    """A Python repr writes NaN and infinity as the bare names ``nan`` and ``inf``."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in ("nan", "inf"):
            return ast.copy_location(ast.Constant(float(node.id)), node)
        return node


def _literal(text, bad, column: str):
    """Parse a Python literal safely (never ``eval``); a syntax problem becomes a row error."""
    if not isinstance(text, str):
        raise bad(column, f"expected text holding a Python literal, got {type(text).__name__}")
    try:
        tree = _NonFiniteNames().visit(ast.parse(text.strip(), mode="eval"))
        return ast.literal_eval(tree)
    except (SyntaxError, ValueError, TypeError) as error:
        raise bad(column, f"not a Python literal ({error.__class__.__name__}: {error}): {text[:80]!r}") from None


# --------------------------------------------------------------------------------- requests


def requests(items: pd.DataFrame, options: dict, model_kind: str = "lm") -> list[LoglikRequest]:
    """One log-likelihood request per question: continuations ``A)``, ``B)``, … after the prompt."""
    return [
        LoglikRequest(
            item_id=item.item_id,
            key="choice",
            context=build_prompt(item.question, list(item.options), options),
            continuations=tuple(f"{letter})" for letter in LETTERS[: len(item.options)]),
        )
        for item in items.itertuples(index=False)
    ]


# ------------------------------------------------------------------------------------ score


def model_distribution(logprobs, ntokens) -> np.ndarray:
    """exp(mean per-token log-probability) of each option, normalised over the options (the paper's
    choice: a continuation that happens to split into more tokens is not penalised for it)."""
    from scipy.special import softmax  # scipy imported here: see globalrep.stats

    logprobs = np.asarray(logprobs, dtype=float)
    ntokens = np.asarray(ntokens, dtype=float)
    return softmax(logprobs / ntokens)


def score(items: pd.DataFrame, predictions: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Similarity (1 − JSD) of each model's answer distribution to each surveyed country's, per
    question: ``model, item_id, group (= country), metric, value, source, model_probs``."""
    check_known_items(NAME, items, predictions)
    published = ["published_similarity"] if "published_similarity" in predictions.columns else []
    merged = predictions[["model", "item_id", "choice_logprob", "choice_ntokens", *published]].merge(
        items[["item_id", "source", "options", "countries", "country_probs"]], on="item_id", validate="many_to_one"
    )
    rows = []
    for pred in merged.itertuples(index=False):
        ntokens = np.asarray(pred.choice_ntokens, dtype=float)
        n_options = len(pred.options)
        if len(pred.choice_logprob) != n_options or len(ntokens) != n_options:
            raise GlobalrepError(
                f"{NAME}: model {pred.model!r}, item {pred.item_id}: {len(pred.choice_logprob)} option "
                f"scores for {n_options} options; rerun inference for this model"
            )
        if (ntokens <= 0).any():
            raise GlobalrepError(f"{NAME}: model {pred.model!r}, item {pred.item_id}: an option has no tokens")
        model_probs = model_distribution(pred.choice_logprob, ntokens)
        if len(pred.country_probs) and all(len(probs) == n_options for probs in pred.country_probs):
            similarity = _similarity(np.stack([np.asarray(p, dtype=float) for p in pred.country_probs]), model_probs)
        else:
            similarity = _published_similarity(pred)
        probs_list = model_probs.tolist()
        rows.extend(
            (pred.model, pred.item_id, country, "similarity", float(value), pred.source, probs_list)
            for country, value in zip(pred.countries, similarity)
        )
    return pd.DataFrame(rows, columns=["model", "item_id", "group", "metric", "value", "source", "model_probs"])


def _similarity(country_matrix: np.ndarray, model_probs: np.ndarray) -> np.ndarray:
    """1 − JS distance of each country's distribution (rows) to the model's; NaN without mass."""
    from scipy.spatial.distance import jensenshannon  # imported here: see globalrep.stats

    similarity = np.full(len(country_matrix), np.nan)
    scorable = np.array([_has_mass(probs) for probs in country_matrix])
    if scorable.any():
        similarity[scorable] = 1 - jensenshannon(country_matrix[scorable], model_probs[None, :], axis=1)
    return similarity


def _published_similarity(pred) -> np.ndarray:
    """Items without the countries' distributions (read from the paper's published outputs) can
    only take the similarity the paper published with the model's answers."""
    values = getattr(pred, "published_similarity", None)
    if values is None or (isinstance(values, float) and np.isnan(values)) or len(values) != len(pred.countries):
        raise GlobalrepError(
            f"{NAME}: item {pred.item_id} has no country distributions (its source is the paper's published "
            f"outputs), so only published similarities can be scored, and model {pred.model!r} has none; "
            f"give config key 'tasks.{NAME}.source' the dataset ({DEFAULT_SOURCE}) to score models that run"
        )
    return np.asarray(values, dtype=float)


def table_scores(scores: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Only the focus countries, on only the questions that every focus country was asked (the
    paper's comparison set: differences between countries are then not differences in questions)."""
    focus = list(dict.fromkeys(options.get("focus_countries", DEFAULTS["focus_countries"])))
    known = set(scores["group"])
    absent = [country for country in focus if country not in known]
    if absent and known:
        raise GlobalrepError(
            f"{NAME}: focus_countries {absent} never occur in the survey data; "
            f"countries are named as in the dataset, e.g. {sorted(known)[:5]}"
        )
    focused = scores[scores["group"].isin(focus)]
    asked = focused.groupby("item_id")["group"].nunique()
    common = asked.index[asked == len(focus)]
    return focused[focused["item_id"].isin(common)].reset_index(drop=True)


# Extra table (results/tables/global_opinions_vs_us.csv): the paper's Figure 4, each focus
# country's similarity minus the United States', paired per question.
EXTRA_TABLES = {"vs_us": lambda scores, chains, options: reference_differences_table(scores, UNITED_STATES, "minus_us")}


def us_lead_summary(table: pd.DataFrame) -> str:
    """The report's reading of ``global_opinions_vs_us.csv``: for which models and countries the
    United States' lead (similarity to the US minus to the country) is significant, i.e. q < 0.05
    (p corrected per model across the focus countries) with country − US below 0, and where a
    country is significantly closer instead."""
    if table.empty:
        return "No model has similarities to the United States and another focus country on shared questions."

    def listing(rows: pd.DataFrame) -> str:
        per_model = rows.groupby("model", sort=True)["group"].agg(lambda groups: ", ".join(sorted(groups)))
        return "; ".join(f"{model}: {groups}" for model, groups in per_model.items()) or "none"

    significant = table[table["q_value"] < 0.05]
    return (
        "Answers are significantly closer to the United States' than to the country's (country − US "
        "below 0 with q < 0.05, p corrected per model across the focus countries) for "
        f"{listing(significant[significant['value'] < 0])}. Significantly closer to the country than to "
        f"the United States: {listing(significant[significant['value'] > 0])}."
    )


# The sentence the report puts beside each extra table.
EXTRA_TABLE_SUMMARIES = {"vs_us": us_lead_summary}


def figures(tables: pd.DataFrame, deltas: pd.DataFrame, context: FigureContext, options: dict) -> list[Path]:
    """Per chain, similarity per focus country for each model, with 95% CIs; and the paper's
    Figure 4: per chain, each country's similarity minus the United States', stages side by side."""
    from globalrep.figures.bars import plot_chain_bars  # plotting stack only where figures are drawn
    from globalrep.figures.chains import plot_chain_groups

    written = plot_chain_groups(
        tables,
        context.chains,
        metric="similarity",
        out_prefix=context.out_dir / f"{NAME}_chains",
        title="GlobalOpinionQA: similarity to each country's survey answers (1 − JS distance)",
        models_stage=context.models_stage,
    )
    vs_us = context.extra_tables.get("vs_us")
    if vs_us is not None:
        written += plot_chain_bars(
            vs_us,
            context.chains,
            metric="similarity_minus_us",
            out_prefix=context.out_dir / f"{NAME}_vs_us",
            title="GlobalOpinionQA: similarity to each country minus to the United States "
            "(paired per question; below 0: closer to the US)",
            models_stage=context.models_stage,
        )
    return written


# ------------------------------------------------------------------------------- published


def read_published(path: Path, items: pd.DataFrame, requests: Sequence, model) -> pd.DataFrame:
    """The backend ``published``: per question of a published globalopinionsqa file its answer distribution (``probs``) and the published similarity of each asked country."""
    published = pf.read_csv(
        path, "a published globalopinionsqa file", dtype=str, keep_default_na=False
    )  # a question may be empty text
    require_columns(published, ("question", "options", "probs"), path, "a published globalopinionsqa file")
    by_id = {}
    for index, row in enumerate(published.itertuples(index=False)):
        options = parse_options(row.options, row_error(str(path), index, row.question))  # as prepare() reads them
        by_id.setdefault(item_id(str(row.question), options), index)
    similarity = published_similarities(published).replace(NOT_ASKED, np.nan)
    item_countries = items.set_index("item_id")["countries"]
    answers: Answers = {}
    for request in requests:
        index = by_id.get(request.item_id)
        if index is None:
            continue
        where = f"{path}: row {index} (counting from 0)"
        probs = pf.numbers(published.at[index, "probs"], where, len(request.continuations))
        asked = similarity.loc[index]
        answers[(request.item_id, "missing_answer")] = bool(np.isnan(probs).any())
        answers.update(loglik_answer(request, pf.log_probs(probs), [1] * len(probs)))
        answers[(request.item_id, "published_similarity")] = [
            float(asked.get(c, np.nan)) for c in item_countries[request.item_id]
        ]
    return prediction_frame(answers)


def published_similarities(published: pd.DataFrame) -> pd.DataFrame:
    """A published globalopinionsqa file's similarity columns (one per country) as numbers:
    ``NOT_ASKED`` where the country was not asked, NaN where its survey vector was empty."""
    countries = [column for column in published.columns if column not in PUBLISHED_META_COLUMNS]
    return published[countries].apply(pd.to_numeric, errors="coerce")
