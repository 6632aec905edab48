"""MD3 Taboo games (Eisenstein et al. 2023) as the paper prepared them.

Two inputs give the same item table: the raw MD3 English release (per dialect a prompts TSV and a
transcripts TSV, gated on Kaggle) and a cleaned items CSV (``dialect, transcript, correct_answer,
distractors``), the form in which the paper published its 894 games.

A transcript is a list of ``(speaker, text)`` lines, so that a dialect rewrite can change the text
and keep the speakers; :func:`render` writes it as ``speaker: text`` lines.

The game itself (its prompt, requests and scores) is here too, shared by the tasks ``md3_taboo``
(MD3's own dialects) and ``md3_taboo_transfer`` (SAE games rewritten into other dialects).
"""

from __future__ import annotations

import ast
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from globalrep.choices import best_choice
from globalrep.digests import content_id
from globalrep.engine.requests import GenerateRequest, LoglikRequest
from globalrep.errors import GlobalrepError
from globalrep.prompt_templates import prompt_renderer
from globalrep.sources import read_csv_text, require_columns

# Bump with any change to the default prompt template (prompt_templates/md3_taboo.jinja), to the
# requests, or to the preparation (including data/md3_curation.yaml): it reruns inference.
PROMPT_VERSION = "3"  # 2: words scored right after "Secret Word:", as the paper did; 3: legend and "---" line
PROMPT_TEMPLATE = "md3_taboo"  # the default prompt: prompt_templates/md3_taboo.jinja
METRICS = ("generated_correct", "chose_correct")

DIALECTS = ("en_us", "en_in", "en_ng")
DOWNLOAD_HINT = (
    "MD3 is gated: download the English release from Kaggle (dataset jacobeis99/md3en, "
    "https://www.kaggle.com/datasets/jacobeis99/md3en), unzip it and point config key "
    "'tasks.md3_taboo.md3_dir' at the folder holding prompts_en_{us,in,ng}.tsv and "
    "transcripts_en_{us,in,ng}.tsv; or give the cleaned games as 'tasks.md3_taboo.items_csv'"
)
PROMPT_COLUMNS = ("clip_identifier", "game_type", "prompt_status", "correct_word/image", "distractors")
TRANSCRIPT_COLUMNS = ("clip_identifier", "speaker_id", "transcript")
ITEMS_COLUMNS = ("dialect", "transcript", "correct_answer", "distractors")
ITEM_COLUMNS = ["item_id", "group", "clip_identifier", "transcript", "answer", "distractors"]

Line = tuple[str, str]

log = logging.getLogger(__name__)


def render(transcript: Iterable[Sequence[str]]) -> str:
    """``speaker: text`` lines joined by newlines."""
    return "\n".join(f"{speaker}: {text}" for speaker, text in transcript)


def item_id(dialect: str, transcript: Iterable[Sequence[str]], answer: str, distractors: Sequence[str]) -> str:
    """Stable id from the game's content, the same whichever input it was read from."""
    return content_id("md3", dialect, render(transcript), answer, list(distractors))


# ----------------------------------------------------------------------------------- curation


@dataclass(frozen=True)
class Curation:
    """The paper's manual curation of MD3 clips (see data/md3_curation.yaml)."""

    skip: dict[str, str]  # clip -> reason
    keep_full_transcript: frozenset[str]
    cut_at_alternative: dict[str, str]  # clip -> how the answer was spoken


def load_curation() -> Curation:
    """The curation shipped with the package."""
    path = resources.files("globalrep") / "data" / "md3_curation.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    curation = Curation(
        skip={str(k): str(v) for k, v in data["skip"].items()},
        keep_full_transcript=frozenset(map(str, data["keep_full_transcript"])),
        cut_at_alternative={str(k): str(v) for k, v in data["cut_at_alternative"].items()},
    )
    both = curation.keep_full_transcript & set(curation.cut_at_alternative)
    if both:
        raise GlobalrepError(f"{path}: clips {sorted(both)} are both keep_full_transcript and cut_at_alternative")
    return curation


# ------------------------------------------------------------------------------ preparation


def clean_transcripts(rows: pd.DataFrame) -> dict[str, list[Line]]:
    """Per clip, in file order, its ``(speaker, text)`` lines: duplicate rows dropped, rows with a
    missing speaker or text skipped, and a line identical to that speaker's previous line skipped."""
    rows = rows.drop_duplicates()
    transcripts: dict[str, list[Line]] = {}
    previous: dict[tuple[str, str], str] = {}  # (clip, speaker) -> that speaker's last line
    for clip, speaker, text in rows[list(TRANSCRIPT_COLUMNS)].itertuples(index=False):
        speaker, text = _text(speaker), _text(text)
        lines = transcripts.setdefault(clip, [])
        if not speaker or not text or previous.get((clip, speaker)) == text:
            continue
        previous[(clip, speaker)] = text
        lines.append((speaker, text))
    return transcripts


def cut_before(transcript: Sequence[Line], word: str) -> list[Line] | None:
    """The lines before the first one whose text contains ``word`` (case-insensitive); None when
    no line does."""
    needle = word.lower()
    for index, (_, text) in enumerate(transcript):
        if needle in text.lower():
            return list(transcript[:index])
    return None


def games_from_md3(
    prompts: pd.DataFrame, transcripts: dict[str, list[Line]], dialect: str, curation: Curation, where: str
) -> list[dict]:
    """The won "word" games of one dialect, curated and cut so the answer is never shown."""
    games = prompts[(prompts["game_type"] == "word") & (prompts["prompt_status"] == "win")].drop_duplicates()
    repeated = games["clip_identifier"][games["clip_identifier"].duplicated()]
    if len(repeated):
        raise GlobalrepError(
            f"{where}: clip(s) {sorted(set(repeated))[:5]} have several different word games; "
            "each clip should hold one (is the file from the MD3 English release?)"
        )
    kept, skipped, unanswered = [], 0, []
    for index, game in games.iterrows():
        clip = game["clip_identifier"]
        answer = _text(game["correct_word/image"])
        if not answer:
            raise GlobalrepError(f"{where}: row {index} (clip {clip}) has no correct_word/image")
        distractors = _word_list(game["distractors"], f"{where}: row {index} (clip {clip}), column 'distractors'")
        if clip in curation.skip:
            skipped += 1
            continue
        lines = transcripts.get(clip, [])
        if clip in curation.keep_full_transcript:
            cut = list(lines)
        else:
            cut = cut_before(lines, curation.cut_at_alternative.get(clip, answer))
        if cut is None:
            unanswered.append(clip)
            continue
        kept.append(_game(dialect, cut, answer, distractors, clip))
    log.info(
        "%s: %d won word games: %d kept, %d skipped by the curation, %d dropped because the answer "
        "(or its curated spoken form) never appears in the transcript%s",
        where, len(games), len(kept), skipped, len(unanswered),
        f" (e.g. {', '.join(unanswered[:3])})" if unanswered else "",
    )  # fmt: skip
    return kept


def read_md3_dir(md3_dir: str | Path, dialects: Sequence[str] = DIALECTS) -> pd.DataFrame:
    """Games of ``dialects`` from a raw MD3 English folder."""
    check_md3_dir(md3_dir, dialects)
    curation = load_curation()
    games = []
    for dialect in dialects:
        code = dialect.removeprefix("en_")
        prompts_path = Path(md3_dir) / f"prompts_en_{code}.tsv"
        transcripts_path = Path(md3_dir) / f"transcripts_en_{code}.tsv"
        prompts = _read_tsv(prompts_path, PROMPT_COLUMNS)
        transcripts = clean_transcripts(_read_tsv(transcripts_path, TRANSCRIPT_COLUMNS))
        games += games_from_md3(prompts, transcripts, dialect, curation, str(prompts_path))
    return _items(games, str(md3_dir))


def check_md3_dir(md3_dir: str | Path, dialects: Sequence[str] = DIALECTS) -> None:
    """Raise, saying where to get MD3, unless the folder holds the TSVs of every dialect."""
    folder = Path(md3_dir).expanduser()
    if not folder.is_dir():
        raise GlobalrepError(f"MD3 folder '{md3_dir}' does not exist. {DOWNLOAD_HINT}")
    names = [f"{kind}_en_{d.removeprefix('en_')}.tsv" for d in dialects for kind in ("prompts", "transcripts")]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise GlobalrepError(f"MD3 folder '{md3_dir}' lacks {', '.join(missing)}. {DOWNLOAD_HINT}")


def read_items_csv(path: str | Path, dialects: Sequence[str] = DIALECTS) -> pd.DataFrame:
    """Games from a cleaned items CSV (``dialect, transcript, correct_answer, distractors``), the
    transcript as ``speaker: text`` lines."""
    frame = read_csv_text(path)
    require_columns(frame, ITEMS_COLUMNS, path, f"an MD3 items CSV has {', '.join(ITEMS_COLUMNS)}")
    unknown = sorted(set(frame["dialect"]) - set(DIALECTS))
    if unknown:
        raise GlobalrepError(f"{path}: unknown dialect(s) {unknown} in column 'dialect'; known: {', '.join(DIALECTS)}")
    games = []
    for index, row in enumerate(frame.itertuples(index=False)):
        if row.dialect not in dialects:
            continue
        where = f"{path}: row {index} (counting from 0)"
        answer = row.correct_answer.strip()
        if not answer:
            raise GlobalrepError(f"{where}: empty correct_answer")
        transcript = parse_transcript(row.transcript, where)
        games.append(
            _game(row.dialect, transcript, answer, _word_list(row.distractors, f"{where}, column 'distractors'"))
        )
    return _items(games, str(path))


def parse_transcript(text: str, where: str) -> list[Line]:
    """``speaker: text`` lines back into pairs; an empty transcript has no lines."""
    lines = []
    for number, line in enumerate(text.split("\n") if text else [], start=1):
        speaker, sep, utterance = line.partition(": ")
        if not sep or not speaker:
            raise GlobalrepError(
                f"{where}, column 'transcript', line {number}: expected 'speaker: text', got {line[:60]!r}"
            )
        lines.append((speaker, utterance))
    return lines


def resolve_source(options: dict, task: str, dialects: Sequence[str]) -> str:
    """The folder (``md3_dir``) or file (``items_csv``) the games come from; exactly one is set,
    and it must exist (a missing MD3 folder, or one without the files of ``dialects``, says where
    to get MD3). ``task`` names the config block in errors."""
    given = [key for key in ("md3_dir", "items_csv") if options.get(key)]
    if len(given) != 1:
        raise GlobalrepError(
            f"config key 'tasks.{task}' needs exactly one of 'md3_dir' (the raw MD3 folder) or "
            f"'items_csv' (cleaned games), got {' and '.join(given) or 'neither'}. {DOWNLOAD_HINT}"
        )
    source = str(options[given[0]])
    if given[0] == "md3_dir":
        check_md3_dir(source, dialects)
    elif not Path(source).expanduser().is_file():
        raise GlobalrepError(f"MD3 items file '{source}' (config key 'tasks.{task}.items_csv') does not exist")
    return source


def read_games(source: str | Path, dialects: Sequence[str]) -> pd.DataFrame:
    """One row per game of ``dialects``: ``item_id, group (dialect), clip_identifier, transcript
    (list of [speaker, text]), answer, distractors``, from a raw MD3 folder or a cleaned items CSV."""
    if Path(source).is_dir():
        return read_md3_dir(source, dialects)
    return read_items_csv(source, dialects)


# -------------------------------------------------------------------------------- the game


def build_prompt(transcript: Iterable[Sequence[str]], task_options: dict | None = None) -> str:
    """The prompt for a transcript given as ``(speaker, text)`` lines, from the task's template
    (option ``prompt_template``; default globalrep/prompt_templates/md3_taboo.jinja)."""
    return prompt_renderer(PROMPT_TEMPLATE, task_options or {})(transcript=render(transcript))


def answer_position(item_id: str, n_distractors: int, seed: int) -> int:
    """Where the answer goes among the distractors: random, but fixed by (seed, item) alone, so it
    does not depend on which items share a shard."""
    return random.Random(f"{seed}:{item_id}").randint(0, n_distractors)


def choices(item_id: str, answer: str, distractors: Sequence[str], seed: int) -> list[str]:
    """The answer and the distractors, the answer at its seeded position."""
    words = list(distractors)
    words.insert(answer_position(item_id, len(words), seed), answer)
    return words


def requests(items: pd.DataFrame, options: dict) -> list[GenerateRequest | LoglikRequest]:
    """Per game a greedy guess (key ``generated``) and the log-likelihood of each choice after
    the prompt (key ``choice``); ``options`` are the task's, ``max_new_tokens`` and ``seed``
    included."""
    max_new_tokens = int(options["max_new_tokens"])
    seed = int(options["seed"])
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


def generated_correct(text: str, answer: str, distractors: Sequence[str]) -> bool:
    """The guess names the answer (case-insensitive substring) and no distractor."""
    guess = text.lower()
    return answer.lower() in guess and not any(word.lower() in guess for word in distractors)


def chose_correct(
    logprobs: Sequence[float],
    ntokens: Sequence[int],
    answer_index: int,
    tiebreak: Sequence[int] | None = None,
    paper_rule: bool = False,
) -> bool:
    """The answer has the highest per-token mean log-likelihood. A tie goes to the choice first in
    ``tiebreak`` order (the published backend: the order the paper scored the choices in), else to
    the earlier choice; the answer's position is random, so ties favour no one. A missing (NaN or
    inf) score is a missing answer: not correct; except under ``paper_rule`` (published rows),
    where it is the paper's own choice (its ``torch.argmax`` took the first NaN as the maximum).
    See :func:`globalrep.choices.best_choice`."""
    return best_choice(logprobs, ntokens, tiebreak, paper_rule) == answer_index


def score(items: pd.DataFrame, predictions: pd.DataFrame, seed: int, task: str) -> pd.DataFrame:
    """``model, item_id, group, metric, value`` with :data:`METRICS` (1.0 or 0.0) per game and
    model; ``seed`` placed the answers, ``task`` names the task in errors. Predictions must name
    only games of ``items`` (the task checks that first)."""
    needed = ["generated_text", "choice_logprob", "choice_ntokens"]
    missing = [column for column in needed if column not in predictions.columns]
    if missing:
        raise GlobalrepError(f"{task}: predictions lack column(s) {', '.join(missing)}; rerun inference")
    if "choice_tiebreak" not in predictions.columns:
        predictions = predictions.assign(choice_tiebreak=None)
    published = predictions["published"].eq(True) if "published" in predictions.columns else False
    merged = predictions.assign(published=published)[
        ["model", "item_id", "choice_tiebreak", "published", *needed]
    ].merge(items[["item_id", "group", "answer", "distractors"]], on="item_id", validate="many_to_one")
    rows = []
    for pred in merged.itertuples(index=False):
        distractors = list(pred.distractors)
        if len(pred.choice_logprob) != len(distractors) + 1 or len(pred.choice_ntokens) != len(distractors) + 1:
            raise GlobalrepError(
                f"{task}: model {pred.model!r}, item {pred.item_id}: {len(pred.choice_logprob)} choice scores "
                f"for {len(distractors) + 1} choices; rerun inference for this model"
            )
        position = answer_position(pred.item_id, len(distractors), seed)
        rows += [
            (pred.model, pred.item_id, pred.group, "generated_correct",
             float(generated_correct(pred.generated_text, pred.answer, distractors))),
            (pred.model, pred.item_id, pred.group, "chose_correct",
             float(chose_correct(pred.choice_logprob, pred.choice_ntokens, position, _tiebreak(pred.choice_tiebreak),
                                pred.published))),
        ]  # fmt: skip
    return pd.DataFrame(rows, columns=["model", "item_id", "group", "metric", "value"])


# ------------------------------------------------------------------------------------ helpers


def _tiebreak(order) -> Sequence[int] | None:
    """A prediction's tie order; None where its backend gave none (NaN after concatenating)."""
    return None if order is None or (isinstance(order, float) and np.isnan(order)) else order


def _game(dialect: str, transcript: list[Line], answer: str, distractors: list[str], clip: str | None = None) -> dict:
    return {
        "item_id": item_id(dialect, transcript, answer, distractors),
        "group": dialect,
        "clip_identifier": clip,
        "transcript": [list(line) for line in transcript],
        "answer": answer,
        "distractors": distractors,
    }


def _items(games: list[dict], where: str) -> pd.DataFrame:
    frame = pd.DataFrame(games, columns=ITEM_COLUMNS)
    repeated = frame["item_id"].duplicated()
    if repeated.any():
        log.info("%s: dropped %d games identical to an earlier one", where, int(repeated.sum()))
    return frame[~repeated].reset_index(drop=True)


def _read_tsv(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    # Text as written: MD3 transcripts hold words such as "NA" and "null" that are not missing.
    frame = read_csv_text(path, sep="\t")
    require_columns(frame, columns, path, f"it has {', '.join(frame.columns)}. {DOWNLOAD_HINT}")
    return frame


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()


def _word_list(text: str, where: str) -> list[str]:
    """A Python or JSON list of words (MD3 writes ``['a', 'b']``, the items CSV ``["a", "b"]``)."""
    try:
        words = ast.literal_eval(text.strip())
    except (SyntaxError, ValueError) as error:
        raise GlobalrepError(f"{where}: not a list of words ({error.__class__.__name__}): {text[:80]!r}") from None
    if not isinstance(words, (list, tuple)) or not words or not all(isinstance(w, str) and w.strip() for w in words):
        raise GlobalrepError(f"{where}: expected a non-empty list of words, got {text[:80]!r}")
    return [word.strip() for word in words]
