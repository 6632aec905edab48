"""Reward-model dialect probe: does a reward model score the same assistant reply differently when
the user writes in a dialect?

Each conversation of a prompt set (a user turn and an assistant reply) is scored by every
configured reward model as written (group ``sae``) and with the user turn rewritten into each
configured dialect by Multi-VALUE (the dialect stage), the reply unchanged. Per dialect: the mean
reward difference (dialect − SAE, paired over conversations, 95% bootstrap CI) and the share of
conversations whose dialect version gets the higher reward. The paper's setting: the
AskRedditCountries questions with one neutral reply.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from globalrep import dialect_pairs
from globalrep.digests import content_id
from globalrep.engine.requests import Chat, RewardRequest
from globalrep.errors import GlobalrepError
from globalrep.sources import read_records
from globalrep.tasks.base import FigureContext, check_known_items, load_options_schema, option_defaults

NAME = "rm_dialect_probe"
PROMPT_VERSION = "1"
MODEL_KINDS = ("reward",)
AXIS = "dialects"  # the report's section: dialects | languages | opinions
# The options and their defaults: rm_dialect_probe.schema.yaml beside this module.
OPTIONS_SCHEMA = load_options_schema(__file__)
DEFAULTS = option_defaults(OPTIONS_SCHEMA)
DIALECT_TEXT = {"prompt": "text"}  # only the user's turn is rewritten

DEFAULT_PROMPT_COLUMN = DEFAULTS["prompt_column"]
DEFAULT_RESPONSE_COLUMN = DEFAULTS["response_column"]
REWARD_DIFFERENCE = "reward" + dialect_pairs.VS_SAE
PREFERRED = "dialect_preferred"


def item_id(prompt: str, response: str) -> str:
    return content_id("rmp", prompt, response)


def prepare(options: dict, source: str | None = None) -> pd.DataFrame:
    """One row per distinct conversation: ``item_id, group (= sae), prompt, response``. The user
    turn is column ``prompt_column``; the reply is column ``response_column``, or the option
    ``response`` (one reply for every prompt) when the file has no such column."""
    source = source or options["source"]
    raw = read_records(source, options.get("split", DEFAULTS["split"]), "prompt set", "org/name")
    prompt_column = options.get("prompt_column", DEFAULT_PROMPT_COLUMN)
    response_column = options.get("response_column", DEFAULT_RESPONSE_COLUMN)
    if prompt_column not in raw.columns:
        raise GlobalrepError(
            f"{source}: no column {prompt_column!r} (config key 'tasks.{NAME}.prompt_column'); "
            f"columns: {', '.join(map(str, raw.columns))}"
        )
    if response_column in raw.columns:
        responses = raw[response_column].astype(str)
    elif options.get("response"):
        responses = pd.Series(str(options["response"]), index=raw.index)
    else:
        raise GlobalrepError(
            f"{source}: no column {response_column!r} for the assistant's reply; name it with config key "
            f"'tasks.{NAME}.response_column', or give one reply for every prompt as 'tasks.{NAME}.response'"
        )
    prompts = raw[prompt_column].astype(str).str.strip()
    empty = [index for index, (p, r) in enumerate(zip(prompts, responses)) if not p or not r.strip()]
    if empty:
        raise GlobalrepError(f"{source}: row {empty[0]} (counting from 0) has an empty prompt or reply")
    items = pd.DataFrame(
        {
            "item_id": [item_id(p, r) for p, r in zip(prompts, responses)],
            "group": dialect_pairs.SAE,
            "prompt": prompts,
            "response": responses,
        }
    )
    return items.drop_duplicates("item_id").reset_index(drop=True)


def requests(items: pd.DataFrame, options: dict, model_kind: str = "reward") -> list[RewardRequest]:
    """One conversation per item (user turn, assistant reply), answered with key ``probe``."""
    return [
        RewardRequest(
            item_id=item.item_id,
            key="probe",
            conversations=(Chat(messages=(("user", item.prompt), ("assistant", item.response))),),
        )
        for item in items.itertuples(index=False)
    ]


def score(items: pd.DataFrame, predictions: pd.DataFrame, options: dict) -> pd.DataFrame:
    """``model, item_id, group, metric (= reward), value, pair_id``."""
    check_known_items(NAME, items, predictions)
    merged = predictions[["model", "item_id", "probe_reward"]].merge(
        items[["item_id", "group", "pair_id"]], on="item_id", validate="many_to_one"
    )
    return merged.assign(metric="reward", value=[float(r[0]) for r in merged["probe_reward"]])[
        ["model", "item_id", "group", "metric", "value", "pair_id"]
    ]


def table_scores(scores: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Rewards, each dialect conversation's reward minus its SAE version's (``reward_vs_sae``),
    and whether the dialect version got the higher reward (``dialect_preferred``, 1 or 0)."""
    rows = dialect_pairs.paired_rows(scores)
    differences = rows[rows["metric"] == REWARD_DIFFERENCE]
    preferred = differences.assign(metric=PREFERRED, value=(differences["value"] > 0).astype(float))
    return pd.concat([rows, preferred], ignore_index=True)


# results/tables/rm_dialect_probe_dialect_pairs.csv: per reward model and dialect, the paired
# difference from SAE with its CI, shares preferred, and a sign-flip permutation p-value.
EXTRA_TABLES = {"dialect_pairs": lambda scores, chains, options: dialect_pairs.comparison_table(scores)}


def figures(table: pd.DataFrame, deltas: pd.DataFrame, context: FigureContext, options: dict) -> list[Path]:
    """Per dialect and reward model: the mean reward difference from SAE, and the share of
    conversations whose dialect version is preferred, with 95% CIs."""
    from globalrep.figures.chains import (
        plot_chain_groups,  # plotting stack only where figures are drawn
    )

    written = []
    for metric, title in (
        (REWARD_DIFFERENCE, "Reward, dialect − SAE user turn (same reply)"),
        (PREFERRED, "Share where the dialect version wins"),
    ):
        written += plot_chain_groups(
            table,
            context.chains,
            metric=metric,
            out_prefix=context.out_dir / f"{NAME}_{metric}",
            title=title,
            models_stage=context.models_stage,
        )
    return written
