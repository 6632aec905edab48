"""GlobalOpinionQA (Durmus et al. 2023): whose survey opinions does a model's answer distribution match?

Per question the model's distribution over the options is compared with each surveyed
country's answer distribution; similarity = 1 − Jensen–Shannon distance (natural log), as in
the paper we reproduce.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import string
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.special import softmax

from globalrep.engine.requests import LoglikRequest
from globalrep.errors import GlobalrepError
from globalrep.sources import read_records, require_columns

NAME = "global_opinions"
PROMPT_VERSION = "1"
MODEL_KINDS = ("lm",)
AXIS = "opinions"  # the report's section: dialects | languages | opinions
# Options that change only scoring: editing them reruns no inference.
SCORE_ONLY_OPTIONS = ("focus_countries",)

DEFAULT_SOURCE = "Anthropic/llm_global_opinions"
FOCUS_COUNTRIES = ("United States", "China", "Jordan", "Brazil", "Nigeria", "Germany", "Australia")
REQUIRED_COLUMNS = ("question", "selections", "options", "source")
LETTERS = string.ascii_uppercase
# Survey shares are rounded (often to two decimals), so a vector may miss 1 by a few hundredths.
SUM_TOLERANCE = 0.05

log = logging.getLogger(__name__)


def build_prompt(question: str, options: list[str]) -> str:
    """The paper's prompt: lettered options, then the assistant's answer up to ``(``."""
    lines = "\n".join(f"({letter}) {option}" for letter, option in zip(LETTERS, options))
    return (
        f"Human: {question}\n\nHere are the options:\n{lines}\n\n"
        "Assistant: If I had to select one of the options, my answer would be ("
    )


def item_id(question: str, options: list[str]) -> str:
    digest = hashlib.sha1(json.dumps([question, options]).encode()).hexdigest()
    return f"goqa-{digest[:12]}"


# ---------------------------------------------------------------------------------- prepare


def prepare(options: dict, source: str | None = None) -> pd.DataFrame:
    """Read a local CSV/JSON/JSONL/Parquet file or a Hugging Face dataset into one row per question:
    ``item_id, group (= source), question, options, countries, country_probs, source``."""
    source = source or DEFAULT_SOURCE
    raw = read_records(source, options.get("split", "train"), "GlobalOpinionQA", DEFAULT_SOURCE)
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
    frame = pd.DataFrame(items, columns=["item_id", "group", "question", "options", "countries", "country_probs", "source"])
    duplicates = frame["item_id"].duplicated()
    if duplicates.any():
        log.info("%s: dropped %d repeated (question, options) rows, keeping the first", source, int(duplicates.sum()))
    return frame[~duplicates].reset_index(drop=True)


def _parse_row(source: str, index: int, row) -> dict:
    """One validated item."""
    question = str(row.question)

    def bad(column: str, problem: str) -> GlobalrepError:
        where = f"row {index} (counting from 0; question {question[:60]!r})"
        return GlobalrepError(f"{source}: {where}, column {column!r}: {problem}")

    if not question.strip():
        raise bad("question", "empty question")
    options = _literal(row.options, bad, "options")
    if not isinstance(options, (list, tuple)) or not options:
        raise bad("options", f"expected a non-empty list of options, got {type(options).__name__}")
    if not all(isinstance(option, (str, int, float)) and not isinstance(option, bool) for option in options):
        raise bad("options", "every option must be a string or a number")
    if len(options) > len(LETTERS):
        raise bad("options", f"{len(options)} options; the prompt letters them A–Z (at most {len(LETTERS)})")
    options = [str(option) for option in options]  # the paper's prompt writes str(option)

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
            context=build_prompt(item.question, list(item.options)),
            continuations=tuple(f"{letter})" for letter in LETTERS[: len(item.options)]),
        )
        for item in items.itertuples(index=False)
    ]


# ------------------------------------------------------------------------------------ score


def model_distribution(logprobs, ntokens) -> np.ndarray:
    """exp(mean per-token log-probability) of each option, normalised over the options (the paper's
    choice: a continuation that happens to split into more tokens is not penalised for it)."""
    logprobs = np.asarray(logprobs, dtype=float)
    ntokens = np.asarray(ntokens, dtype=float)
    return softmax(logprobs / ntokens)


def score(items: pd.DataFrame, predictions: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Similarity (1 − JSD) of each model's answer distribution to each surveyed country's, per
    question: ``model, item_id, group (= country), metric, value, source, model_probs``."""
    unknown = set(predictions["item_id"]) - set(items["item_id"])
    if unknown:
        raise GlobalrepError(
            f"{NAME}: predictions for {len(unknown)} items that are not in the prepared items "
            f"(e.g. {sorted(unknown)[0]}); rerun inference on the current prepared data"
        )
    merged = predictions[["model", "item_id", "choice_logprob", "choice_ntokens"]].merge(
        items[["item_id", "source", "countries", "country_probs"]], on="item_id", validate="many_to_one"
    )
    rows = []
    for pred in merged.itertuples(index=False):
        ntokens = np.asarray(pred.choice_ntokens, dtype=float)
        country_matrix = np.stack([np.asarray(p, dtype=float) for p in pred.country_probs])
        if len(pred.choice_logprob) != country_matrix.shape[1] or len(ntokens) != country_matrix.shape[1]:
            raise GlobalrepError(
                f"{NAME}: model {pred.model!r}, item {pred.item_id}: {len(pred.choice_logprob)} option "
                f"scores for {country_matrix.shape[1]} options; rerun inference for this model"
            )
        if (ntokens <= 0).any():
            raise GlobalrepError(f"{NAME}: model {pred.model!r}, item {pred.item_id}: an option has no tokens")
        model_probs = model_distribution(pred.choice_logprob, ntokens)
        similarity = np.full(len(country_matrix), np.nan)
        scorable = np.array([_has_mass(probs) for probs in country_matrix])
        if scorable.any():
            similarity[scorable] = 1 - jensenshannon(country_matrix[scorable], model_probs[None, :], axis=1)
        probs_list = model_probs.tolist()
        rows.extend(
            (pred.model, pred.item_id, country, "similarity", float(value), pred.source, probs_list)
            for country, value in zip(pred.countries, similarity)
        )
    return pd.DataFrame(rows, columns=["model", "item_id", "group", "metric", "value", "source", "model_probs"])


def table_scores(scores: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Only the focus countries, on only the questions that every focus country was asked (the
    paper's comparison set: differences between countries are then not differences in questions)."""
    focus = list(dict.fromkeys(options.get("focus_countries", FOCUS_COUNTRIES)))
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


def figures(tables: pd.DataFrame, deltas: pd.DataFrame, chains: dict, out_dir, options: dict) -> list[Path]:
    """Per chain, similarity per focus country for each model, with 95% CIs."""
    from globalrep.figures.chains import plot_chain_groups  # plotting stack only where figures are drawn

    return plot_chain_groups(
        tables,
        chains,
        metric="similarity",
        out_prefix=Path(out_dir) / f"{NAME}_chains",
        title="GlobalOpinionQA: similarity to each country's survey answers (1 − JS distance)",
        models_stage=options.get("models_stage", {}),
    )
