"""MD3 Taboo on the same dialogues in SAE and in rewritten dialects: a paired comparison.

MD3's US English games are rewritten utterance by utterance into each configured dialect with
Multi-VALUE (the dialect stage; the secret word is never rewritten, speakers are kept). Every game
then exists as group ``sae`` and as one group per dialect, paired by ``pair_id``, and is asked and
scored exactly like ``md3_taboo`` (same prompt, same answer position for all versions of a game).
Unlike MD3's own dialects, the versions differ only in their grammar, not in who played or which
word they described, so a change in accuracy is the dialect's alone.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from globalrep import dialect_pairs, md3
from globalrep.tasks.base import FigureContext, check_known_items, load_options_schema, option_defaults

NAME = "md3_taboo_transfer"
PROMPT_VERSION = f"{md3.PROMPT_VERSION}.1"  # the MD3 game's prompt and requests (as md3_taboo), our pairing
MODEL_KINDS = ("lm",)
AXIS = "dialects"  # the report's section: dialects | languages | opinions
# The options and their defaults: md3_taboo_transfer.schema.yaml beside this module.
OPTIONS_SCHEMA = load_options_schema(__file__)
DEFAULTS = option_defaults(OPTIONS_SCHEMA)
# The SAE text the dialect stage rewrites, and what it never rewrites.
DIALECT_TEXT = {"transcript": "utterances"}
DIALECT_PROTECT = "answer"
SOURCE_DIALECT = "en_us"


def resolve_source(options: dict) -> str:
    """The MD3 folder (``md3_dir``, its en_us files) or cleaned games file (``items_csv``)."""
    return md3.resolve_source(options, NAME, [SOURCE_DIALECT])


def prepare(options: dict, source: str | None = None) -> pd.DataFrame:
    """The US English games (group ``sae``): the text the dialect stage rewrites."""
    items = md3.read_games(source or resolve_source(options), [SOURCE_DIALECT])
    return items.assign(group=dialect_pairs.SAE)


def _by_game(items: pd.DataFrame):
    """Per group: ``(items with item_id = the game's SAE id, {game id: item_id})``, so that
    the game's seeded answer position is the same in every version of a game."""
    for _, part in items.groupby("group", sort=True):
        yield part.assign(item_id=part["pair_id"]), dict(zip(part["pair_id"], part["item_id"]))


def requests(items: pd.DataFrame, options: dict, model_kind: str = "lm") -> list:
    """md3_taboo's requests (a greedy guess, the choices' log-likelihoods) for every version."""
    options = {**DEFAULTS, **options}
    built = []
    for games, item_ids in _by_game(items):
        built += [dataclasses.replace(r, item_id=item_ids[r.item_id]) for r in md3.requests(games, options)]
    return built


def score(items: pd.DataFrame, predictions: pd.DataFrame, options: dict) -> pd.DataFrame:
    """md3_taboo's ``generated_correct`` and ``chose_correct`` per item, with ``pair_id``."""
    check_known_items(NAME, items, predictions)
    seed = int(options.get("seed", DEFAULTS["seed"]))
    frames = []
    for games, item_ids in _by_game(items):
        pair_ids = {item_id: pair_id for pair_id, item_id in item_ids.items()}
        mine = predictions[predictions["item_id"].isin(pair_ids)]
        scores = md3.score(games, mine.assign(item_id=mine["item_id"].map(pair_ids)), seed, NAME)
        frames.append(scores.assign(pair_id=scores["item_id"], item_id=scores["item_id"].map(item_ids)))
    return pd.concat(frames, ignore_index=True)


def table_scores(scores: pd.DataFrame, options: dict) -> pd.DataFrame:
    """The scores plus each dialect item's difference from its SAE version (``*_vs_sae``)."""
    return dialect_pairs.paired_rows(scores)


# results/tables/md3_taboo_transfer_dialect_pairs.csv: SAE vs dialect, McNemar's exact test.
EXTRA_TABLES = {"dialect_pairs": lambda scores, chains, options: dialect_pairs.comparison_table(scores)}


def figures(table: pd.DataFrame, deltas: pd.DataFrame, context: FigureContext, options: dict) -> list[Path]:
    """Per metric, md3_taboo's layout (a panel per chain, bars per stage) with SAE and the
    dialects on the x axis; and per metric the paired difference from SAE."""
    from globalrep.figures.bars import (
        plot_chain_bars,  # plotting stack only where figures are drawn
    )

    written = []
    for metric in md3.METRICS:
        for shown, title in (
            (metric, "MD3 Taboo: SAE vs dialect rewrites"),  # the y axis names the metric
            (metric + dialect_pairs.VS_SAE, "MD3 Taboo: dialect − SAE (same games)"),
        ):
            written += plot_chain_bars(
                table,
                context.chains,
                metric=shown,
                out_prefix=context.out_dir / f"{NAME}_{shown}",
                title=title,
                models_stage=context.models_stage,
                group_labels={dialect_pairs.SAE: "SAE"},
            )
    return written
