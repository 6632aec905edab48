# SAE text -> Multi-VALUE dialects (config key `dialects`), for the tasks whose items are written in
# Standard American English (those with a DIALECT_TEXT): the task's own items become
# results/prepared/{task}@sae.parquet; one job per task writes each dialect's rewrite
# {task}@{dialect}.parquet (same item_ids) and {task}.parquet pairing them all (instead of rule
# prepare_task). One job for all dialects: imports, spaCy and WordNet load once, and a new dialect
# reruns the task's inference anyway (its items change). Another job counts the rules that fired
# (results/tables/{task}_rewrites.csv). Multi-VALUE runs offline; its NLTK data
# are built once under results/nltk_data unless NLTK_DATA already holds them.

from globalrep.dialect_rewrites import REWRITE_VERSION
from globalrep.nltk_corpora import find_nltk_data

DIALECTS = config["dialects"]
DIALECT_TASKS = [task for task in MODEL_TASKS if get_task(task).dialect_text]
NLTK_DATA = find_nltk_data() or "results/nltk_data"

_DIALECT_TASK = "|".join(map(re.escape, DIALECT_TASKS)) or "(?!)"


rule prepare_sae_items:
    input:
        source=prepare_source,
    output:
        "results/prepared/{task}@sae.parquet",
    log:
        "results/logs/prepare_task/{task}@sae.log",
    wildcard_constraints:
        task=_DIALECT_TASK,
    conda:
        "../../envs/inference.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        fingerprint=prepare_fingerprint,
    script:
        "../scripts/prepare_task.py"


rule build_nltk_data:
    output:
        directory("results/nltk_data"),
    log:
        "results/logs/build_nltk_data.log",
    conda:
        "../../envs/dialects.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/build_nltk_data.py"


rule rewrite_dialects:
    input:
        sae="results/prepared/{task}@sae.parquet",
        nltk_data=[NLTK_DATA] if DIALECTS else [],
    output:
        rewrites=expand("results/prepared/{{task}}@{dialect}.parquet", dialect=DIALECTS),
        prepared="results/prepared/{task}.parquet",
    log:
        "results/logs/rewrite_dialects/{task}.log",
    wildcard_constraints:
        task=_DIALECT_TASK,
    conda:
        "../../envs/dialects.yaml"
    resources:
        mem_mb=3000,
        runtime=120,
    params:
        dialects=DIALECTS,
        seed=config["dialect_seed"],
        fingerprint=fingerprint(DIALECTS, config["dialect_seed"], REWRITE_VERSION),
    script:
        "../scripts/rewrite_dialects.py"


# A dialect task's items are the paired SAE + dialect items, not the task's raw items.
ruleorder: rewrite_dialects > prepare_task


# How often each rule fired: a job of its own, so that a lost table is rebuilt from the rewrites
# without rewriting the items (which would rerun the task's inference).
rule summarize_rewrites:
    input:
        rewrites=expand("results/prepared/{{task}}@{dialect}.parquet", dialect=DIALECTS),
    output:
        report(
            "results/tables/{task}_rewrites.csv",
            caption="../report/rewrites.rst",
            category="Tables",
            subcategory="{task}",
        ),
    log:
        "results/logs/summarize_rewrites/{task}.log",
    wildcard_constraints:
        task=_DIALECT_TASK,
    conda:
        "../../envs/dialects.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        dialects=DIALECTS,
    script:
        "../scripts/summarize_rewrites.py"
