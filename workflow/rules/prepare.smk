# Raw task source (hub dataset or local file) -> one tidy Parquet table of items.


rule prepare_task:
    input:
        source=prepare_source,
    output:
        "results/prepared/{task}.parquet",
    log:
        "results/logs/prepare_task/{task}.log",
    conda:
        "../../envs/inference.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        fingerprint=prepare_fingerprint,
    script:
        "../scripts/prepare_task.py"
