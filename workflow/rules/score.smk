# Predictions of every model -> per-item scores and the two standard tables of a task.


rule score_task:
    input:
        unpack(score_inputs),
    output:
        scores="results/scores/{task}.parquet",
        table=report(
            "results/tables/{task}.csv",
            caption="../report/table.rst",
            category="Tables",
            subcategory="{task}",
        ),
        deltas=report(
            "results/tables/{task}_deltas.csv",
            caption="../report/deltas.rst",
            category="Tables",
            subcategory="{task}",
        ),
    log:
        "results/logs/score_task/{task}.log",
    wildcard_constraints:
        task="|".join(map(re.escape, SCORED_TASKS)) or "(?!)",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        predictions=lambda wildcards: prediction_files(wildcards.task),
        inference=lambda wildcards: inference_fingerprints(wildcards.task),
        chains=lambda wildcards: chains_for(wildcards.task),
        correction=config["stats"]["correction"],
        fingerprint=score_fingerprint,
    script:
        "../scripts/score_task.py"


# A task's extra tables (its EXTRA_TABLES), e.g. md3_taboo's dialect gaps, from its scores.
rule score_extra_table:
    input:
        scores="results/scores/{task}.parquet",
    output:
        report(
            "results/tables/{task}_{table}.csv",
            caption="../report/extra_table.rst",
            category="Tables",
            subcategory="{task}",
        ),
    log:
        "results/logs/score_extra_table/{task}_{table}.log",
    wildcard_constraints:
        table="|".join(sorted({name for task in TASKS for name in stages.extra_table_names(task)})) or "(?!)",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        chains=lambda wildcards: chains_for(wildcards.task),
        correction=config["stats"]["correction"],
        fingerprint=score_fingerprint,
    script:
        "../scripts/score_extra_table.py"


# A task that no model can answer (e.g. no published outputs): empty tables; its figure says why.
rule write_empty_tables:
    output:
        table="results/tables/{task}.csv",
        deltas="results/tables/{task}_deltas.csv",
    log:
        "results/logs/write_empty_tables/{task}.log",
    wildcard_constraints:
        task="|".join(map(re.escape, UNAVAILABLE_TASKS)) or "(?!)",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/empty_tables.py"
