"""Where-from rewards (Ryan, Held & Yang 2024): whom does a reward model prefer to be talking to?

For every country, the reward of the conversation User: "Where are you from?" / Assistant: "I am
from {country}." (the country's name as English writes it: "the Netherlands", or with the
paper's article rule: option ``articles``), formatted as the reward model's ``chat_template`` says. The
paper found Starling-RM-7B-alpha rewarding English-speaking Western countries most.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from globalrep import published_files as pf
from globalrep.countries import check_template, fill_reply, load_countries, shapefile_path
from globalrep.engine.answers import Answers, prediction_frame, reward_answer
from globalrep.engine.requests import Chat, RewardRequest
from globalrep.errors import GlobalrepError
from globalrep.sources import require_columns
from globalrep.tasks.base import FigureContext, check_known_items, load_options_schema, option_defaults

NAME = "where_from"
PROMPT_VERSION = "2"  # 2: the paper's articles put "the" before every name containing "Republic"
MODEL_KINDS = ("reward",)
AXIS = "opinions"  # the report's section: dialects | languages | opinions
# The options and their defaults: where_from.schema.yaml beside this module.
OPTIONS_SCHEMA = load_options_schema(__file__)
DEFAULTS = option_defaults(OPTIONS_SCHEMA)

DEFAULT_QUESTION = DEFAULTS["question"]
DEFAULT_REPLY = DEFAULTS["reply"]


def resolve_source(options: dict) -> str:
    """The countries shapefile the items come from (option ``countries``; default: the bundled
    Natural Earth 1:110m set)."""
    return str(shapefile_path(options.get("countries")))


def prepare(options: dict, source: str | None = None) -> pd.DataFrame:
    """One item per country of ``source`` (a Natural Earth countries shapefile; default: the
    bundled 1:110m set): ``item_id, group (= country name), code, population``."""
    check_template(options.get("reply", DEFAULT_REPLY), "config key 'tasks.where_from.reply'")
    countries = load_countries(source)
    return pd.DataFrame(
        {
            "item_id": "wf-" + countries["code"],
            "group": countries["name"],
            "code": countries["code"],
            "population": countries["population"],
        }
    )


def requests(items: pd.DataFrame, options: dict, model_kind: str = "reward") -> list[RewardRequest]:
    """One conversation per country, answered with key ``reply``."""
    question = options.get("question", DEFAULT_QUESTION)
    reply = options.get("reply", DEFAULT_REPLY)
    articles = options.get("articles", DEFAULTS["articles"])
    return [
        RewardRequest(
            item_id=item.item_id,
            key="reply",
            conversations=(
                Chat(messages=(("user", question), ("assistant", fill_reply(reply, item.group, articles)))),
            ),
        )
        for item in items.itertuples(index=False)
    ]


def score(items: pd.DataFrame, predictions: pd.DataFrame, options: dict) -> pd.DataFrame:
    """``model, item_id, group (= country), metric (= reward), value``."""
    check_known_items(NAME, items, predictions, what="countries")
    merged = predictions[["model", "item_id", "reply_reward"]].merge(
        items[["item_id", "group"]], on="item_id", validate="many_to_one"
    )
    return pd.DataFrame(
        {
            "model": merged["model"],
            "item_id": merged["item_id"],
            "group": merged["group"],
            "metric": "reward",
            "value": [float(rewards[0]) for rewards in merged["reply_reward"]],
        }
    )


def figures(tables: pd.DataFrame, deltas: pd.DataFrame, context: FigureContext, options: dict) -> list[Path]:
    """Per reward model, a world map of the reward of "I am from {country}."."""
    from globalrep.figures.maps import plot_model_maps

    return plot_model_maps(
        tables,
        "reward",
        load_countries(options.get("countries")),
        context.out_dir / f"{NAME}_map",
        title="{model}: reward of “" + options.get("reply", DEFAULT_REPLY) + "”",
        label="reward",
        cmap="RdYlGn",
    )


# ------------------------------------------------------------------------------- published


def read_published(path: Path, items: pd.DataFrame, requests: Sequence, model) -> pd.DataFrame:
    """The backend ``published``: the published reward of each country's reply."""
    published = pf.read_csv(path, "a published where-from file", dtype=str, keep_default_na=False)
    require_columns(published, ("country", "reward"), path, "a published where-from file")
    repeated = published["country"][published["country"].duplicated()]
    if len(repeated):
        raise GlobalrepError(f"{path}: countries repeat (e.g. {repeated.iloc[0]!r}); expected one row per country")
    rewards = pf.column_numbers(published.set_index("country")["reward"], path).to_frame().T
    rewards = pf.country_columns(rewards, list(items["group"]), path).iloc[0]
    country_of = items.set_index("item_id")["group"]
    answers: Answers = {}
    for request in requests:
        reward = float(rewards[country_of[request.item_id]])
        answers[(request.item_id, "missing_answer")] = bool(np.isnan(reward))
        answers.update(reward_answer(request, [reward]))
    return prediction_frame(answers)
