"""The MD3 Taboo game (Eisenstein et al. 2023): guess the secret word from a dialogue in US, Indian
or Nigerian English.

Each game is a transcript cut before the answer is said, the answer and five distractors. The
model answers twice: it generates a guess (greedy, 10 new tokens; correct when the answer occurs
in the guess and no distractor does, the paper's headline metric) and it ranks the answer among
the distractors by per-token mean log-likelihood. The paper found that alignment raises US
English far more than Indian or Nigerian English; the gap tables follow that per model and
along each chain.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from globalrep import md3, tables
from globalrep import published_files as pf
from globalrep.engine.answers import Answers, generate_answer, loglik_answer, prediction_frame
from globalrep.engine.requests import GenerateRequest, LoglikRequest
from globalrep.errors import GlobalrepError
from globalrep.sources import require_columns
from globalrep.tasks.base import FigureContext, check_known_items, load_options_schema, option_defaults

NAME = "md3_taboo"
PROMPT_VERSION = md3.PROMPT_VERSION  # the game's prompt, requests and preparation (globalrep.md3)
MODEL_KINDS = ("lm",)
AXIS = "dialects"  # the report's section: dialects | languages | opinions
# The options and their defaults: md3_taboo.schema.yaml beside this module.
OPTIONS_SCHEMA = load_options_schema(__file__)
# The dialects are md3's list; the schema block leaves them to the code.
OPTIONS_SCHEMA["properties"]["dialects"]["items"]["enum"] = list(md3.DIALECTS)
OPTIONS_SCHEMA["properties"]["dialects"]["default"] = list(md3.DIALECTS)
DEFAULTS = option_defaults(OPTIONS_SCHEMA)

REFERENCE = "en_us"
DIALECT_LABELS = {"en_us": "US English", "en_in": "Indian English", "en_ng": "Nigerian English"}
# The paper drew the answer's position per game with Python's random, seeded with the file's
# ``seed`` (221), over the games in this order; ties went to the first choice in that order.
PAPER_DIALECT_ORDER = ("en_in", "en_ng", "en_us")


def resolve_source(options: dict) -> str:
    """The folder (``md3_dir``) or file (``items_csv``) the games come from (see
    :func:`globalrep.md3.resolve_source`)."""
    return md3.resolve_source(options, NAME, _dialects(options))


def prepare(options: dict, source: str | None = None) -> pd.DataFrame:
    """One row per game: ``item_id, group (dialect), clip_identifier, transcript (list of
    [speaker, text]), answer, distractors``."""
    return md3.read_games(source or resolve_source(options), _dialects(options))


def _dialects(options: dict) -> list[str]:
    return list(options.get("dialects", md3.DIALECTS))


def requests(items: pd.DataFrame, options: dict, model_kind: str = "lm") -> list[GenerateRequest | LoglikRequest]:
    """Per game a greedy guess and the choices' log-likelihoods (:func:`globalrep.md3.requests`;
    language models only)."""
    return md3.requests(items, {**DEFAULTS, **options})


def score(items: pd.DataFrame, predictions: pd.DataFrame, options: dict) -> pd.DataFrame:
    """``model, item_id, group, metric, value`` with metrics ``generated_correct`` and
    ``chose_correct`` (1.0 or 0.0) per game and model."""
    check_known_items(NAME, items, predictions)
    return md3.score(items, predictions, int(options.get("seed", DEFAULTS["seed"])), NAME)


# ------------------------------------------------------------------------------- published


def read_published(path: Path, items: pd.DataFrame, requests: Sequence, model) -> pd.DataFrame:
    """The backend ``published``: one row per game of ``items`` from a published md3-game file."""
    published = pf.read_csv(path, "a published md3-game file", dtype=str, keep_default_na=False)
    require_columns(published, ("dialect", "seed", "generated_answer", "correct_answer_prob", "distractor_probs"), path,
                    "a published md3-game file")  # fmt: skip
    games = pf.read_with(md3.read_items_csv, path)  # the same content hash as our items' ids
    if len(games) != len(published):
        raise GlobalrepError(f"{path}: {len(published) - len(games)} repeated games; expected one row per game")
    positions = paper_answer_positions(published, games, path)
    by_id = dict(zip(games["item_id"], zip(positions, published.itertuples(index=False), range(len(games)))))
    recorded = published.get("chose_correct_answer", pd.Series("", index=published.index)).str.strip().str.lower()
    disagreements = []
    answers: Answers = {}
    for request in requests:
        if request.item_id not in by_id:
            continue
        position, game, index = by_id[request.item_id]
        missing = answers.get((request.item_id, "missing_answer"), False)
        if isinstance(request, GenerateRequest):
            answers.update(generate_answer(request, game.generated_answer))
            answers[(request.item_id, "missing_answer")] = missing or not game.generated_answer.strip()
            continue
        where = f"{path}: row {index} (counting from 0)"
        answer_word, distractors = games.at[index, "answer"], games.at[index, "distractors"]
        answer_prob = pf.number(game.correct_answer_prob, where)
        distractor_probs = pf.numbers(game.distractor_probs, where, len(distractors))
        paper_order = [*distractors[:position], answer_word, *distractors[position:]]
        prob_of = dict(zip([answer_word, *distractors], [answer_prob, *distractor_probs]))
        words = [continuation.strip() for continuation in request.continuations]
        answers.update(loglik_answer(request, pf.log_probs([prob_of[word] for word in words]), [1] * len(words)))
        answers[(request.item_id, f"{request.key}_tiebreak")] = [paper_order.index(word) for word in words]
        answers[(request.item_id, "missing_answer")] = missing or bool(np.isnan([answer_prob, *distractor_probs]).any())
        # The paper's choice: argmax in its order, a NaN counting as the maximum (torch.argmax).
        in_paper_order = [*distractor_probs[:position], answer_prob, *distractor_probs[position:]]
        paper_chose_answer = int(np.argmax(in_paper_order)) == position
        if recorded[index] in ("true", "false") and (recorded[index] == "true") != paper_chose_answer:
            disagreements.append(index)
    if disagreements:
        raise GlobalrepError(
            f"{path}: {len(disagreements)} row(s) (first: row {disagreements[0]}, counting from 0) whose "
            "'chose_correct_answer' disagrees with the paper's choice rebuilt from the probabilities "
            "(argmax in the order the paper drew); use the file as the paper published it"
        )
    return prediction_frame(answers)


def paper_answer_positions(published: pd.DataFrame, games: pd.DataFrame, path: Path) -> list[int]:
    """Per game (in file order) where the paper inserted the answer among the distractors, the
    order it scored the choices in: ``random.randint(0, n - 1)`` per game (n distractors), seeded
    with the file's ``seed``, over the games in ``PAPER_DIALECT_ORDER``."""
    dialects = list(dict.fromkeys(published["dialect"]))
    seeds = set(published["seed"])
    if dialects != [d for d in PAPER_DIALECT_ORDER if d in dialects] or len(seeds) != 1:
        raise GlobalrepError(
            f"{path}: the games are not in the paper's order ({', '.join(PAPER_DIALECT_ORDER)}, one seed): "
            "the answer positions the paper drew cannot be rebuilt; use the file as the paper published it"
        )
    draw = random.Random(int(pf.number(seeds.pop(), f"{path}: column 'seed'")))
    return [draw.randint(0, len(distractors) - 1) for distractors in games["distractors"]]


# ------------------------------------------------------------------------- tables, figures

# Extra tables (results/tables/md3_taboo_{name}.csv): how far each dialect trails US English.
EXTRA_TABLES = {
    "gaps": lambda scores, chains, options: tables.gaps_table(scores, REFERENCE),
    "gap_changes": lambda scores, chains, options: tables.gap_changes_table(scores, REFERENCE, chains),
}


def figures(table: pd.DataFrame, deltas: pd.DataFrame, context: FigureContext, options: dict) -> list[Path]:
    """The paper's Figure 2 per metric: one panel per chain, dialects on the x axis, one bar per
    stage with its 95% CI."""
    from globalrep.figures.bars import plot_chain_bars  # plotting stack only where figures are drawn

    titles = {
        "generated_correct": "MD3 Taboo: secret word in the model's guess",
        "chose_correct": "MD3 Taboo: answer ranked above the distractors",
    }
    written = []
    for metric in md3.METRICS:
        written += plot_chain_bars(
            table,
            context.chains,
            metric=metric,
            out_prefix=context.out_dir / f"{NAME}_{metric}",
            title=titles[metric],
            models_stage=context.models_stage,
            group_labels=DIALECT_LABELS,
        )
    return written
