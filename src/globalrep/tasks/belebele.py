"""Belebele (Bandarkar et al. 2023): multiple-choice reading comprehension on FLORES-200 passages in
122 language variants, 900 questions each.

The model reads an instruction, the passage, the question and four lettered choices; the choice
whose letter continuation has the highest per-token mean log-likelihood is its answer. Metric:
``accuracy`` in percent, per language variant (group = the FLORES code, e.g. ``deu_Latn``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from globalrep.choices import MISSING, best_choice
from globalrep.datafiles import local_files
from globalrep.digests import digest
from globalrep.engine.requests import LoglikRequest
from globalrep.errors import GlobalrepError
from globalrep.languages import language_name
from globalrep.local_paths import is_local_path
from globalrep.prompt_templates import prompt_renderer
from globalrep.sources import read_records, require_columns
from globalrep.tables import deltas_table
from globalrep.tasks.base import FigureContext, check_known_items, load_options_schema, option_defaults

NAME = "belebele"
PROMPT_VERSION = "3"  # 2: the paper's layout, "(A)" after "the answer is: "; 3: legend and "---" line
MODEL_KINDS = ("lm",)
AXIS = "languages"  # the report's section: dialects | languages | opinions
# The options and their defaults: belebele.schema.yaml beside this module.
OPTIONS_SCHEMA = load_options_schema(__file__)
DEFAULTS = option_defaults(OPTIONS_SCHEMA)

DEFAULT_SOURCE = DEFAULTS["source"]
ANSWER_COLUMNS = tuple(f"mc_answer{k}" for k in range(1, 5))
REQUIRED_COLUMNS = (
    "flores_passage",
    "question",
    *ANSWER_COLUMNS,
    "correct_answer_num",
    "dialect",
    "link",
    "question_number",
)
LETTERS = "ABCD"
# The paper's 9 TyDiQA languages as Belebele variants; its Arabic was Mesopotamian (acm_Arab).
TYDIQA_LANGUAGES = {
    "arabic": "acm_Arab", "bengali": "ben_Beng", "english": "eng_Latn", "finnish": "fin_Latn",
    "indonesian": "ind_Latn", "korean": "kor_Hang", "russian": "rus_Cyrl", "swahili": "swh_Latn",
    "telugu": "tel_Telu",
}  # fmt: skip
TYDIQA_FIGURE = f"{NAME}_tydiqa_languages"

log = logging.getLogger(__name__)


def build_prompt(passage: str, question: str, choices: list[str], task_options: dict | None = None) -> str:
    """The prompt from the task's template (option ``prompt_template``; default
    globalrep/prompt_templates/belebele.jinja), ending where the choice's label is scored."""
    return prompt_renderer(NAME, task_options or {})(
        passage=passage, question=question, choices=choices, letters=LETTERS
    )


# Scored right after the prompt, as the paper did: "(A)" after "... the answer is: ".
CONTINUATIONS = tuple(f"({letter})" for letter in LETTERS)


# ---------------------------------------------------------------------------------- prepare


def prepare(options: dict, source: str | None = None) -> pd.DataFrame:
    """One row per question: ``item_id, group (FLORES code), group_name, passage, question,
    choices, answer (0-3), link, question_number``. ``options['languages']`` is ``all`` or a list
    of FLORES codes."""
    source = source or DEFAULT_SOURCE
    languages = options.get("languages", "all")
    raw = (
        _read_local(source)
        if is_local_path(source)
        else _read_hub(source, languages, options.get("split", DEFAULTS["split"]))
    )
    require_columns(raw, REQUIRED_COLUMNS, source, f"Belebele needs {', '.join(REQUIRED_COLUMNS)}")
    raw["dialect"] = raw["dialect"].astype(str)
    if languages != "all":
        absent = sorted(set(languages) - set(raw["dialect"]))
        if absent:
            raise GlobalrepError(
                f"{source}: no questions for language(s) {absent} (config key 'tasks.belebele.languages'); "
                f"the source has {sorted(set(raw['dialect']))[:10]}"
            )
        raw = raw[raw["dialect"].isin(languages)]
    items = pd.DataFrame([_parse_row(source, index, row) for index, row in enumerate(raw.itertuples(index=False))])
    repeated = items["item_id"][items["item_id"].duplicated()]
    if len(repeated):
        raise GlobalrepError(
            f"{source}: question(s) {sorted(set(repeated))[:3]} occur twice (same dialect, link and question_number)"
        )
    log.info("%s: %d questions in %d language variants", source, len(items), items["group"].nunique())
    return items


def _read_local(source: str) -> pd.DataFrame:
    files = local_files(source, (".jsonl", ".json", ".parquet"), "config key 'tasks.belebele.source'")
    return pd.concat([read_records(str(path), "", "Belebele", DEFAULT_SOURCE) for path in files], ignore_index=True)


def _read_hub(source: str, languages, split: str) -> pd.DataFrame:
    # One hub config per language variant (load_dataset(source, "eng_Latn")), split "test".
    from datasets import get_dataset_config_names, load_dataset  # heavy import, only for hub sources

    names = get_dataset_config_names(source) if languages == "all" else list(languages)
    return pd.concat([load_dataset(source, name, split=split).to_pandas() for name in names], ignore_index=True)


def _parse_row(source: str, index: int, row) -> dict:
    def bad(problem: str) -> GlobalrepError:
        return GlobalrepError(
            f"{source}: row {index} (counting from 0; question {str(row.question)[:60]!r}): {problem}"
        )

    choices = [getattr(row, column) for column in ANSWER_COLUMNS]
    if any(not isinstance(choice, str) or not choice.strip() for choice in choices):
        raise bad("every mc_answer1..4 must be non-empty text")
    if not str(row.flores_passage).strip() or not str(row.question).strip():
        raise bad("empty flores_passage or question")
    try:
        answer = int(row.correct_answer_num)
    except (TypeError, ValueError):
        answer = 0
    if not 1 <= answer <= 4:
        raise bad(f"correct_answer_num must be 1-4, got {row.correct_answer_num!r}")
    return {
        "item_id": f"{row.dialect}-{digest(f'{row.link}|{row.question_number}', 10)}-{row.question_number}",
        "group": row.dialect,
        "group_name": language_name(row.dialect),
        "passage": str(row.flores_passage),
        "question": str(row.question),
        "choices": choices,
        "answer": answer - 1,
        "link": str(row.link),
        "question_number": str(row.question_number),
    }


# --------------------------------------------------------------------------------- requests


def requests(items: pd.DataFrame, options: dict, model_kind: str = "lm") -> list[LoglikRequest]:
    """One log-likelihood request per question: continuations ``(A)`` ... ``(D)``."""
    return [
        LoglikRequest(
            item_id=item.item_id,
            key="choice",
            context=build_prompt(item.passage, item.question, list(item.choices), options),
            continuations=CONTINUATIONS,
        )
        for item in items.itertuples(index=False)
    ]


# ------------------------------------------------------------------------------------ score


def score(items: pd.DataFrame, predictions: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Per model and question, ``accuracy`` 100 or 0 of the choice with the highest per-token mean
    log-likelihood: ``model, item_id, group, group_name, metric, value, predicted``. A missing
    answer (a non-finite score: see :func:`~globalrep.choices.best_choice`) is not correct and
    predicts nothing (``predicted`` empty); published rows keep the paper's rule."""
    check_known_items(NAME, items, predictions)
    published = predictions["published"].eq(True) if "published" in predictions.columns else False
    merged = predictions.assign(published=published)[
        ["model", "item_id", "choice_logprob", "choice_ntokens", "published"]
    ].merge(items[["item_id", "group", "group_name", "answer"]], on="item_id", validate="many_to_one")
    logprobs = np.stack(merged["choice_logprob"].map(np.asarray))
    ntokens = np.stack(merged["choice_ntokens"].map(np.asarray)).astype(float)
    if logprobs.shape[1:] != (len(LETTERS),) or (ntokens <= 0).any():
        raise GlobalrepError(f"{NAME}: every prediction needs 4 choice scores with tokens; rerun inference")
    predicted = best_choice(logprobs, ntokens, paper_rule=merged["published"].to_numpy(dtype=bool))
    return pd.DataFrame(
        {
            "model": merged["model"],
            "item_id": merged["item_id"],
            "group": merged["group"],
            "group_name": merged["group_name"],
            "metric": "accuracy",
            "value": 100.0 * (predicted == merged["answer"].to_numpy()),
            "predicted": ["" if i == MISSING else LETTERS[i] for i in predicted],
        }
    )


# Extra table (results/tables/belebele_from_base.csv): the paper's Figure 3, each aligned model's
# paired change from its chain's base model.
EXTRA_TABLES = {"from_base": lambda scores, chains, options: deltas_table(scores, chains, from_base=True)}

TITLE = "Belebele accuracy (%)"


def figures(tables: pd.DataFrame, deltas: pd.DataFrame, context: FigureContext, options: dict) -> list[Path]:
    """The paper's Figure 3 per chain (change from the base model), the consecutive changes and
    every model's accuracy per language: over all evaluated variants, and again over the paper's
    9 TyDiQA languages only (a notice when none of them was evaluated)."""
    from globalrep.figures.languages import language_figures

    written = language_figures(tables, deltas, context, context.out_dir / NAME, "accuracy", TITLE)
    nine = list(TYDIQA_LANGUAGES.values())
    if not tables["group"].isin(nine).any():
        return written + unavailable_figures(context.out_dir, f"None of them was evaluated ({', '.join(nine)}).")
    extra = {name: frame[frame["group"].isin(nine)] for name, frame in context.extra_tables.items()}
    return written + language_figures(
        tables[tables["group"].isin(nine)],
        deltas[deltas["group"].isin(nine)],
        replace(context, extra_tables=extra),
        context.out_dir / TYDIQA_FIGURE,
        "accuracy",
        f"{TITLE}, the paper's 9 TyDiQA languages",
    )


def unavailable_figures(out_dir, note: str) -> list[Path]:
    """The 9-language figure as a notice: no Belebele results for the paper's TyDiQA languages."""
    from globalrep.figures.notice import plot_notice

    return plot_notice(f"{TITLE}, the paper's 9 TyDiQA languages: no results", note, Path(out_dir) / TYDIQA_FIGURE)
