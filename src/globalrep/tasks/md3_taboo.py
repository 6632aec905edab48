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
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from globalrep import md3, tables
from globalrep import published_files as pf
from globalrep.engine.answers import Answers, generate_answer, loglik_answer, prediction_frame
from globalrep.engine.requests import GenerateRequest, LoglikRequest
from globalrep.errors import GlobalrepError
from globalrep.prompt_templates import prompt_renderer
from globalrep.sources import require_columns
from globalrep.tasks.base import FigureContext, best_choice, check_known_items, load_options_schema, option_defaults

NAME = "md3_taboo"
# Bump with any change to the default prompt template (prompt_templates/md3_taboo.jinja), to the
# requests, or to the preparation (including data/md3_curation.yaml): it reruns inference.
PROMPT_VERSION = "3"  # 2: words scored right after "Secret Word:", as the paper did; 3: legend and "---" line
MODEL_KINDS = ("lm",)
AXIS = "dialects"  # the report's section: dialects | languages | opinions
# The options and their defaults: md3_taboo.schema.yaml beside this module.
OPTIONS_SCHEMA = load_options_schema(__file__)
DEFAULTS = option_defaults(OPTIONS_SCHEMA)

DEFAULT_MAX_NEW_TOKENS = DEFAULTS["max_new_tokens"]
DEFAULT_SEED = DEFAULTS["seed"]
REFERENCE = "en_us"
DIALECT_LABELS = {"en_us": "US English", "en_in": "Indian English", "en_ng": "Nigerian English"}
METRICS = ("generated_correct", "chose_correct")
# The paper drew the answer's position per game with Python's random, seeded with the file's
# ``seed`` (221), over the games in this order; ties went to the first choice in that order.
PAPER_DIALECT_ORDER = ("en_in", "en_ng", "en_us")


def build_prompt(transcript: Iterable[Sequence[str]], task_options: dict | None = None) -> str:
    """The prompt for a transcript given as ``(speaker, text)`` lines, from the task's template
    (option ``prompt_template``; default globalrep/prompt_templates/md3_taboo.jinja)."""
    return prompt_renderer(NAME, task_options or {})(transcript=md3.render(transcript))


# ---------------------------------------------------------------------------------- prepare


def resolve_source(options: dict, task: str = NAME) -> str:
    """The folder (``md3_dir``) or file (``items_csv``) the games come from; exactly one is set,
    and it must exist (a missing MD3 folder says where to get MD3). ``task`` names the config
    block in errors (md3_taboo_transfer reads MD3 too)."""
    given = [key for key in ("md3_dir", "items_csv") if options.get(key)]
    if len(given) != 1:
        raise GlobalrepError(
            f"config key 'tasks.{task}' needs exactly one of 'md3_dir' (the raw MD3 folder) or "
            f"'items_csv' (cleaned games), got {' and '.join(given) or 'neither'}. {md3.DOWNLOAD_HINT}"
        )
    source = str(options[given[0]])
    if given[0] == "md3_dir":
        md3.check_md3_dir(source, _dialects(options))
    elif not Path(source).expanduser().is_file():
        raise GlobalrepError(f"MD3 items file '{source}' (config key 'tasks.{task}.items_csv') does not exist")
    return source


def prepare(options: dict, source: str | None = None) -> pd.DataFrame:
    """One row per game: ``item_id, group (dialect), clip_identifier, transcript (list of
    [speaker, text]), answer, distractors``."""
    source = source or resolve_source(options)
    if Path(source).is_dir():
        return md3.read_md3_dir(source, _dialects(options))
    return md3.read_items_csv(source, _dialects(options))


def _dialects(options: dict) -> list[str]:
    return list(options.get("dialects", md3.DIALECTS))


# --------------------------------------------------------------------------------- requests


def answer_position(item_id: str, n_distractors: int, seed: int) -> int:
    """Where the answer goes among the distractors: random, but fixed by (seed, item) alone, so it
    does not depend on which items share a shard."""
    return random.Random(f"{seed}:{item_id}").randint(0, n_distractors)


def choices(item_id: str, answer: str, distractors: Sequence[str], seed: int) -> list[str]:
    """The answer and the distractors, the answer at its seeded position."""
    words = list(distractors)
    words.insert(answer_position(item_id, len(words), seed), answer)
    return words


def requests_for(items: pd.DataFrame, options: dict) -> list[GenerateRequest | LoglikRequest]:
    """Per game a greedy guess (key ``generated``) and the log-likelihood of each choice after
    the prompt (key ``choice``)."""
    max_new_tokens = int(options.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS))
    seed = int(options.get("seed", DEFAULT_SEED))
    built = []
    for item in items.itertuples(index=False):
        prompt = build_prompt(item.transcript, options)
        words = choices(item.item_id, item.answer, item.distractors, seed)
        built += [
            GenerateRequest(item_id=item.item_id, key="generated", prompt=prompt, max_new_tokens=max_new_tokens),
            # Each word right after the prompt, as the paper scored it ("Secret Word:Atom").
            LoglikRequest(item_id=item.item_id, key="choice", context=prompt, continuations=tuple(words)),
        ]
    return built


def requests(items: pd.DataFrame, options: dict, model_kind: str = "lm") -> list[GenerateRequest | LoglikRequest]:
    """The task protocol's entry point: :func:`requests_for` (language models only)."""
    return requests_for(items, options)


# ------------------------------------------------------------------------------------ score


def generated_correct(text: str, answer: str, distractors: Sequence[str]) -> bool:
    """The guess names the answer (case-insensitive substring) and no distractor."""
    guess = text.lower()
    return answer.lower() in guess and not any(word.lower() in guess for word in distractors)


def chose_correct(
    logprobs: Sequence[float], ntokens: Sequence[int], answer_index: int, tiebreak: Sequence[int] | None = None
) -> bool:
    """The answer has the highest per-token mean log-likelihood. A tie goes to the choice first in
    ``tiebreak`` order (the published backend: the order the paper scored the choices in), else to
    the earlier choice; the answer's position is random, so ties favour no one. A missing (NaN)
    score is a missing answer: not correct; except in the paper's order, where it is the paper's
    own choice (its ``torch.argmax`` took the first NaN as the maximum)."""
    if tiebreak is None and np.isnan(np.asarray(logprobs, dtype=float)).any():
        return False
    return best_choice(logprobs, ntokens, tiebreak) == answer_index


def score_items(items: pd.DataFrame, predictions: pd.DataFrame, options: dict) -> pd.DataFrame:
    """``model, item_id, group, metric, value`` with metrics ``generated_correct`` and
    ``chose_correct`` (1.0 or 0.0) per game and model."""
    check_known_items(NAME, items, predictions)
    needed = ["generated_text", "choice_logprob", "choice_ntokens"]
    missing = [column for column in needed if column not in predictions.columns]
    if missing:
        raise GlobalrepError(f"{NAME}: predictions lack column(s) {', '.join(missing)}; rerun inference")
    seed = int(options.get("seed", DEFAULT_SEED))
    if "choice_tiebreak" not in predictions.columns:
        predictions = predictions.assign(choice_tiebreak=None)
    merged = predictions[["model", "item_id", "choice_tiebreak", *needed]].merge(
        items[["item_id", "group", "answer", "distractors"]], on="item_id", validate="many_to_one"
    )
    rows = []
    for pred in merged.itertuples(index=False):
        distractors = list(pred.distractors)
        if len(pred.choice_logprob) != len(distractors) + 1 or len(pred.choice_ntokens) != len(distractors) + 1:
            raise GlobalrepError(
                f"{NAME}: model {pred.model!r}, item {pred.item_id}: {len(pred.choice_logprob)} choice scores "
                f"for {len(distractors) + 1} choices; rerun inference for this model"
            )
        position = answer_position(pred.item_id, len(distractors), seed)
        rows += [
            (pred.model, pred.item_id, pred.group, "generated_correct",
             float(generated_correct(pred.generated_text, pred.answer, distractors))),
            (pred.model, pred.item_id, pred.group, "chose_correct",
             float(chose_correct(pred.choice_logprob, pred.choice_ntokens, position, _tiebreak(pred.choice_tiebreak)))),
        ]  # fmt: skip
    return pd.DataFrame(rows, columns=["model", "item_id", "group", "metric", "value"])


score = score_items  # the task protocol's name


def _tiebreak(order) -> Sequence[int] | None:
    """A prediction's tie order; None where its backend gave none (NaN after concatenating)."""
    return None if order is None or (isinstance(order, float) and np.isnan(order)) else order


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
    for metric in METRICS:
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
