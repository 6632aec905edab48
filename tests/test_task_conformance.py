"""Every registered task against the task protocol (globalrep.tasks.base), end to end on a few demo
items: prepare -> requests -> answers of a fake backend -> score -> table rows -> the standard
tables -> extra tables -> figures, through the workflow's own stage functions. Three fake models
form a chain (base -> sft -> pt), so deltas and chain figures have something to compare."""

from __future__ import annotations

import types
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TOP_LEVEL_SCHEMA

from globalrep import config_schema, dialect_pairs, dialect_rewrites, figures, stages, tables
from globalrep.atomic import write_parquet_atomic
from globalrep.engine import backends
from globalrep.engine.answers import generate_answer, loglik_answer, prediction_frame, reward_answer
from globalrep.engine.requests import GenerateRequest, LoglikRequest, RewardRequest, check_unique_keys
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec
from globalrep.multivalue_adapter import Rewrite
from globalrep.tasks import TASKS, sft_langid
from globalrep.tasks.base import AXES, Task

REPO = Path(__file__).resolve().parents[1]
DEMO_TASKS = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["tasks"]

# A few items of a few groups keep the bootstrap CIs of the tables, and the module, fast.
ITEMS_PER_GROUP, GROUPS = 2, 3
# askreddit scores every country of its list: only the most populous (a documented, score-only option).
FEWER_COUNTRIES = {"askreddit": {"min_population": 50_000_000}}
CHAIN = {"fake-base": "base", "fake-sft": "sft", "fake-pt": "pt"}  # model -> stage, in chain order
SCORE_COLUMNS = ["model", "item_id", "group", "metric", "value"]
REQUESTS_OF_KIND = {"lm": (LoglikRequest, GenerateRequest), "reward": (RewardRequest,)}
UNSURE = "I am not sure."

MODEL_TASKS = [(name, kind) for name, task in TASKS.items() for kind in task.model_kinds]


# ------------------------------------------------------------------------------ fakes


class FakeBackend:
    """The Backend protocol with made-up answers, seeded by the model's name (so the models of the
    chain differ, and every run gives the same numbers). A generation is the item's answer for
    about half the items where the items carry one, else a fixed text."""

    def __init__(self, spec: ModelSpec, options: dict, progress: bool):
        self.spec = spec
        self.rng = np.random.default_rng(zlib.crc32(spec.name.encode()))

    def answer(self, requests, shard=None) -> pd.DataFrame:
        assert requests and all(isinstance(r, REQUESTS_OF_KIND[self.spec.kind]) for r in requests)
        check_unique_keys(requests)
        assert {r.item_id for r in requests} <= set(shard.items["item_id"])
        answers = {}
        for request in requests:
            if isinstance(request, LoglikRequest):
                n = len(request.continuations)
                answers |= loglik_answer(request, -self.rng.exponential(3.0, n), self.rng.integers(1, 5, n))
            elif isinstance(request, GenerateRequest):
                right = self.rng.random() < 0.5
                answers |= generate_answer(request, plausible_text(shard.items, request.item_id) if right else UNSURE)
            else:
                answers |= reward_answer(request, self.rng.normal(size=len(request.conversations)))
        return prediction_frame(answers)

    def close(self) -> None:
        pass


def plausible_text(items: pd.DataFrame, item_id: str) -> str:
    """The item's own answer (``answer``, or the first of ``answers``) where it has one."""
    item = items.set_index("item_id").loc[item_id]
    if "answer" in item:
        return str(item["answer"])
    if "answers" in item and len(item["answers"]):
        return str(item["answers"][0])
    return UNSURE


class Suffix:
    """A stand-in for a Multi-VALUE dialect (globalrep.multivalue_adapter.DialectRewriter): every
    text gets a tag appended, so the dialect version differs from the SAE one."""

    code = "tagged"

    def rewrite(self, text: str, key: str, protect=()) -> Rewrite:
        return Rewrite(f"{text}, innit", ("tag",))


@pytest.fixture
def fake_backend_and_fast_pdfs(monkeypatch):
    """``backend: fake`` answers with :class:`FakeBackend`; PDFs embed Type 3 fonts, which skips
    the TrueType subsetting that takes a third of the figures' time (fonts are not tested here)."""
    monkeypatch.setitem(backends.BACKENDS, "fake", FakeBackend)
    monkeypatch.setitem(figures.RC, "pdf.fonttype", 3)


# ------------------------------------------------------------------------------ helpers


def demo_options(value):
    """The demo config's task options with its relative paths (``data/demo/...``) made absolute."""
    if isinstance(value, dict):
        return {key: demo_options(inner) for key, inner in value.items()}
    if isinstance(value, str) and value.startswith("data/"):
        return str(REPO / value)
    return value


def prepared_items(task: Task, options: dict, out: Path) -> Path:
    """The task's demo items, cut to a few per group; for a dialect task, those as written (SAE)
    and one stand-in dialect, paired as the dialect stage pairs them."""
    full = out / f"{task.name}-full.parquet"
    stages.prepare_task(task.name, options, full)
    items = pd.read_parquet(full)
    items = items[items["group"].isin(items["group"].unique()[:GROUPS])].groupby("group").head(ITEMS_PER_GROUP)
    prepared = out / f"{task.name}.parquet"
    if not task.dialect_text:
        write_parquet_atomic(items, prepared)
        return prepared
    sae, tagged = out / f"{task.name}@sae.parquet", out / f"{task.name}@tagged.parquet"
    write_parquet_atomic(items, sae)
    write_parquet_atomic(
        dialect_rewrites.rewrite_items(items, Suffix(), task.dialect_text, task.dialect_protect), tagged
    )
    dialect_pairs.combine_task_items(sae, {Suffix.code: tagged}, prepared)
    return prepared


def documented_options(task: Task) -> set[str]:
    """The option keys the config schema documents for the task (its block in the assembled
    schema, which is the task's own options block)."""
    return set(config_schema.assemble(TOP_LEVEL_SCHEMA)["$defs"][task.name]["properties"])


# ------------------------------------------------------------------------------ protocol facts


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_keeps_the_protocol(name):
    task = TASKS[name]
    assert Task.from_module(task.module).name == name
    assert task.axis in AXES and task.prompt_version.strip()
    assert set(task.model_kinds) <= set(REQUESTS_OF_KIND)
    assert set(task.score_only_options) <= documented_options(task)
    assert set(task.extra_table_summaries) <= set(task.extra_tables)
    assert name in DEMO_TASKS, "every task runs in the demo config"


def test_a_module_without_score_is_refused():
    broken = types.ModuleType("broken_task")
    kept = {key: value for key, value in vars(TASKS["belebele"].module).items() if not key.startswith("__")}
    broken.__dict__.update({key: value for key, value in kept.items() if key != "score"})
    with pytest.raises(GlobalrepError, match="broken_task lacks score"):
        Task.from_module(broken)
    broken.score, broken.AXIS = TASKS["belebele"].module.score, "weather"
    with pytest.raises(GlobalrepError, match="AXIS 'weather' is not one of"):
        Task.from_module(broken)


# ------------------------------------------------------------------------------ the whole protocol


@pytest.mark.parametrize("name, kind", MODEL_TASKS, ids=[f"{name}-{kind}" for name, kind in MODEL_TASKS])
def test_a_task_runs_the_whole_protocol(tmp_path, fake_backend_and_fast_pdfs, name, kind):
    task = TASKS[name]
    options = demo_options(DEMO_TASKS[name]) | FEWER_COUNTRIES.get(name, {})
    prepared = prepared_items(task, options, tmp_path)
    items = pd.read_parquet(prepared)

    predictions = {}
    for model, stage in CHAIN.items():
        spec = ModelSpec(name=model, path="fake", stage=stage, kind=kind, backend="fake")
        predictions[model] = [tmp_path / f"{model}.parquet"]
        stages.infer_shard(name, options, spec, prepared, 1, 0, {}, predictions[model][0])

    chains = {"fake": list(CHAIN)}
    scores_path, table_path, deltas_path = tmp_path / "scores.parquet", tmp_path / "table.csv", tmp_path / "deltas.csv"
    stages.score_task(name, options, prepared, predictions, chains, scores_path, table_path, deltas_path)
    scores = pd.read_parquet(scores_path)
    assert set(SCORE_COLUMNS) <= set(scores.columns)
    scored = scores.groupby("model")["item_id"].agg(set)
    assert scored.to_dict() == {model: set(items["item_id"]) for model in CHAIN}

    table, deltas = tables.read_table(table_path), tables.read_table(deltas_path)
    assert set(tables.GROUP_COLUMNS) <= set(table.columns) and set(table["model"]) == set(CHAIN)
    if task.dialect_text:  # both versions of each item are scored, and their differences paired
        assert set(table["group"]) == {dialect_pairs.SAE, Suffix.code}
        assert table["metric"].str.endswith(dialect_pairs.VS_SAE).any()
    assert list(deltas.columns) == tables.DELTA_COLUMNS
    assert set(zip(deltas["from_model"], deltas["to_model"])) == {("fake-base", "fake-sft"), ("fake-sft", "fake-pt")}

    extra_paths = []
    for table_name in task.extra_tables:
        extra_paths.append(tmp_path / f"{name}_{table_name}.csv")
        stages.extra_table(name, options, scores_path, chains, table_name, extra_paths[-1])
        assert len(pd.read_csv(extra_paths[-1])), table_name

    written = stages.task_figures(
        name, options, table_path, deltas_path, chains, CHAIN, tmp_path / "figures", extra_tables=extra_paths
    )
    if task.figures:
        assert any(path.suffix == ".png" for path in written)


def test_sft_langid_runs_its_own_stages_and_the_generic_figures(tmp_path, fake_backend_and_fast_pdfs):
    """sft_langid runs no models: its own stage's detection shards and tables (as
    workflow/rules/langid.smk runs them), then the generic figure stage."""
    task = TASKS[sft_langid.NAME]
    assert not task.runs_models and task.own_stage is sft_langid.OWN_STAGE
    options = demo_options(DEMO_TASKS[sft_langid.NAME])
    task.own_stage.check_sources(options)
    shards = {}
    for dataset in task.own_stage.units(options):
        assert task.own_stage.source_files(options, dataset) and task.own_stage.fingerprint(options, dataset)
        shards[dataset] = [tmp_path / f"{dataset}.parquet"]
        task.own_stage.run_shard(dataset, options, 3, 0, shards[dataset][0])  # a third of the conversations
    paths = [tmp_path / name for name in ("messages.parquet", "table.csv", "deltas.csv")]
    task.own_stage.write_tables(shards, *paths)
    table = tables.read_table(paths[1])
    assert set(tables.GROUP_COLUMNS) <= set(table.columns) and set(table["model"]) == set(options["datasets"])
    assert list(tables.read_table(paths[2]).columns) == tables.DELTA_COLUMNS
    written = stages.task_figures(sft_langid.NAME, options, paths[1], paths[2], {}, {}, tmp_path / "figures")
    assert any(path.suffix == ".png" for path in written)


def test_a_task_without_models_needs_its_own_stage():
    module = types.SimpleNamespace(
        __name__="modelfree", NAME="modelfree", PROMPT_VERSION="1", MODEL_KINDS=(), AXIS="languages", OPTIONS_SCHEMA={}
    )
    with pytest.raises(GlobalrepError, match="modelfree lacks OWN_STAGE"):
        Task.from_module(module)
    assert Task.from_module(types.SimpleNamespace(**vars(module), OWN_STAGE=sft_langid.OWN_STAGE)).own_stage
