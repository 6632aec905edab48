"""TyDiQA-GoldP (Clark et al. 2020): extractive question answering on gold passages, 9 languages.

The model sees an instruction to extract the answer span from the context, ``num_shots`` worked
examples of its language (drawn once per language from the train pool with a fixed seed), then
the test passage and question; it continues greedily. Scoring keeps the text before the first
blank line and compares it with each gold answer after SQuAD-1.1 normalisation: ``exact_match``
and token ``f1`` in percent, the best over gold answers, per language (group = TyDiQA's language
name, the prefix of the question id, e.g. ``english``).
"""

from __future__ import annotations

import collections
import json
import logging
import random
import re
import string
from pathlib import Path

import pandas as pd

from globalrep.datafiles import local_files
from globalrep.engine.answers import Answers, generate_answer, prediction_frame
from globalrep.engine.requests import GenerateRequest
from globalrep.errors import GlobalrepError
from globalrep.languages import named_language
from globalrep.models import is_local_path

NAME = "tydiqa_goldp"
PROMPT_VERSION = "1"
MODEL_KINDS = ("lm",)
AXIS = "languages"  # the report's section: dialects | languages | opinions

DEFAULT_SOURCE = "google-research-datasets/tydiqa"
HUB_CONFIG = "secondary_task"
INSTRUCTION = (
    "Answer the question by extracting a span of text from the context. "
    "Reply with the extracted span only."
)
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
    num_shots = int(options.get("num_shots", 1))
    test = _select_languages(_read_questions(source, options.get("split", "validation"), "source"), languages, source)
    items = test.rename(columns={"language": "group", "id": "item_id"})
    items.insert(2, "group_name", items["group"].map(named_language))
    shots = {language: ([], [], []) for language in items["group"].unique()}
    if num_shots > 0:
        train_source = _train_source(options, source)
        pool = _read_questions(train_source, "train", "train_source")
        shots = _sample_shots(pool, sorted(shots), num_shots, int(options.get("seed", 0)), train_source)
    for column, part in (("shot_contexts", 0), ("shot_questions", 1), ("shot_answers", 2)):
        items[column] = items["group"].map(lambda language: shots[language][part])
    repeated = items["item_id"][items["item_id"].duplicated()]
    if len(repeated):
        raise GlobalrepError(f"{source}: question id(s) {sorted(set(repeated))[:3]} occur more than once")
    log.info("%s: %d questions in %d languages, %d shot(s) each", source, len(items), items["group"].nunique(), num_shots)
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
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        return [
            {
                "id": str(qa["id"]),
                "context": paragraph["context"],
                "question": qa["question"],
                "answers": [answer["text"] for answer in qa["answers"]],
            }
            for article in data
            for paragraph in article["paragraphs"]
            for qa in paragraph["qas"]
        ]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise GlobalrepError(
            f"{path}: not SQuAD-1.1 JSON ({error.__class__.__name__}: {error}); expected "
            "data[].paragraphs[].{context, qas[].{id, question, answers[].text}}"
        ) from None


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


def _sample_shots(pool: pd.DataFrame, languages: list[str], num_shots: int, seed: int, source: str) -> dict:
    """Per language, ``num_shots`` train questions drawn with a seed of their own (adding a
    language never changes another's examples): ``{language: (contexts, questions, answers)}``."""
    shots = {}
    for language in languages:
        candidates = pool[(pool["language"] == language) & (pool["answers"].map(len) > 0)].sort_values("id")
        if len(candidates) < num_shots:
            raise GlobalrepError(
                f"{source} (config key 'tasks.tydiqa_goldp.train_source') has {len(candidates)} train "
                f"question(s) in {language!r}, fewer than num_shots={num_shots}; restrict 'languages' or add train data"
            )
        chosen = candidates.iloc[sorted(random.Random(f"{seed}-{language}").sample(range(len(candidates)), num_shots))]
        shots[language] = (list(chosen["context"]), list(chosen["question"]), [answers[0] for answers in chosen["answers"]])
    return shots


# --------------------------------------------------------------------------------- requests


def build_prompt(context: str, question: str, shots=((), (), ())) -> str:
    blocks = [INSTRUCTION]
    blocks += [f"Context: {c}\nQuestion: {q}\nExtracted Answer: {a}" for c, q, a in zip(*shots)]
    blocks.append(f"Context: {context}\nQuestion: {question}\nExtracted Answer:")
    return "\n\n".join(blocks)


def requests(items: pd.DataFrame, options: dict, model_kind: str = "lm") -> list[GenerateRequest]:
    """One greedy generation per question, stopped at the first blank line. The test passage may
    be shortened from the left to fit the model's window (the engine logs how often)."""
    max_new_tokens = int(options.get("max_new_tokens", 50))
    return [
        GenerateRequest(
            item_id=item.item_id,
            key="answer",
            prompt=build_prompt(
                item.context, item.question, (item.shot_contexts, item.shot_questions, item.shot_answers)
            ),
            max_new_tokens=max_new_tokens,
            stop=("\n\n",),
            truncatable=item.context,
        )
        for item in items.itertuples(index=False)
    ]


# ------------------------------------------------------------------------------------ score


def score(items: pd.DataFrame, predictions: pd.DataFrame, options: dict) -> pd.DataFrame:
    """``exact_match`` and ``f1`` (percent, best over gold answers) per model and question:
    ``model, item_id, group, group_name, metric, value, answer``."""
    merged = predictions[["model", "item_id", "answer_text"]].merge(
        items[["item_id", "group", "group_name", "answers"]], on="item_id", validate="many_to_one"
    )
    if len(merged) != len(predictions):
        raise GlobalrepError(f"{NAME}: predictions for items that are not in the prepared items; rerun inference")
    rows = []
    for row in merged.itertuples(index=False):
        answer = extract_answer(row.answer_text if isinstance(row.answer_text, str) else "")
        for metric, function in (("exact_match", exact_match), ("f1", f1)):
            value = 100.0 * max(function(answer, gold) for gold in row.answers)
            rows.append((row.model, row.item_id, row.group, row.group_name, metric, value, answer))
    return pd.DataFrame(rows, columns=["model", "item_id", "group", "group_name", "metric", "value", "answer"])


def figures(tables: pd.DataFrame, deltas: pd.DataFrame, chains: dict, out_dir, options: dict) -> list[Path]:
    """The paper's Figure 3 per chain (F1), and every model's F1 per language."""
    from globalrep.figures.languages import language_figures

    return language_figures(tables, deltas, chains, Path(out_dir) / NAME, "f1", "TyDiQA-GoldP F1 (%)", options)


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
