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
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        predictions=lambda wildcards: prediction_files(wildcards.task),
        chains=lambda wildcards: chains_for(wildcards.task),
        fingerprint=score_fingerprint,
    script:
        "../scripts/score_task.py"
