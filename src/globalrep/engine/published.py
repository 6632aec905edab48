"""The ``published`` backend: the paper's per-example outputs, converted to our predictions.

The paper's repository (SALT-NLP/unintended-impacts-of-alignment) publishes, per model, what
each model answered (``outputs/``). A model entry with ``backend: published`` names its files in
``published: {task: path}``; this backend reads the file of the task at hand and writes the same
columns the ``hf`` backend would, so scoring, tables, figures and the report run unchanged. Rows
it writes carry ``published = True``, for the few scores that need to know (see below).

What the paper published, and how it maps:

- ``md3-game/*.csv``: ``generated_answer`` → ``generated_text``; ``correct_answer_prob`` and
  ``distractor_probs`` → ``choice_logprob`` (log p, one "token" each) in our choice order.
- ``tydiqa-goldp/{dir}/greedy/1-shot/{language}.json`` (``{question_id: generation}``; the path is
  the ``1-shot`` folder) → ``answer_text``.
- ``globalopinionsqa/*.csv``: ``probs`` → ``choice_logprob = log p``, ``choice_ntokens = 1``; the
  per-country similarity columns (−1: not asked) → ``published_similarity`` in the item's
  country order, which scoring uses only when the items lack the countries' distributions.
- ``ask-reddit-perplexity-testing/*.csv`` (mean per-token NLL per country) → ``country_logprob
  = −NLL``, ``country_ntokens = 1`` (the sum was not published); the reward model's
  ``ask-reddit-reward-testing/*.csv`` → ``reply_reward``.
- ``reward-testing/where_from_*.csv`` → ``reply_reward``.

A published file is a real file: a value missing for one item (an empty cell, ``nan``, ``NaN``,
``None``; a question id absent from a TyDiQA file) makes that item's answer missing. It is kept
as NaN (empty text for a generation), flagged in the column ``missing_answer``, counted in the
log and the report, and scored as the paper scored it: not correct. A structural problem (a
missing column, a file that cannot be read, the wrong set of items, a list of the wrong length)
still stops the run, naming the file and the row.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from globalrep import md3
from globalrep.engine.backends import Shard
from globalrep.engine.requests import Request
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec
from globalrep.sources import require_columns

# Natural Earth renamed a few countries after the release the paper used; our country list may
# use the new name, the published columns the old one.
OLD_NATURAL_EARTH_NAMES = {
    "Czechia": "Czech Republic",
    "Guinea-Bissau": "Guinea Bissau",
    "Republic of the Congo": "Republic of Congo",
    "eSwatini": "Swaziland",
}
# The AskReddit files' columns before the countries (the perplexity and the reward layout).
ASKREDDIT_META_COLUMNS = frozenset(
    ("Question", "Full Prompt", "model", "reward_model", "Search Query", "Sentiment",
     "Response Format", "Category", "seed", "add_article", "use_chat_template")
)  # fmt: skip
# GlobalOpinionQA files' columns before the countries.
GOQA_META_COLUMNS = frozenset(
    ("question", "options", "probs", "model_id", "load_8bit", "max_choice", "chose_first", "chose_last", "chose_middle",
     "using_chat_template")
)  # fmt: skip
# How the paper's files spell a missing number (pandas' and Python's spellings).
MISSING_SPELLINGS = frozenset(("", "nan", "NaN", "-nan", "None", "null", "NULL", "NA", "N/A", "<NA>"))
# The MD3 game drew the answer's position per game with Python's random, seeded with the file's
# ``seed`` (221), over the games in this order; ties then went to the first choice in that order.
PAPER_MD3_DIALECT_ORDER = ("en_in", "en_ng", "en_us")
NOT_ASKED = -1

log = logging.getLogger(__name__)


def outputs_dir(paper_repo: str | Path) -> Path:
    """The folder of the published outputs: ``outputs/`` of a clone of the paper's repository,
    or ``paper_repo`` itself when it is that folder."""
    repo = Path(paper_repo).expanduser()
    if not repo.is_dir():
        raise GlobalrepError(
            f"paper_repo '{paper_repo}' is not a directory: clone SALT-NLP/unintended-impacts-of-alignment "
            "and give its path as config key 'paper_repo' (snakemake --config paper_repo=PATH)"
        )
    return repo / "outputs" if (repo / "outputs").is_dir() else repo


class PublishedBackend:
    """The ``published`` backend: answers a shard's requests from the model's published file for
    the shard's task; nothing to load."""

    def __init__(self, spec: ModelSpec, options: dict, progress: bool = False):
        self.spec = spec

    def answer(self, requests: Sequence[Request], shard: Shard | None = None) -> pd.DataFrame:
        if shard is None:
            raise GlobalrepError(f"model {self.spec.name!r} (backend published) answers a task's shard: pass shard=Shard(task, items)")
        return answer(shard.task, self.spec, shard.items, requests)

    def close(self) -> None:
        pass


def answer(task_name: str, model: ModelSpec, items: pd.DataFrame, requests: Sequence[Request]) -> pd.DataFrame:
    """One row per item of ``items`` from ``model``'s published file for ``task_name``."""
    path = model.published.get(task_name)
    if not path:
        raise GlobalrepError(
            f"model {model.name!r} has no published outputs for task {task_name!r} "
            f"(config key 'models.{model.name}.published.{task_name}')"
        )
    adapter = ADAPTERS.get(task_name)
    if adapter is None:
        raise GlobalrepError(
            f"the paper published no per-example outputs for task {task_name!r}; "
            f"tasks with published outputs: {', '.join(sorted(ADAPTERS))}"
        )
    if not Path(path).exists():
        raise GlobalrepError(f"model {model.name!r}: published file '{path}' for task {task_name!r} does not exist")
    log.info("%s / %s: reading the published outputs in %s", task_name, model.name, path)
    answers = adapter(Path(path), items, requests, model)
    absent = set(items["item_id"]) - set(answers.get("item_id", ()))
    if absent:
        raise GlobalrepError(
            f"{path}: no published answer for {len(absent)} of {len(items)} items of task {task_name!r} "
            f"(e.g. {sorted(absent)[0]}); the task's items must be the ones the paper ran"
        )
    answers = answers[answers["item_id"].isin(set(items["item_id"]))].reset_index(drop=True)
    n_missing = int(answers["missing_answer"].sum())
    if n_missing:
        log.warning(
            "%s / %s: %d of %d items have a missing value in %s; they are scored as missing (not correct)",
            task_name, model.name, n_missing, len(answers), path,
        )  # fmt: skip
    return answers.assign(published=True)


# ------------------------------------------------------------------------------------ adapters


def _md3_taboo(path: Path, items: pd.DataFrame, requests: Sequence[Request], model: ModelSpec) -> pd.DataFrame:
    published = _read_csv(path, "a published md3-game file", dtype=str, keep_default_na=False)
    require_columns(published, ("dialect", "seed", "generated_answer", "correct_answer_prob", "distractor_probs"), path,
                    "a published md3-game file")  # fmt: skip
    games = _read_published_items(md3.read_items_csv, path)  # the same content hash as our items' ids
    if len(games) != len(published):
        raise GlobalrepError(f"{path}: {len(published) - len(games)} repeated games; expected one row per game")
    paper_orders = paper_md3_choice_orders(published, games, path)
    by_id = dict(zip(games["item_id"], zip(paper_orders, published.itertuples(index=False), range(len(games)))))
    rows = {}
    for request in requests:
        if request.item_id not in by_id:
            continue
        paper_order, game, index = by_id[request.item_id]
        row = rows.setdefault(request.item_id, {"item_id": request.item_id, "missing_answer": False})
        if request.key == "generated":
            row["generated_text"] = game.generated_answer
            row["missing_answer"] |= not game.generated_answer.strip()
            continue
        where = f"{path}: row {index} (counting from 0)"
        probs = [_number(game.correct_answer_prob, where)] + _numbers(game.distractor_probs, where, len(paper_order) - 1)
        answer_word, distractors = games.at[index, "answer"], games.at[index, "distractors"]
        prob_of = dict(zip([answer_word, *distractors], probs))
        words = [continuation.strip() for continuation in request.continuations]
        row[f"{request.key}_logprob"] = _log([prob_of[word] for word in words])
        row[f"{request.key}_ntokens"] = [1] * len(words)
        row[f"{request.key}_tiebreak"] = [paper_order.index(word) for word in words]
        row["missing_answer"] |= bool(np.isnan(probs).any())
    return pd.DataFrame(rows.values())


def paper_md3_choice_orders(published: pd.DataFrame, games: pd.DataFrame, path: Path) -> list[list[str]]:
    """Per game (in file order) its choices in the order the paper scored them: the distractors
    with the answer inserted at the position the paper drew (``random.randint(0, n - 1)`` per game,
    seeded with the file's ``seed``, over the games in ``PAPER_MD3_DIALECT_ORDER``)."""
    dialects = list(dict.fromkeys(published["dialect"]))
    seeds = set(published["seed"])
    if dialects != [d for d in PAPER_MD3_DIALECT_ORDER if d in dialects] or len(seeds) != 1:
        raise GlobalrepError(
            f"{path}: the games are not in the paper's order ({', '.join(PAPER_MD3_DIALECT_ORDER)}, one seed): "
            "the answer positions the paper drew cannot be rebuilt; use the file as the paper published it"
        )
    draw = random.Random(int(_number(seeds.pop(), f"{path}: column 'seed'")))
    orders = []
    for answer_word, distractors in zip(games["answer"], games["distractors"]):
        position = draw.randint(0, len(distractors) - 1)
        orders.append([*distractors[:position], answer_word, *distractors[position:]])
    return orders


def _tydiqa_goldp(path: Path, items: pd.DataFrame, requests: Sequence[Request], model: ModelSpec) -> pd.DataFrame:
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
    rows = []
    for request in requests:  # a question the file lacks, or a null, is a missing answer
        if request.item_id in item_ids:
            text = generations.get(request.item_id)
            missing = not isinstance(text, str)
            rows.append({"item_id": request.item_id, f"{request.key}_text": "" if missing else text, "missing_answer": missing})
    return pd.DataFrame(rows)


def _global_opinions(path: Path, items: pd.DataFrame, requests: Sequence[Request], model: ModelSpec) -> pd.DataFrame:
    from globalrep.tasks.global_opinions import item_id, parse_options, row_error

    published = _read_csv(path, "a published globalopinionsqa file", dtype=str, keep_default_na=False)  # a question may be empty text
    require_columns(published, ("question", "options", "probs"), path, "a published globalopinionsqa file")
    by_id = {}
    for index, row in enumerate(published.itertuples(index=False)):
        options = parse_options(row.options, row_error(str(path), index, row.question))  # as prepare() reads them
        by_id.setdefault(item_id(str(row.question), options), index)
    similarity = goqa_similarities(published).replace(NOT_ASKED, np.nan)
    item_countries = items.set_index("item_id")["countries"]
    rows = []
    for request in requests:
        index = by_id.get(request.item_id)
        if index is None:
            continue
        where = f"{path}: row {index} (counting from 0)"
        probs = _numbers(published.at[index, "probs"], where, len(request.continuations))
        asked = similarity.loc[index]
        rows.append(
            {
                "item_id": request.item_id,
                "missing_answer": bool(np.isnan(probs).any()),
                f"{request.key}_logprob": _log(probs),
                f"{request.key}_ntokens": [1] * len(probs),
                "published_similarity": [float(asked.get(c, np.nan)) for c in item_countries[request.item_id]],
            }
        )
    return pd.DataFrame(rows)


def _askreddit(path: Path, items: pd.DataFrame, requests: Sequence[Request], model: ModelSpec) -> pd.DataFrame:
    from globalrep.tasks.askreddit import item_id

    published = _read_csv(path, "a published AskReddit file", dtype=str, keep_default_na=False)
    require_columns(published, ("Question", "Response Format"), path, "a published AskReddit file")
    countries = [column for column in published.columns if column not in ASKREDDIT_META_COLUMNS]
    ids = [item_id(str(q).strip(), str(r).strip()) for q, r in zip(published["Question"], published["Response Format"])]
    values = published[countries].set_axis(ids).apply(lambda column: _column_numbers(column, path))
    values = values[~values.index.duplicated()]
    wanted = list(items["countries"].iloc[0]) if len(items) else []
    values = _country_columns(values, wanted, path)
    rows = []
    for request in requests:
        if request.item_id not in values.index:
            continue
        row = values.loc[request.item_id].tolist()
        missing = bool(np.isnan(row).any())
        if model.kind == "reward":
            rows.append({"item_id": request.item_id, "missing_answer": missing, f"{request.key}_reward": row})
        else:  # mean per-token NLL: one "token" of log-probability -NLL
            rows.append(
                {"item_id": request.item_id, "missing_answer": missing,
                 f"{request.key}_logprob": [-v for v in row], f"{request.key}_ntokens": [1] * len(row)}
            )  # fmt: skip
    return pd.DataFrame(rows)


def _where_from(path: Path, items: pd.DataFrame, requests: Sequence[Request], model: ModelSpec) -> pd.DataFrame:
    published = _read_csv(path, "a published where-from file", dtype=str, keep_default_na=False)
    require_columns(published, ("country", "reward"), path, "a published where-from file")
    repeated = published["country"][published["country"].duplicated()]
    if len(repeated):
        raise GlobalrepError(f"{path}: countries repeat (e.g. {repeated.iloc[0]!r}); expected one row per country")
    rewards = _column_numbers(published.set_index("country")["reward"], path).to_frame().T
    rewards = _country_columns(rewards, list(items["group"]), path).iloc[0]
    country_of = items.set_index("item_id")["group"]
    rows = []
    for request in requests:
        reward = float(rewards[country_of[request.item_id]])
        rows.append({"item_id": request.item_id, "missing_answer": bool(np.isnan(reward)), f"{request.key}_reward": [reward]})
    return pd.DataFrame(rows)


ADAPTERS: dict[str, Callable[[Path, pd.DataFrame, Sequence[Request], ModelSpec], pd.DataFrame]] = {
    "md3_taboo": _md3_taboo,
    "tydiqa_goldp": _tydiqa_goldp,
    "global_opinions": _global_opinions,
    "askreddit": _askreddit,
    "where_from": _where_from,
}


# ------------------------------------------------------------------------------------- helpers


def goqa_similarities(published: pd.DataFrame) -> pd.DataFrame:
    """A published globalopinionsqa file's similarity columns (one per country) as numbers:
    ``NOT_ASKED`` where the country was not asked, NaN where its survey vector was empty."""
    countries = [column for column in published.columns if column not in GOQA_META_COLUMNS]
    return published[countries].apply(pd.to_numeric, errors="coerce")


def _country_columns(values: pd.DataFrame, countries: Sequence[str], path: Path) -> pd.DataFrame:
    """``values``' columns for ``countries``, in that order, under their names in our list
    (a country the paper's Natural Earth release named differently is found under that name)."""
    found = {c: c if c in values.columns else OLD_NATURAL_EARTH_NAMES.get(c) for c in countries}
    missing = [c for c, column in found.items() if column not in values.columns]
    if missing:
        raise GlobalrepError(
            f"{path}: no published values for {len(missing)} of our countries ({', '.join(missing[:8])}); "
            "the task's `countries` list must be the paper's or a subset of it"
        )
    return values[[found[c] for c in countries]].set_axis(list(countries), axis=1)


def _read_csv(path: Path, what: str, **options) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **options)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise GlobalrepError(f"{path}: cannot be read as {what} ({error.__class__.__name__}: {error})") from None


def _read_published_items(reader: Callable[[Path], pd.DataFrame], path: Path) -> pd.DataFrame:
    try:
        return reader(path)
    except (UnicodeDecodeError, pd.errors.ParserError) as error:
        raise GlobalrepError(f"{path}: cannot be read ({error.__class__.__name__}: {error})") from None


def _number(text: str, where: str) -> float:
    """A published number; NaN where the file spells a missing value."""
    text = str(text).strip()
    if text in MISSING_SPELLINGS:
        return float("nan")
    try:
        return float(text)
    except ValueError:
        raise GlobalrepError(f"{where}: not a number: {text[:40]!r}") from None


def _numbers(text: str, where: str, count: int) -> list[float]:
    """A published list of ``count`` probabilities (``[0.1, nan, ...]``); all NaN where the whole
    list is missing."""
    text = str(text).strip()
    if text in MISSING_SPELLINGS:
        return [float("nan")] * count
    if not (text.startswith(("[", "(")) and text.endswith(("]", ")"))):
        raise GlobalrepError(f"{where}: expected a list of {count} probabilities, got {text[:80]!r}")
    values = [_number(value, where) for value in text[1:-1].split(",") if value.strip()]
    if len(values) != count:
        raise GlobalrepError(f"{where}: expected a list of {count} probabilities, got {text[:80]!r}")
    return values


def _column_numbers(column: pd.Series, path: Path) -> pd.Series:
    """A published column of numbers as floats (NaN where missing); a cell that is neither stops."""
    return pd.Series(
        [_number(value, f"{path}: row {index} (counting from 0), column {column.name!r}") for index, value in enumerate(column)],
        index=column.index, name=column.name, dtype=float,
    )  # fmt: skip


def _log(probs: Sequence[float]) -> list[float]:
    with np.errstate(divide="ignore"):  # a probability of 0 is log 0 = -inf, ranked last
        return np.log(np.asarray(probs, dtype=float)).tolist()
