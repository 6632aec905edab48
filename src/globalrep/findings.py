"""The paper's three questions, answered for every chain step from the tables: ``findings.csv``.

1. Does alignment widen the gap between English dialects?
2. Does it help some languages more than others, and English most?
3. Does it pull the model's opinions towards one country's (the US's)?

Each question is answered by statistics, each defined once here (:data:`STATISTICS`) and in
docs/statistics.md. A statistic is read from, or computed from the items behind, one table of a
task; a row of ``findings.csv`` names that table and its rows (``source_table``) and the family
of tests whose q-values decide its verdict (``family``). A statistic whose task did not run, or
whose chain lacks a model, has no row.

Verdicts come from :data:`VERDICTS`, decided by q < :data:`SIGNIFICANCE` and the sign:

- a *gap* (the favoured group's lead: US English over a dialect, SAE over its rewrite, English
  over the median language, the US over the other countries) ``widened`` or ``narrowed``;
- a *change* (of a correlation) ``rose`` or ``fell``;
- a *count* of groups that changed significantly one way carries that way's word when it is
  above 0 (``widened``, ``narrowed``, ``rose``, ``fell``);
- otherwise ``no significant change``; a statistic without a test (a rank, a share) is
  ``descriptive``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from globalrep import stats
from globalrep.countries import UNITED_STATES as NATURAL_EARTH_US
from globalrep.errors import GlobalrepError
from globalrep.languages import base_language, name_to_code

log = logging.getLogger(__name__)

COLUMNS = [
    "chain", "from_model", "to_model", "axis", "question", "statistic", "value", "ci_low", "ci_high",
    "q_value", "family", "verdict", "source_table",
]  # fmt: skip
SIGNIFICANCE = 0.05  # on q, as everywhere in the report
SEED = 0  # of every bootstrap computed here

WIDENED, NARROWED, ROSE, FELL = "widened", "narrowed", "rose", "fell"
NO_CHANGE, DESCRIPTIVE = "no significant change", "descriptive"
VERDICTS = (WIDENED, NARROWED, ROSE, FELL, NO_CHANGE, DESCRIPTIVE)
GAP, CHANGE, COUNT, DESCRIBED = "gap", "change", "count", "descriptive"

# {question: (axis, the question as the paper asks it)}
QUESTIONS = {
    "dialect_gaps": ("dialects", "Does alignment widen the gap between English dialects?"),
    "english_first": ("languages", "Does alignment help some languages more than others, and English most?"),
    "us_opinions": ("opinions", "Does alignment pull the model's opinions towards the US's?"),
}
QUESTION_LABELS = {"dialect_gaps": "Dialects", "english_first": "Languages", "us_opinions": "Countries"}

MD3_REFERENCE = "en_us"
MD3_LABELS = {"en_us": "US", "en_in": "Indian", "en_ng": "Nigerian"}
MD3_METRICS = ("generated_correct", "chose_correct")  # the paper's headline first
DIALECT_PAIR_TASKS = ("md3_taboo_transfer", "rm_dialect_probe")
VS_SAE = "_vs_sae"
LANGUAGE_TASKS = {"belebele": "accuracy", "tydiqa_goldp": "f1"}  # task: its headline metric
SFT_SHARE_METRICS = ("share_agreed", "share")  # the paper's (both detectors agree) first
GOQA_US = "United States"
GOQA_METRIC = "similarity"
MIN_CORRELATION_COUNTRIES = 3  # fewer give no Spearman correlation to compare

# The tables each task's statistics read (results/tables/{name}.csv), and the tasks whose
# per-item scores (results/scores/{task}.parquet) some statistic resamples.
SOURCE_TABLES = {
    "md3_taboo": ("md3_taboo_gap_changes",),
    "md3_taboo_transfer": ("md3_taboo_transfer_deltas",),
    "rm_dialect_probe": ("rm_dialect_probe_deltas",),
    "belebele": ("belebele_deltas", "belebele_from_base"),
    "tydiqa_goldp": ("tydiqa_goldp_deltas", "tydiqa_goldp_from_base"),
    "sft_langid": ("sft_langid",),
    "global_opinions": ("global_opinions_deltas",),
    "where_from": ("where_from",),
    "askreddit": ("askreddit_us_favorability",),
}
ITEM_SCORE_TASKS = ("belebele", "tydiqa_goldp", "global_opinions")


@dataclass(frozen=True)
class Statistic:
    """One statistic: its question, kind (gap, change, count or descriptive), the word its count
    counts (counts only), and what it is, as docs/statistics.md defines it."""

    question: str
    kind: str
    definition: str
    counted: str = ""


STATISTICS = {
    "md3_gap_change": Statistic(
        "dialect_gaps", GAP,
        "{dialect}, {metric}: change (to − from) in MD3's gap, US English's mean minus the dialect's "
        "(md3_taboo_gap_changes.csv); > 0: US English pulled further ahead.",
    ),
    "sae_gaps_widened": Statistic(
        "dialect_gaps", COUNT,
        "{task}, {metric}: how many Multi-VALUE dialects' SAE − dialect gaps widened significantly "
        "(rows {metric}_vs_sae of {task}_deltas.csv with delta < 0 and q < 0.05).", WIDENED,
    ),
    "sae_gaps_narrowed": Statistic(
        "dialect_gaps", COUNT,
        "{task}, {metric}: how many Multi-VALUE dialects' SAE − dialect gaps narrowed significantly "
        "(delta > 0 and q < 0.05).", NARROWED,
    ),
    "languages_improved": Statistic(
        "english_first", COUNT,
        "{task}, {metric}: how many languages improved significantly ({task}_deltas.csv, and "
        "{task}_from_base.csv for base → model; delta > 0, q < 0.05).", ROSE,
    ),
    "languages_declined": Statistic(
        "english_first", COUNT,
        "{task}, {metric}: how many languages declined significantly (delta < 0, q < 0.05).", FELL,
    ),
    "english_vs_median_change": Statistic(
        "english_first", GAP,
        "{task}, {metric}: English's mean change minus the median of the other languages' mean "
        "changes; bootstrap over items within each language; > 0: English gained more.",
    ),
    "english_share": Statistic(
        "english_first", DESCRIBED,
        "{dataset}: percent of the SFT set's messages in English (sft_langid.csv; share_agreed, "
        "the messages both detectors agree on, where detected by two).",
    ),
    "us_rank_by_similarity_change": Statistic(
        "us_opinions", DESCRIBED,
        "GlobalOpinionQA: the United States' rank among the focus countries by change in "
        "similarity (1 = rose most; global_opinions_deltas.csv).",
    ),
    "us_minus_rest_change": Statistic(
        "us_opinions", GAP,
        "GlobalOpinionQA: change in similarity to the United States minus the mean similarity to "
        "the other focus countries, paired over questions; > 0: answers moved towards the US's.",
    ),
    "where_from_us_rank": Statistic(
        "us_opinions", DESCRIBED,
        "Where-from: the United States' rank by the reward model's reward among all countries "
        "(1 = highest; where_from.csv).",
    ),
    "gallup_correlation_change": Statistic(
        "us_opinions", CHANGE,
        "{list}: change in the Spearman correlation between the model's AskReddit mean ranks and "
        "Gallup's order of US favourability (askreddit_us_favorability.csv), bootstrap over "
        "countries; > 0: the model favours more the countries Americans favour.",
    ),
}  # fmt: skip


def statistic_name(statistic: str) -> str:
    """The defined statistic a row's ``statistic`` instantiates (``md3_gap_change:en_in:chose_correct``)."""
    return statistic.split(":", 1)[0]


def verdict(kind: str, value: float, q_value: float, counted: str = "") -> str:
    """The verdict of one statistic (see the module's docstring)."""
    if kind == DESCRIBED:
        return DESCRIPTIVE
    if kind == COUNT:
        return counted if value > 0 else NO_CHANGE
    if _missing(q_value) or q_value >= SIGNIFICANCE or value == 0:
        return NO_CHANGE
    up, down = (WIDENED, NARROWED) if kind == GAP else (ROSE, FELL)
    return up if value > 0 else down


# ------------------------------------------------------------------------------ selectors


def selector(table: str, **rows: object) -> str:
    """A table and its rows as ``findings.csv`` names them: ``md3_taboo_gap_changes.csv: chain=x;
    group=en_in`` (several values of a column joined by ``|``)."""
    parts = [
        f"{column}={'|'.join(map(str, value)) if isinstance(value, list | tuple) else value}"
        for column, value in rows.items()
    ]
    return f"{table}.csv: " + "; ".join(parts) if parts else f"{table}.csv"


def parse_selector(text: str) -> tuple[str, dict[str, list[str]]]:
    """``(table name, {column: accepted values})`` of a :func:`selector` string."""
    table, _, rows = text.partition(": ")
    if not table.endswith(".csv"):
        raise GlobalrepError(f"findings: {text!r} does not name a table (<name>.csv: column=value; ...)")
    columns = {}
    for part in filter(None, rows.split("; ")):
        column, _, values = part.partition("=")
        columns[column] = values.split("|")
    return table.removesuffix(".csv"), columns


def select(table: pd.DataFrame, columns: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """The rows of ``table`` a parsed selector names (values compared as text)."""
    keep = pd.Series(True, index=table.index)
    for column, values in columns.items():
        keep &= table[column].astype(str).isin(values)
    return table[keep]


# ------------------------------------------------------------------------------ the table


@dataclass
class Inputs:
    """What the findings are computed from: tables by name (``md3_taboo_gap_changes``, ...), the
    per-item rows of the tasks whose statistics need items (``scores[task]``: the rows its
    standard tables use), the chains and the correction of the run."""

    tables: Mapping[str, pd.DataFrame]
    scores: Mapping[str, pd.DataFrame]
    chains: Mapping[str, Sequence[str]]
    correction: str = "bh"


def findings_table(inputs: Inputs) -> pd.DataFrame:
    """Every statistic that the inputs hold, one row per chain step (or model) and statistic,
    in chain order, then by question and statistic."""
    rows = [row for builder in BUILDERS for row in builder(inputs)]
    # A statistic that came out NaN or infinite (its source rows had no number) states nothing:
    # it is left out, like one whose task did not run, and named in the log, never given a verdict.
    for row in rows:
        if not math.isfinite(row["value"]):
            log.warning(
                "findings: %s for %s → %s has no value (%s); left out", row["statistic"], row["from_model"],
                row["to_model"], row["source_table"],
            )  # fmt: skip
    table = pd.DataFrame([row for row in rows if math.isfinite(row["value"])], columns=COLUMNS)
    order = _step_order(inputs.chains)
    keys = pd.DataFrame(
        {
            "step": [
                order.get(step, (len(order),)) for step in zip(table["chain"], table["from_model"], table["to_model"])
            ],
            "question": table["question"].map(list(QUESTIONS).index),
            "statistic": table["statistic"].map(lambda statistic: list(STATISTICS).index(statistic_name(statistic))),
        }
    )
    ordered = keys.sort_values(["step", "question", "statistic"], kind="stable").index
    return table.loc[ordered].reset_index(drop=True)


def _step_order(chains: Mapping[str, Sequence[str]]) -> dict[tuple, tuple]:
    """Sort keys of the steps: chain order; within a chain by the later model, a consecutive step
    before base → the same model."""
    return {
        (chain, from_model, to_model): (c, members.index(to_model), -members.index(from_model))
        for c, (chain, members) in enumerate(chains.items())
        for to_model in members
        for from_model in members[: members.index(to_model)]
    }


def _row(chain, from_model, to_model, statistic, value, low, high, q_value, family, source) -> dict:
    spec = STATISTICS[statistic_name(statistic)]
    return {
        "chain": chain, "from_model": from_model, "to_model": to_model,
        "axis": QUESTIONS[spec.question][0], "question": spec.question, "statistic": statistic,
        "value": float(value), "ci_low": low, "ci_high": high, "q_value": q_value, "family": family,
        "verdict": verdict(spec.kind, value, q_value, spec.counted), "source_table": source,
    }  # fmt: skip


def _steps(table: pd.DataFrame) -> list[tuple[str, str, str]]:
    return list(dict.fromkeys(zip(table["chain"], table["from_model"], table["to_model"])))


def _step_rows(table: pd.DataFrame, step: tuple[str, str, str]) -> pd.DataFrame:
    chain, from_model, to_model = step
    return table[(table["chain"] == chain) & (table["from_model"] == from_model) & (table["to_model"] == to_model)]


def _step_selector(step) -> dict:
    return dict(zip(("chain", "from_model", "to_model"), step))


# ---- dialects


def _md3_gaps(inputs: Inputs):
    table = inputs.tables.get("md3_taboo_gap_changes")
    if table is None:
        return
    rows = table[table["metric"].isin(MD3_METRICS)]
    rows = rows.sort_values("metric", key=lambda metric: metric.map(MD3_METRICS.index), kind="stable")  # headline first
    for r in rows.itertuples(index=False):
        step = (r.chain, r.from_model, r.to_model)
        family = selector("md3_taboo_gap_changes", **_step_selector(step), reference=r.reference, metric=r.metric)
        source = selector(
            "md3_taboo_gap_changes", **_step_selector(step), reference=r.reference, group=r.group, metric=r.metric
        )
        yield _row(
            *step, f"md3_gap_change:{r.group}:{r.metric}", r.change, r.ci_low, r.ci_high, r.q_value, family, source
        )


def _sae_gaps(inputs: Inputs):
    for task in DIALECT_PAIR_TASKS:
        deltas = inputs.tables.get(f"{task}_deltas")
        if deltas is None:
            continue
        paired = deltas[deltas["metric"].str.endswith(VS_SAE)]
        for step in _steps(paired):
            for metric, family in _step_rows(paired, step).groupby("metric", sort=False):
                name = metric.removesuffix(VS_SAE)
                where = selector(f"{task}_deltas", **_step_selector(step), metric=metric)
                significant = family[family["q_value"] < SIGNIFICANCE]
                # dialect − SAE fell: the SAE − dialect gap widened
                for statistic, count in (("sae_gaps_widened", (significant["delta"] < 0).sum()),
                                         ("sae_gaps_narrowed", (significant["delta"] > 0).sum())):  # fmt: skip
                    yield _row(*step, f"{statistic}:{task}:{name}", count, np.nan, np.nan, np.nan, where, where)


# ---- languages


def _language_deltas(inputs: Inputs, task: str) -> list[tuple[str, pd.DataFrame]]:
    """``(table name, its rows of the headline metric)``: the chain steps, then base → model
    where that is not already a step."""
    metric = LANGUAGE_TASKS[task]
    found, seen = [], set()
    for name in (f"{task}_deltas", f"{task}_from_base"):
        table = inputs.tables.get(name)
        if table is None:
            continue
        table = table[table["metric"] == metric]
        new = [step for step in _steps(table) if step not in seen]
        table = pd.concat([_step_rows(table, step) for step in new]) if new else table.iloc[:0]
        seen |= set(new)
        found.append((name, table))
    return found


def _language_counts(inputs: Inputs):
    for task, metric in LANGUAGE_TASKS.items():
        for name, table in _language_deltas(inputs, task):
            for step in _steps(table):
                family = _step_rows(table, step)
                where = selector(name, **_step_selector(step), metric=metric)
                significant = family[family["q_value"] < SIGNIFICANCE]
                for statistic, count in (("languages_improved", (significant["delta"] > 0).sum()),
                                         ("languages_declined", (significant["delta"] < 0).sum())):  # fmt: skip
                    yield _row(*step, f"{statistic}:{task}:{metric}", count, np.nan, np.nan, np.nan, where, where)


def is_english(group: str) -> bool:
    """A language group that is English, by code (``eng_Latn``, ``en``) or name (``english``)."""
    return base_language(group) == "en" or name_to_code(group) == "en"


def _english_vs_median(inputs: Inputs):
    for task, metric in LANGUAGE_TASKS.items():
        scores = inputs.scores.get(task)
        if scores is None:
            continue
        for name, table in _language_deltas(inputs, task):
            for step in _steps(table):
                groups = list(_step_rows(table, step)["group"])
                english = [group for group in groups if is_english(group)]
                others = [group for group in groups if not is_english(group)]
                if len(english) != 1 or not others:
                    continue
                changes = _item_changes(scores, step[1], step[2], metric)
                samples = [changes.get(group, np.array([])) for group in english + others]
                if any(sample.size == 0 for sample in samples):
                    continue
                value, low, high, p_value = stats.bootstrap_statistic(
                    samples, stats.mean_minus_median, paired=False, seed=SEED
                )
                statistic = f"english_vs_median_change:{task}:{metric}"
                source = selector(name, **_step_selector(step), metric=metric)
                yield _row(*step, statistic, value, low, high, *_alone(p_value, inputs, statistic, step), source)


def _item_changes(scores: pd.DataFrame, from_model: str, to_model: str, metric: str) -> dict[str, np.ndarray]:
    """Per group, each item's value under ``to_model`` minus under ``from_model`` (items both
    scored), in item order."""
    valid = scores[(scores["metric"] == metric) & scores["value"].notna()]
    before = valid.loc[valid["model"] == from_model, ["group", "item_id", "value"]]
    after = valid.loc[valid["model"] == to_model, ["group", "item_id", "value"]]
    paired = before.merge(after, on=["group", "item_id"], suffixes=("_from", "_to")).sort_values(["group", "item_id"])
    return {
        group: (frame["value_to"] - frame["value_from"]).to_numpy()
        for group, frame in paired.groupby("group", sort=True)
    }


def _alone(p_value: float, inputs: Inputs, statistic: str, step) -> tuple[float, str]:
    """q and family of a statistic tested on its own: a family of one (q = p whatever the correction)."""
    q_value = float(stats.adjusted_p_values([p_value], inputs.correction)[0])
    return q_value, selector("findings", statistic=statistic, **_step_selector(step))


def _english_shares(inputs: Inputs):
    table = inputs.tables.get("sft_langid")
    if table is None or table.empty:
        return
    metric = next((m for m in SFT_SHARE_METRICS if m in set(table["metric"])), None)
    english = table[(table["metric"] == metric) & table["group"].map(is_english)]
    for r in english.itertuples(index=False):
        source = selector("sft_langid", model=r.model, group=r.group, metric=metric)
        yield _row("", "", "", f"english_share:{r.model}", r.value, r.ci_low, r.ci_high, np.nan, "", source)


# ---- countries


def _us_rank(inputs: Inputs):
    deltas = inputs.tables.get("global_opinions_deltas")
    if deltas is None:
        return
    deltas = deltas[deltas["metric"] == GOQA_METRIC]
    for step in _steps(deltas):
        family = _step_rows(deltas, step).dropna(subset=["delta"])
        if GOQA_US not in set(family["group"]):
            continue
        us_change = family.loc[family["group"] == GOQA_US, "delta"].iloc[0]
        rank = 1 + int((family["delta"] > us_change).sum())
        source = selector("global_opinions_deltas", **_step_selector(step), metric=GOQA_METRIC)
        yield _row(*step, "us_rank_by_similarity_change", rank, np.nan, np.nan, np.nan, "", source)


def _us_minus_rest(inputs: Inputs):
    deltas, scores = inputs.tables.get("global_opinions_deltas"), inputs.scores.get("global_opinions")
    if deltas is None or scores is None:
        return
    deltas = deltas[deltas["metric"] == GOQA_METRIC]
    similarity = scores[(scores["metric"] == GOQA_METRIC) & scores["value"].notna()]
    wide = similarity.pivot_table(index=["model", "item_id"], columns="group", values="value", aggfunc="first")
    if GOQA_US not in wide.columns or len(wide.columns) < 2:
        return
    lead = (wide[GOQA_US] - wide.drop(columns=GOQA_US).mean(axis=1)).dropna()
    for step in _steps(deltas):
        before, after = lead.xs(step[1], level="model"), lead.xs(step[2], level="model")
        common = before.index.intersection(after.index).sort_values()
        if common.empty:
            continue
        value, low, high, p_value = stats.paired_difference(before[common], after[common], seed=SEED)
        statistic = "us_minus_rest_change"
        source = selector("global_opinions_deltas", **_step_selector(step), metric=GOQA_METRIC)
        yield _row(*step, statistic, value, low, high, *_alone(p_value, inputs, statistic, step), source)


def _where_from(inputs: Inputs):
    table = inputs.tables.get("where_from")
    if table is None:
        return
    for model, frame in table.groupby("model", sort=False):
        rewards = frame.dropna(subset=["value"])
        if NATURAL_EARTH_US not in set(rewards["group"]):
            continue
        us_reward = rewards.loc[rewards["group"] == NATURAL_EARTH_US, "value"].iloc[0]
        rank = 1 + int((rewards["value"] > us_reward).sum())
        source = selector("where_from", model=model, metric=list(rewards["metric"].unique()))
        yield _row("", "", model, "where_from_us_rank", rank, np.nan, np.nan, np.nan, "", source)


def _gallup(inputs: Inputs):
    table = inputs.tables.get("askreddit_us_favorability")
    if table is None or table.empty:
        return
    for chain, members in inputs.chains.items():
        present = [model for model in members if model in set(table["model"])]
        for step in ((chain, a, b) for a, b in zip(present, present[1:])):
            for listed, frame in table.groupby("list", sort=False):
                before = frame[frame["model"] == step[1]].set_index("country")
                after = frame[frame["model"] == step[2]].set_index("country")
                common = before.index.intersection(after.index)
                if len(common) < MIN_CORRELATION_COUNTRIES:
                    continue
                samples = [
                    before.loc[common, "mean_rank"],
                    after.loc[common, "mean_rank"],
                    after.loc[common, "list_rank"],
                ]
                value, low, high, p_value = stats.bootstrap_statistic(
                    samples, stats.spearman_change, paired=True, seed=SEED
                )
                if _missing(value):
                    continue
                statistic = f"gallup_correlation_change:{listed}"
                source = selector("askreddit_us_favorability", model=[step[1], step[2]], list=listed)
                yield _row(*step, statistic, value, low, high, *_alone(p_value, inputs, statistic, step), source)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# The statistics' builders, each yielding its rows (:func:`findings_table` orders them).
BUILDERS = (
    _md3_gaps, _sae_gaps, _language_counts, _english_vs_median, _english_shares, _us_rank, _us_minus_rest,
    _where_from, _gallup,
)  # fmt: skip


# ------------------------------------------------------------------------------ sentences


@dataclass(frozen=True)
class Clause:
    """One statistic (or a pair of counts) said in words, and the task whose section holds its evidence."""

    text: str
    task: str


@dataclass(frozen=True)
class Sentence:
    """What one chain step (or a model, or the SFT data) did for one question."""

    step: str  # "zephyr: mistral-7b → mistral-7b-sft-beta", or the model or data set
    question: str
    clauses: tuple[Clause, ...]

    @property
    def text(self) -> str:
        return f"{self.step} — {'; '.join(clause.text for clause in self.clauses)}."


TEXT_COLUMNS = ("chain", "from_model", "to_model", "family", "source_table")


def with_text(findings: pd.DataFrame) -> pd.DataFrame:
    """``findings`` as read back from CSV, its empty text cells (NaN) made empty strings again."""
    return findings.fillna({column: "" for column in TEXT_COLUMNS})


def sentences(findings: pd.DataFrame, tasks: Sequence[str]) -> list[Sentence]:
    """One sentence per step (in the table's order) and question; ``tasks`` are the run's task
    names, to find the task of each source table."""
    findings = with_text(findings)
    said = []
    steps = findings.groupby(["chain", "from_model", "to_model"], sort=False)
    for (chain, from_model, to_model), rows in steps:
        step = f"{chain}: {from_model} → {to_model}" if chain else (to_model or "SFT data")
        for question, part in rows.groupby("question", sort=False):
            clauses = tuple(_clauses(part, tasks))
            if clauses:
                said.append(Sentence(step, question, clauses))
    return said


def source_task(source: str, tasks: Sequence[str]) -> str:
    """The task whose table ``source`` names (the longest task name the table's name starts with)."""
    table, _ = parse_selector(source)
    matches = [task for task in tasks if table == task or table.startswith(f"{task}_")]
    return max(matches, key=len) if matches else ""


def _clauses(rows: pd.DataFrame, tasks: Sequence[str]):
    counts: dict[tuple, dict] = {}
    for r in rows.itertuples(index=False):
        name, *params = r.statistic.split(":")
        task = source_task(r.source_table, tasks)
        if STATISTICS[name].kind == COUNT:  # the two directions of one count say one clause
            counts.setdefault((tuple(params), name.split("_")[0]), {})[STATISTICS[name].counted] = int(r.value)
            continue
        yield Clause(_described(name, params, r), task)
    for (params, subject), found in counts.items():
        task_name, metric = params
        if subject == "sae":
            up, down = found.get(WIDENED, 0), found.get(NARROWED, 0)
            text = f"{task_name} {metric} SAE − dialect gaps: {up} widened, {down} narrowed (q < {SIGNIFICANCE})"
        else:
            up, down = found.get(ROSE, 0), found.get(FELL, 0)
            text = f"{task_name} {metric}: {up} languages rose, {down} fell (q < {SIGNIFICANCE})"
        yield Clause(text, task_name)


def _described(name: str, params: list[str], r) -> str:
    tested = f"{r.verdict} ({r.value:+.3f} {_interval(r.ci_low, r.ci_high)}, q = {_q(r.q_value)})"
    if name == "md3_gap_change":
        group, metric = params
        return f"MD3 {metric} US − {MD3_LABELS.get(group, group)} gap: {tested}"
    if name == "english_vs_median_change":
        task, metric = params
        return f"{task} {metric}: English's change minus the median language's: {tested}"
    if name == "us_minus_rest_change":
        return f"GlobalOpinionQA: similarity to the US minus to the other countries: {tested}"
    if name == "gallup_correlation_change":
        return f"AskReddit: correlation with Gallup's {params[0]} order: {tested}"
    if name == "us_rank_by_similarity_change":
        return f"GlobalOpinionQA: the US ranks {_ordinal(r.value)} of the focus countries by change in similarity"
    if name == "where_from_us_rank":
        return f"where-from: the reward model ranks the US {_ordinal(r.value)} of the countries by reward"
    if name == "english_share":
        return f"{params[0]}: {r.value:.1f}% of messages in English {_interval(r.ci_low, r.ci_high, 1)}"
    raise GlobalrepError(f"findings: no wording for statistic {name!r}")


def _interval(low: float, high: float, digits: int = 3) -> str:
    return "[no CI]" if _missing(low) or _missing(high) else f"[{low:.{digits}f}, {high:.{digits}f}]"


def _q(value: float) -> str:
    return "–" if _missing(value) else f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def _ordinal(value: float) -> str:
    n = int(value)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ------------------------------------------------------------------------------ the terminal


def summary_lines(findings: pd.DataFrame, tasks: Sequence[str]) -> list[str]:
    """The lines a finished run prints: one per step and question (as the report's first section)."""
    return [f"  [{QUESTION_LABELS[sentence.question]}] {sentence.text}" for sentence in sentences(findings, tasks)]
