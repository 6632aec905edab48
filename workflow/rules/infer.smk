# One job per (task, model, shard): the engine answers one shard of a task's requests.
# params.fingerprint holds a hash of exactly what determines the answers, so that Snakemake's
# params trigger reruns only the jobs of a model whose config entry changed.


rule infer:
    input:
        unpack(infer_inputs),
    output:
        "results/predictions/{task}/{model}/shard-{shard}-of-{nshards}.parquet",
    log:
        "results/logs/infer/{task}/{model}/shard-{shard}-of-{nshards}.log",
    conda:
        "../../envs/inference.yaml"
    threads: config["engine"]["threads"]
    resources:
        mem_mb=config["engine"]["mem_mb"],
        runtime=config["engine"]["runtime"],
        gpu=config["engine"]["gpus"],
    params:
        fingerprint=infer_fingerprint,
    script:
        "../scripts/infer.py"
