"""TyDiQA-GoldP (Clark et al. 2020): extractive question answering on gold passages, 9 languages.

The model sees an instruction to extract the answer span from the context, ``num_shots`` worked
examples of its language (drawn once per language from the train pool with a fixed seed), then
the test passage and question; it continues greedily. Scoring keeps the text before the first
blank line and compares it with each gold answer after SQuAD-1.1 normalisation: ``exact_match``
and token ``f1`` in percent, the best over gold answers, per language (group = TyDiQA's language
name, the prefix of the question id, e.g. ``english``).

Beside them, the paper's figure metric: ``cfmatch``, 100 × the probability that the answer is
correct by CFMatch (``qa-metrics``' classifier, the one the paper used; :mod:`globalrep.cfmatch`),
and ``cf_match``, 100 where CFMatch judges it correct, the best over gold answers. CFMatch's
vocabulary is English: in other scripts it scores even exact answers low, so the table
``cfmatch_blind_spots`` says, per language, how often an exact answer scores under 50, and marks
CFMatch unreliable where that is most questions.
"""

from __future__ import annotations

import collections
import json
import logging
import random
import re
import string
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from globalrep.datafiles import local_files
from globalrep.engine.answers import Answers, generate_answer, prediction_frame
from globalrep.engine.requests import GenerateRequest
from globalrep.errors import GlobalrepError
from globalrep.languages import named_language
from globalrep.local_paths import is_local_path
from globalrep.prompt_templates import prompt_renderer
from globalrep.sources import read_text
from globalrep.tables import deltas_table
from globalrep.tasks.base import FigureContext, check_known_items, load_options_schema, option_defaults

NAME = "tydiqa_goldp"
PROMPT_VERSION = "2"  # 2: a legend of the fields, as the paper's layout
MODEL_KINDS = ("lm",)
AXIS = "languages"  # the report's section: dialects | languages | opinions
# The options and their defaults: tydiqa_goldp.schema.yaml beside this module.
OPTIONS_SCHEMA = load_options_schema(__file__)
SCORE_ONLY_OPTIONS = ("figure_metric", "figure_change_limits")
DEFAULTS = option_defaults(OPTIONS_SCHEMA)

DEFAULT_SOURCE = DEFAULTS["source"]
HUB_CONFIG = "secondary_task"
DEFAULT_SHOT_SAMPLING = DEFAULTS["shot_sampling"]  # or per_question, as the paper drew them
BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")
PUNCTUATION = frozenset(string.punctuation)
ARTICLES = re.compile(r"\b(a|an|the)\b")

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------- scoring


def normalize_answer(text: str) -> str:
    """SQuAD-1.1 normalisation: lower-case, drop ASCII punctuation, drop English articles,
    collapse whitespace."""
    text = "".join(char for char in text.lower() if char not in PUNCTUATION)
    return " ".join(ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    """Token-overlap F1 of the normalised texts (0 when either is empty, as in SQuAD 1.1)."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((collections.Counter(predicted) & collections.Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def extract_answer(generation: str) -> str:
    """The answer part of a generation: the text before its first blank line, stripped."""
    return BLANK_LINE.split(generation, maxsplit=1)[0].strip()


# ---------------------------------------------------------------------------------- prepare


def prepare(options: dict, source: str | None = None) -> pd.DataFrame:
    """One row per test question: ``item_id`` (TyDiQA's question id), ``group`` (language),
    ``group_name``, ``context, question, answers`` and the language's worked examples
    ``shot_contexts, shot_questions, shot_answers``."""
    source = source or DEFAULT_SOURCE
    languages = options.get("languages", "all")
    num_shots = int(options.get("num_shots", DEFAULTS["num_shots"]))
    test = _select_languages(
        _read_questions(source, options.get("split", DEFAULTS["split"]), "source"), languages, source
    )
    items = test.rename(columns={"language": "group", "id": "item_id"})
    items.insert(2, "group_name", items["group"].map(named_language))
    repeated = items["item_id"][items["item_id"].duplicated()]
    if len(repeated):
        raise GlobalrepError(f"{source}: question id(s) {sorted(set(repeated))[:3]} occur more than once")
    sampling = options.get("shot_sampling", DEFAULT_SHOT_SAMPLING)
    shots = [([], [], [])] * len(items)
    if num_shots > 0:
        train_source = _train_source(options, source)
        pool = _read_questions(train_source, "train", "train_source")
        shots = _sample_shots(
            pool, items, num_shots, int(options.get("seed", DEFAULTS["seed"])), sampling, train_source
        )
    for column, part in (("shot_contexts", 0), ("shot_questions", 1), ("shot_answers", 2)):
        items[column] = [drawn[part] for drawn in shots]
    log.info(
        "%s: %d questions in %d languages, %d shot(s) each, drawn %s",
        source,
        len(items),
        items["group"].nunique(),
        num_shots,
        sampling.replace("_", " "),
    )
    return items.reset_index(drop=True)


def _train_source(options: dict, source: str) -> str:
    train_source = options.get("train_source")
    if train_source:
        return str(train_source)
    if is_local_path(source):
        raise GlobalrepError(
            "config key 'tasks.tydiqa_goldp.train_source' is unset but num_shots > 0 and 'source' is a "
            "local path: give the train pool (SQuAD JSON file or directory), or set num_shots: 0"
        )
    return source  # the hub dataset's train split


SQUAD_LAYOUT = "data[].paragraphs[].{context, qas[].{id, question, answers[].text}}"


def _read_questions(source: str, split: str, key: str) -> pd.DataFrame:
    """``id, language, context, question, answers`` from local SQuAD-1.1 JSON or the hub."""
    if is_local_path(source):
        files = local_files(source, (".json",), f"config key 'tasks.tydiqa_goldp.{key}'")
        rows = [row for path in files for row in _squad_rows(path)]
    else:
        from datasets import load_dataset  # heavy import, only for hub sources

        frame = load_dataset(source, HUB_CONFIG, split=split).to_pandas()
        rows = [
            {"id": r.id, "context": r.context, "question": r.question, "answers": list(r.answers["text"])}
            for r in frame.itertuples(index=False)
        ]
    if not rows:
        raise GlobalrepError(f"{source} (config key 'tasks.tydiqa_goldp.{key}') holds no questions")
    frame = pd.DataFrame(rows, columns=["id", "context", "question", "answers"])
    frame.insert(1, "language", frame["id"].str.split("-", n=1).str[0])
    return frame


def _squad_rows(path: Path) -> list[dict]:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise GlobalrepError(f"{path}, line {error.lineno}: not JSON ({error.msg} at column {error.colno})") from None
    try:
        questions = [
            (paragraph["context"], qa)
            for article in data["data"]
            for paragraph in article["paragraphs"]
            for qa in paragraph["qas"]
        ]
    except (KeyError, TypeError) as error:
        raise GlobalrepError(
            f"{path}: not SQuAD-1.1 JSON ({error.__class__.__name__}: {error}); expected {SQUAD_LAYOUT}"
        ) from None
    return [_squad_row(path, number, context, qa) for number, (context, qa) in enumerate(questions, start=1)]


def _squad_row(path: Path, number: int, context: str, qa) -> dict:
    question_id = qa.get("id") if isinstance(qa, dict) else None
    which = f"question {question_id}" if question_id else f"question number {number}"
    try:
        return {
            "id": str(qa["id"]),
            "context": context,
            "question": qa["question"],
            "answers": [answer["text"] for answer in qa["answers"]],
        }
    except (KeyError, TypeError) as error:
        problem = f"has no {error} field" if isinstance(error, KeyError) else f"is malformed ({error})"
        raise GlobalrepError(f"{path}: not SQuAD-1.1 JSON: {which} {problem}; expected {SQUAD_LAYOUT}") from None


def _select_languages(frame: pd.DataFrame, languages, source: str) -> pd.DataFrame:
    no_answer = frame["answers"].map(len) == 0
    if no_answer.any():
        raise GlobalrepError(f"{source}: question {frame['id'][no_answer].iloc[0]} has no gold answer")
    if languages == "all":
        return frame
    absent = sorted(set(languages) - set(frame["language"]))
    if absent:
        raise GlobalrepError(
            f"{source}: no questions in language(s) {absent} (config key 'tasks.tydiqa_goldp.languages'); "
            f"the source has {sorted(set(frame['language']))}"
        )
    return frame[frame["language"].isin(languages)]


def _sample_shots(
    pool: pd.DataFrame, items: pd.DataFrame, num_shots: int, seed: int, sampling: str, source: str
) -> list[tuple[list, list, list]]:
    """Per item, ``num_shots`` train questions of its language as ``(contexts, questions,
    answers)``: one draw per language (``per_language``) or a fresh draw per question
    (``per_question``, as the paper did), each seeded by ``seed`` and the language or question id
    alone (adding a language or question never changes another's examples)."""
    candidates = {}
    for language in items["group"].unique():
        found = pool[(pool["language"] == language) & (pool["answers"].map(len) > 0)].sort_values("id")
        if len(found) < num_shots:
            raise GlobalrepError(
                f"{source} (config key 'tasks.tydiqa_goldp.train_source') has {len(found)} train "
                f"question(s) in {language!r}, fewer than num_shots={num_shots}; restrict 'languages' or add train data"
            )
        candidates[language] = found
    drawn = []
    for language, item_id in zip(items["group"], items["item_id"]):
        found = candidates[language]
        key = language if sampling == "per_language" else item_id
        chosen = found.iloc[sorted(random.Random(f"{seed}-{key}").sample(range(len(found)), num_shots))]
        drawn.append((list(chosen["context"]), list(chosen["question"]), [answers[0] for answers in chosen["answers"]]))
    return drawn


# --------------------------------------------------------------------------------- requests


def build_prompt(context: str, question: str, shots=((), (), ()), task_options: dict | None = None) -> str:
    """The prompt from the task's template (option ``prompt_template``; default
    globalrep/prompt_templates/tydiqa_goldp.jinja); ``shots`` are (contexts, questions, answers)."""
    examples = [{"context": c, "question": q, "answer": a} for c, q, a in zip(*shots)]
    return prompt_renderer(NAME, task_options or {})(context=context, question=question, shots=examples)


def requests(items: pd.DataFrame, options: dict, model_kind: str = "lm") -> list[GenerateRequest]:
    """One greedy generation per question, stopped at the first blank line. The test passage may
    be shortened from the left to fit the model's window (the engine logs how often)."""
    max_new_tokens = int(options.get("max_new_tokens", DEFAULTS["max_new_tokens"]))
    return [
        GenerateRequest(
            item_id=item.item_id,
            key="answer",
            prompt=build_prompt(
                item.context, item.question, (item.shot_contexts, item.shot_questions, item.shot_answers), options
            ),
            max_new_tokens=max_new_tokens,
            stop=("\n\n",),
            truncatable=item.context,
        )
        for item in items.itertuples(index=False)
    ]


# ------------------------------------------------------------------------------------ score


def score(items: pd.DataFrame, predictions: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Per model and question, in percent and each the best over the gold answers: ``exact_match``,
    ``f1``, ``cfmatch`` (100 × CFMatch's probability that the answer is correct) and ``cf_match``
    (100 where CFMatch judges it correct, else 0): ``model, item_id, group, group_name, metric,
    value, answer, exact_answer_cfmatch``. The last is what an exact answer would score on the
    question (its first gold answer as the answer), the measure of what CFMatch can see there."""
    check_known_items(NAME, items, predictions)
    merged = predictions[["model", "item_id", "answer_text"]].merge(
        items[["item_id", "group", "group_name", "question", "answers"]], on="item_id", validate="many_to_one"
    )
    answers = [extract_answer(text if isinstance(text, str) else "") for text in merged["answer_text"]]
    golds = [list(gold) for gold in merged["answers"]]
    cfmatch_values = _cfmatch_values(items, merged, answers, golds)
    rows = []
    for row, answer, gold, (cfm, judged, exact_answer) in zip(
        merged.itertuples(index=False), answers, golds, cfmatch_values
    ):
        metrics = {
            "exact_match": 100.0 * max(exact_match(answer, g) for g in gold),
            "f1": 100.0 * max(f1(answer, g) for g in gold),
            "cfmatch": cfm,
            "cf_match": judged,
        }
        rows += [
            (row.model, row.item_id, row.group, row.group_name, metric, value, answer, exact_answer)
            for metric, value in metrics.items()
        ]
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


SCORE_COLUMNS = ["model", "item_id", "group", "group_name", "metric", "value", "answer", "exact_answer_cfmatch"]


def _cfmatch_values(items: pd.DataFrame, merged: pd.DataFrame, answers: list[str], golds: list[list[str]]):
    """Per row of ``merged`` (a model's answer to a question): 100 × CFMatch of ``answers[i]``
    against ``golds[i]``, 100 × its judgment, and 100 × what the question's first gold answer
    scores as the answer. Imported here: only scoring runs CFMatch."""
    from globalrep import cfmatch

    best, judged = cfmatch.best_scores(answers, golds, list(merged["question"]))
    item_golds = [list(gold) for gold in items["answers"]]
    exact, _ = cfmatch.best_scores([gold[0] for gold in item_golds], item_golds, list(items["question"]))
    exact_answer = pd.Series(exact, index=items["item_id"].to_numpy()).reindex(merged["item_id"]).to_numpy()
    return zip(100.0 * best, 100.0 * judged, 100.0 * exact_answer)


def cfmatch_blind_spots(scores: pd.DataFrame, chains: dict, options: dict) -> pd.DataFrame:
    """Per language, what CFMatch can see there: ``questions``; ``exact_answer_below_half``, the
    share (%) of questions whose gold answer, given as the answer, CFMatch scores under 50, and
    ``exact_answer_cfmatch``, that score's mean; ``exact_matches``, the answers of all models that
    match a gold answer exactly, and ``exact_matches_below_half``, the share (%) of them scored
    under 50; ``cfmatch_reliable``, false where an exact answer scores under 50 for most questions
    (CFMatch's vocabulary is English, so it cannot judge most text in other scripts)."""
    items = scores.drop_duplicates("item_id")
    by_item = items.groupby("group", sort=True)
    ceiling = by_item["exact_answer_cfmatch"]
    table = pd.DataFrame(
        {
            "group_name": by_item["group_name"].first(),
            "questions": by_item.size(),
            "exact_answer_below_half": ceiling.agg(lambda values: 100.0 * (values < 50).mean()),
            "exact_answer_cfmatch": ceiling.mean(),
        }
    )
    keys = ["model", "item_id", "group"]
    exact = scores.loc[(scores["metric"] == "exact_match") & (scores["value"] == 100.0), keys].merge(
        scores.loc[scores["metric"] == "cfmatch", [*keys, "value"]], on=keys
    )
    found = exact.groupby("group")["value"].agg(["size", lambda values: 100.0 * (values < 50).mean()])
    table["exact_matches"] = found.iloc[:, 0].reindex(table.index, fill_value=0).astype(int)
    table["exact_matches_below_half"] = found.iloc[:, 1].reindex(table.index)
    table["cfmatch_reliable"] = table["exact_answer_below_half"] <= UNRELIABLE_BELOW_HALF
    return table.rename_axis("group").reset_index()


UNRELIABLE_BELOW_HALF = 50.0  # % of exact answers CFMatch scores under 50 beyond which it cannot judge a language


def blind_spots_summary(table: pd.DataFrame) -> str:
    """The report's reading of ``tydiqa_goldp_cfmatch_blind_spots.csv``."""
    reliable = table["cfmatch_reliable"].astype(bool)
    return (
        "CFMatch's classifier knows English words only, so outside the Latin script it often scores "
        "even an exact answer as wrong. Share of questions whose gold answer, given as the answer, scores "
        f"under 50: CFMatch cannot judge {_shares(table[~reliable]) or 'no language'} (its values there "
        f"are unreliable, marked † in the figures); it can judge {_shares(table[reliable]) or 'no language'}. "
        "exact_matches_below_half is the same share among the models' own exact matches."
    )


def _shares(rows: pd.DataFrame) -> str:
    """``Bengali 98%, Korean 88%``: each language's share of exact answers scored under 50."""
    return ", ".join(f"{name} {share:.0f}%" for name, share in zip(rows["group_name"], rows["exact_answer_below_half"]))


# Extra tables: results/tables/tydiqa_goldp_from_base.csv, the paper's Figure 3, each aligned
# model's paired change from its chain's base model; and what CFMatch can see per language.
EXTRA_TABLES = {
    "from_base": lambda scores, chains, options: deltas_table(scores, chains, from_base=True),
    "cfmatch_blind_spots": cfmatch_blind_spots,
}
EXTRA_TABLE_SUMMARIES = {"cfmatch_blind_spots": blind_spots_summary}
FIGURE_TITLES = {
    "f1": "TyDiQA-GoldP F1 (%)",
    "exact_match": "TyDiQA-GoldP exact match (%)",
    "cfmatch": "TyDiQA-GoldP CFMatch (%)",
}


def figures(tables: pd.DataFrame, deltas: pd.DataFrame, context: FigureContext, options: dict) -> list[Path]:
    """The paper's Figure 3 per chain (option ``figure_metric``'s change from the base model), the
    consecutive changes, and every model's score per language. With CFMatch, the languages it
    cannot judge (``cfmatch_blind_spots``) are marked †, and a footnote says why."""
    from globalrep.figures.languages import language_figures

    metric = options.get("figure_metric", DEFAULTS["figure_metric"])
    blind_spots = context.extra_tables.get("cfmatch_blind_spots")
    flagged, footnote = [], ""
    if metric == "cfmatch" and blind_spots is not None:
        blind = blind_spots[~blind_spots["cfmatch_reliable"].astype(bool)]
        flagged = list(blind["group"])
        footnote = (
            "† CFMatch cannot judge this language, its values are unreliable: its classifier knows English "
            f"words only, and an exact answer scores under 50 for most questions ({_shares(blind)})."
        )
    return language_figures(
        tables,
        deltas,
        context,
        context.out_dir / NAME,
        metric,
        FIGURE_TITLES[metric],
        change_limits=options.get("figure_change_limits"),
        flagged=flagged,
        footnote=footnote,
    )


# ------------------------------------------------------------------------------- published


def read_published(path: Path, items: pd.DataFrame, requests: Sequence, model) -> pd.DataFrame:
    """The backend ``published``: the generations of a published ``1-shot`` folder (one JSON per language); a question it lacks is a missing answer."""
    generations = {}
    for language in sorted(set(items["group"])):
        file = path / f"{language}.json"
        if not file.is_file():
            raise GlobalrepError(f"{path}: no published generations for {language} ({file.name} is missing)")
        try:
            published = json.loads(file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise GlobalrepError(f"{file}: not readable as JSON ({error})") from None
        if not isinstance(published, dict):
            raise GlobalrepError(f"{file}: expected a JSON object {{question_id: generated text}}")
        generations.update(published)
    item_ids = set(items["item_id"])
    if not item_ids & set(generations):
        return pd.DataFrame({"item_id": []})  # none of our questions: the wrong items, not missing answers
    answers: Answers = {}
    for request in requests:  # a question the file lacks, or a null, is a missing answer
        if request.item_id in item_ids:
            text = generations.get(request.item_id)
            missing = not isinstance(text, str)
            answers.update(generate_answer(request, "" if missing else text))
            answers[(request.item_id, "missing_answer")] = missing
    return prediction_frame(answers)
