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
"""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from globalrep import md3
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
    ("question", "options", "probs", "model_id", "load_8bit", "max_choice", "chose_first", "chose_last", "chose_middle")
)
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
    missing = set(items["item_id"]) - set(answers.get("item_id", ()))
    if missing:
        raise GlobalrepError(
            f"{path}: no published answer for {len(missing)} of {len(items)} items of task {task_name!r} "
            f"(e.g. {sorted(missing)[0]}); the task's items must be the ones the paper ran"
        )
    return answers[answers["item_id"].isin(set(items["item_id"]))].assign(published=True).reset_index(drop=True)


# ------------------------------------------------------------------------------------ adapters


def _md3_taboo(path: Path, items: pd.DataFrame, requests: Sequence[Request], model: ModelSpec) -> pd.DataFrame:
    published = pd.read_csv(path, dtype=str, keep_default_na=False)
    require_columns(published, ("generated_answer", "correct_answer_prob", "distractor_probs"), path,
                    "a published md3-game file")  # fmt: skip
    games = md3.read_items_csv(path)  # the same content hash as our items' ids
    if len(games) != len(published):
        raise GlobalrepError(f"{path}: {len(published) - len(games)} repeated games; expected one row per game")
    by_id = dict(zip(games["item_id"], zip(games["answer"], games["distractors"], published.itertuples(index=False))))
    rows = {}
    for request in requests:
        if request.item_id not in by_id:
            continue
        answer_word, distractors, game = by_id[request.item_id]
        row = rows.setdefault(request.item_id, {"item_id": request.item_id})
        if request.key == "generated":
            row["generated_text"] = game.generated_answer
            continue
        where = f"{path}, game {request.item_id}"
        probs = [_number(game.correct_answer_prob, where)] + _numbers(game.distractor_probs, where, len(distractors))
        prob_of = dict(zip([answer_word, *distractors], probs))
        words = [continuation.strip() for continuation in request.continuations]
        row[f"{request.key}_logprob"] = _log([prob_of[word] for word in words])
        row[f"{request.key}_ntokens"] = [1] * len(words)
    return pd.DataFrame(rows.values())


def _tydiqa_goldp(path: Path, items: pd.DataFrame, requests: Sequence[Request], model: ModelSpec) -> pd.DataFrame:
    generations = {}
    for language in sorted(set(items["group"])):
        file = path / f"{language}.json"
        if not file.is_file():
            raise GlobalrepError(f"{path}: no published generations for {language} ({file.name} is missing)")
        generations.update(json.loads(file.read_text(encoding="utf-8")))
    return pd.DataFrame(
        [{"item_id": r.item_id, f"{r.key}_text": generations[r.item_id]} for r in requests if r.item_id in generations]
    )


def _global_opinions(path: Path, items: pd.DataFrame, requests: Sequence[Request], model: ModelSpec) -> pd.DataFrame:
    from globalrep.tasks.global_opinions import item_id, parse_options, row_error

    published = pd.read_csv(path, dtype=str, keep_default_na=False)  # a question may be empty text
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
        where = f"{path}: row {index}"
        probs = _numbers(published.at[index, "probs"], where, len(request.continuations))
        asked = similarity.loc[index]
        rows.append(
            {
                "item_id": request.item_id,
                f"{request.key}_logprob": _log(probs),
                f"{request.key}_ntokens": [1] * len(probs),
                "published_similarity": [float(asked.get(c, np.nan)) for c in item_countries[request.item_id]],
            }
        )
    return pd.DataFrame(rows)


def _askreddit(path: Path, items: pd.DataFrame, requests: Sequence[Request], model: ModelSpec) -> pd.DataFrame:
    from globalrep.tasks.askreddit import item_id

    published = pd.read_csv(path)
    require_columns(published, ("Question", "Response Format"), path, "a published AskReddit file")
    countries = [column for column in published.columns if column not in ASKREDDIT_META_COLUMNS]
    ids = [item_id(str(q).strip(), str(r).strip()) for q, r in zip(published["Question"], published["Response Format"])]
    values = published[countries].set_axis(ids).astype(float)
    values = values[~values.index.duplicated()]
    wanted = list(items["countries"].iloc[0]) if len(items) else []
    values = _country_columns(values, wanted, path)
    rows = []
    for request in requests:
        if request.item_id not in values.index:
            continue
        row = values.loc[request.item_id].tolist()
        if model.kind == "reward":
            rows.append({"item_id": request.item_id, f"{request.key}_reward": row})
        else:  # mean per-token NLL: one "token" of log-probability -NLL
            rows.append(
                {"item_id": request.item_id, f"{request.key}_logprob": [-v for v in row], f"{request.key}_ntokens": [1] * len(row)}
            )
    return pd.DataFrame(rows)


def _where_from(path: Path, items: pd.DataFrame, requests: Sequence[Request], model: ModelSpec) -> pd.DataFrame:
    published = pd.read_csv(path)
    require_columns(published, ("country", "reward"), path, "a published where-from file")
    repeated = published["country"][published["country"].duplicated()]
    if len(repeated):
        raise GlobalrepError(f"{path}: countries repeat (e.g. {repeated.iloc[0]!r}); expected one row per country")
    rewards = published.set_index("country")["reward"].astype(float).to_frame().T
    rewards = _country_columns(rewards, list(items["group"]), path).iloc[0]
    country_of = items.set_index("item_id")["group"]
    return pd.DataFrame(
        [{"item_id": r.item_id, f"{r.key}_reward": [float(rewards[country_of[r.item_id]])]} for r in requests]
    )


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


def _literal(text: str, where: str):
    try:
        return ast.literal_eval(str(text).strip())
    except (SyntaxError, ValueError) as error:
        raise GlobalrepError(f"{where}: not a Python literal ({error}): {str(text)[:80]!r}") from None


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise GlobalrepError(f"{where}: not a number: {text[:40]!r}") from None


def _numbers(text: str, where: str, count: int) -> list[float]:
    """A published list of ``count`` probabilities."""
    values = _literal(text, where)
    if not isinstance(values, (list, tuple)) or len(values) != count:
        raise GlobalrepError(f"{where}: expected a list of {count} probabilities, got {str(text)[:80]!r}")
    return [float(v) for v in values]


def _log(probs: Sequence[float]) -> list[float]:
    with np.errstate(divide="ignore"):  # a probability of 0 is log 0 = -inf, ranked last
        return np.log(np.asarray(probs, dtype=float)).tolist()
