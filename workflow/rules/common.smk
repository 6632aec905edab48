# Config validation, model/task registries, shard lists, fingerprints and input functions.
# Everything here runs when Snakemake parses the workflow, before any job starts.

import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.exceptions import WorkflowError
from snakemake.io import contains_wildcard
from snakemake.utils import validate

# Use this checkout's package (src/) when present, here and in every job's Python; a deployed
# workflow (a `module` of the user's Snakefile, e.g. from snakedeploy, maybe remote) has none and
# uses the installed package. Paths into the workflow's own files go from this file's folder.
_RULES_DIR = workflow.current_basedir
_SRC = Path(_RULES_DIR.get_path_or_uri(secret_free=True)).parents[1] / "src" if _RULES_DIR.is_local else None
if _SRC is not None and _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))
    _paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ.update(PYTHONPATH=os.pathsep.join([str(_SRC)] + [p for p in _paths if p != str(_SRC)]))

from globalrep import config_checks, config_files, config_schema, figure_manifest, findings, stages
from globalrep.codebase import code_fingerprint, figure_fingerprint, scoring_fingerprint
from globalrep.demo import DEMO_MODELS
from globalrep.engine.backends import environment_file
from globalrep.errors import GlobalrepError
from globalrep.file_stamps import stamp
from globalrep.digests import fingerprint
from globalrep.models import ModelSpec, inference_fingerprint, inference_resources
from globalrep.tasks import get_task

try:
    # The files as written: no key given twice, no alias bomb, no YTE (Snakemake reads them leniently).
    config_files.check_config_files(workflow.configfiles)
except GlobalrepError as error:
    raise WorkflowError(str(error)) from None

try:
    # The top-level schema with every task's options block (see globalrep.config_schema).
    validate(config, schema=config_schema.assembled_file(workflow.source_path("../schemas/config.schema.yaml")))
except WorkflowError as error:
    cause = error.__context__  # the jsonschema ValidationError, if that is what failed
    if not hasattr(cause, "absolute_path"):
        raise
    raise WorkflowError(config_checks.config_error_message(cause)) from None

# Bounds the schema cannot state, then the paper's repository (config key paper_repo) filled in
# where the config refers to it.
try:
    config_checks.check_shards(config["tasks"])
    config.update(config_checks.resolve_paper_repo(config))
except GlobalrepError as error:
    raise WorkflowError(str(error)) from None


MODELS = config["models"]
CHAINS = config["chains"]
TASKS = list(config["tasks"])
# Tasks that run models go prepare -> infer -> score; a model-free task (empty MODEL_KINDS, e.g.
# sft_langid) runs its own stage (its OWN_STAGE, workflow/rules/langid.smk) up to its two tables,
# then the generic figures and report.
MODEL_TASKS = [task for task in TASKS if get_task(task).runs_models]

# The demo's models are built by rule build_demo_models; they need not exist before the run.
DEMO_MODEL_DIR = "results/demo/models"
BUILT_MODEL_DIRS = [f"{DEMO_MODEL_DIR}/{name}" for name in DEMO_MODELS]
DEMO_TEXTS = sorted(str(p) for p in Path("data/demo").glob("*") if p.is_file())

try:
    config_checks.check_chains(CHAINS, MODELS)
    config_checks.check_models(MODELS, BUILT_MODEL_DIRS)
    config_checks.check_memory_knobs(MODELS, config["engine"])
    # Per task its models, and a note on those it cannot evaluate (published backend: models
    # whose outputs the paper did not publish); the report and figures show the notes.
    TASK_MODELS, TASK_NOTES = {}, {}
    for task in MODEL_TASKS:
        TASK_MODELS[task], TASK_NOTES[task] = config_checks.task_models(task, MODELS)
    # Tasks no model can answer get empty tables and a figure saying why, and need no data.
    SCORED_TASKS = [task for task in MODEL_TASKS if TASK_MODELS[task]]
    UNAVAILABLE_TASKS = [task for task in MODEL_TASKS if not TASK_MODELS[task]]
    config_checks.check_task_sources({task: config["tasks"][task] for task in SCORED_TASKS})
except GlobalrepError as error:
    raise WorkflowError(str(error)) from None


wildcard_constraints:
    task="|".join(map(re.escape, TASKS)),
    model="|".join(map(re.escape, MODELS)),
    shard=r"\d+",
    nshards=r"\d+",


# ---- paths ---------------------------------------------------------------------------------


def n_shards(task):
    return config["tasks"][task]["shards"]


def shard_files(task, model):
    """One task's prediction shards for one model, in shard order."""
    n = n_shards(task)
    return [f"results/predictions/{task}/{model}/shard-{i}-of-{n}.parquet" for i in range(n)]


def langid_shards():
    """{dataset: its detection shards, in shard order} of sft_langid's own stage (langid.smk)."""
    n = n_shards("sft_langid")
    datasets = get_task("sft_langid").own_stage.units(config["tasks"]["sft_langid"])
    return {d: [f"results/langid/{d}/shard-{i}-of-{n}.parquet" for i in range(n)] for d in datasets}


def prediction_files(task):
    """{model: shard files} for every model the task evaluates."""
    return {model: shard_files(task, model) for model in TASK_MODELS[task]}


def built_model_files(model):
    """The demo model's config.json when the workflow builds the model, else nothing."""
    path = os.path.normpath(MODELS[model]["path"])
    return [f"{path}/config.json"] if path in BUILT_MODEL_DIRS else []


def model_spec(model):
    return ModelSpec.from_config(model, MODELS[model])


def model_resource(name):
    """A resource (threads, gpus, mem_mb, runtime) of an inference job, from its model's entry."""
    return lambda wildcards: inference_resources(MODELS[wildcards.model], config["engine"])[name]


def inference_environment(wildcards):
    """The conda environment of the model's backend. Snakemake reads a relative path from the
    rule's file (as ../../envs/... here), also in a deployed workflow."""
    path = environment_file(MODELS[wildcards.model].get("backend"))
    return path if os.path.isabs(path) else os.path.join("../..", path)


def chains_for(task):
    return config_checks.task_chains(CHAINS, TASK_MODELS.get(task, []))


def models_stage(task):
    """{model: stage} of the models a task evaluates (figures colour by stage)."""
    return {model: MODELS[model]["stage"] for model in TASK_MODELS.get(task, [])}


def task_extra_table_files(task):
    """A task's extra tables (its EXTRA_TABLES), unless no model could answer the task."""
    if task in UNAVAILABLE_TASKS:
        return []
    return [f"results/tables/{task}_{name}.csv" for name in stages.extra_table_names(task)]


def extra_table_files():
    """Every task's extra tables (see task_extra_table_files)."""
    return [path for task in TASKS for path in task_extra_table_files(task)]


def intermediate_files():
    """What the tables are computed from: prepared items (and a dialect task's rewrites), prediction
    shards, scores, sft_langid's detection shards. Snakemake rebuilds a missing intermediate only
    for an output that must be rebuilt anyway; as targets of rule all, one that is missing (deleted
    as damaged, lost with a killed job, deleted by hand) is rebuilt by the next plain run, and what
    depends on it reruns. DIALECT_TASKS, DIALECTS (rules/dialects.smk) and LANGID (rules/langid.smk)
    are read when rule all asks."""
    files = []
    for task in SCORED_TASKS:
        files += [f"results/prepared/{task}.parquet", f"results/scores/{task}.parquet"]
        files += [path for paths in prediction_files(task).values() for path in paths]
        if task in DIALECT_TASKS:
            versions = ["sae", *DIALECTS]
            files += [f"results/prepared/{task}@{version}.parquet" for version in versions]
            files.append(f"results/tables/{task}_rewrites.csv")
    if LANGID in TASKS:
        files += [path for paths in langid_shards().values() for path in paths]
        files.append(f"results/scores/{LANGID}.parquet")
    return files


def all_targets():
    return [
        *[f"results/tables/{task}.csv" for task in TASKS],
        *[f"results/tables/{task}_deltas.csv" for task in TASKS],
        *extra_table_files(),
        *[f"results/figures/{task}" for task in TASKS],
        FINDINGS,
        "results/report.html",
        *intermediate_files(),
    ]


FINDINGS = "results/tables/findings.csv"
FINDINGS_FIGURE = "results/figures/findings/findings_overview.png"


def findings_tables():
    """The tables this run writes that findings.csv is computed from (globalrep.findings.SOURCE_TABLES)."""
    written = {
        *(f"results/tables/{task}.csv" for task in TASKS),
        *(f"results/tables/{task}_deltas.csv" for task in TASKS),
        *extra_table_files(),
    }
    candidates = (f"results/tables/{name}.csv" for task in TASKS for name in findings.SOURCE_TABLES.get(task, ()))
    return [path for path in candidates if path in written]


def findings_scores():
    """{task: its per-item scores} of the tasks whose findings resample items and that this run scores."""
    return {task: f"results/scores/{task}.parquet" for task in findings.ITEM_SCORE_TASKS if task in SCORED_TASKS}


# ---- input functions and params ------------------------------------------------------------


def declarable(paths):
    """The paths Snakemake can take as inputs: not those it would read as wildcards."""
    return [path for path in paths if not contains_wildcard(path)]


def undeclarable_stamp(paths):
    """The stamp of the paths left out by declarable(), for the job's fingerprint."""
    return stamp(path for path in paths if contains_wildcard(path))


def source_files(wildcards):
    return config_checks.source_files(wildcards.task, config["tasks"][wildcards.task])


def published_files(wildcards):
    """The paper's file (or folder) of the model for the task; none unless backend published."""
    published = MODELS[wildcards.model].get("published", {}).get(wildcards.task)
    return [published] if published else []


def prepare_source(wildcards):
    """The local source files, so that editing one reruns prepare; nothing for a hub dataset."""
    return declarable(source_files(wildcards))


def prepare_fingerprint(wildcards):
    return fingerprint(
        config_checks.inference_options(wildcards.task, config["tasks"][wildcards.task]),
        *undeclarable_stamp(source_files(wildcards)),
    )


def infer_inputs(wildcards):
    return {
        "prepared": f"results/prepared/{wildcards.task}.parquet",
        "model": built_model_files(wildcards.model),
        "published": declarable(published_files(wildcards)),
    }


def infer_fingerprint(wildcards):
    """Hash of what determines the shard's answers: model entry (minus batch size), the task
    options that shape its requests, the task's prompt version and the engine's results version.
    The shard records it; scoring accepts only shards that carry their model's (see
    inference_fingerprints).
    """
    task = get_task(wildcards.task)
    options = config_checks.inference_options(wildcards.task, config["tasks"][wildcards.task])
    answers = inference_fingerprint(model_spec(wildcards.model), options, task.prompt_version)
    stamps = undeclarable_stamp(published_files(wildcards))
    return fingerprint(answers, *stamps) if stamps else answers


def inference_fingerprints(task):
    """{model: infer_fingerprint} of the models a task evaluates, for scoring to check shards."""
    return {model: infer_fingerprint(SimpleNamespace(task=task, model=model)) for model in TASK_MODELS[task]}


def score_inputs(wildcards):
    files = prediction_files(wildcards.task)
    return {
        "prepared": f"results/prepared/{wildcards.task}.parquet",
        "predictions": [path for paths in files.values() for path in paths],
    }


# Per task, hashes of its code, never of inference: editing what the task's scoring runs (its
# module, a metric, the statistics) reruns scoring, figures and the report; editing a figure module
# (globalrep.figures) reruns figures and the report (see globalrep.codebase).
SCORING_CODE = {task: scoring_fingerprint(get_task(task).module.__name__) for task in TASKS}
FIGURE_CODE = {task: figure_fingerprint(get_task(task).module.__name__) for task in TASKS}


def task_options_fingerprint(wildcards, code):
    options = {k: v for k, v in config["tasks"][wildcards.task].items() if k != "shards"}
    return fingerprint(options, chains_for(wildcards.task), code[wildcards.task])


def score_fingerprint(wildcards):
    return task_options_fingerprint(wildcards, SCORING_CODE)


def figure_fingerprint(wildcards):
    return task_options_fingerprint(wildcards, FIGURE_CODE)


# The findings' code (and what it imports), and the overview figure's.
FINDINGS_CODE = code_fingerprint(["globalrep.findings"], skip=("globalrep.figures",))
FINDINGS_FIGURE_CODE = code_fingerprint(["globalrep.figures.findings"])


def findings_fingerprint(wildcards):
    options = {task: config["tasks"][task] for task in findings_scores()}
    return fingerprint(FINDINGS_CODE, options)


def report_fingerprint(wildcards):
    return fingerprint(config)
