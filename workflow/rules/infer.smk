# One job per (task, model, shard): the engine answers one shard of a task's requests.
# params.fingerprint holds a hash of exactly what determines the answers, so that Snakemake's
# params trigger reruns only the jobs of a model whose config entry changed. Resources are per
# model (its threads/gpus/mem_mb/runtime, else those of its backend or of config['engine']); the
# conda environment is its backend's (globalrep.engine.backends.BackendInfo.environment).


rule infer:
    input:
        unpack(infer_inputs),
    output:
        "results/predictions/{task}/{model}/shard-{shard}-of-{nshards}.parquet",
    log:
        "results/logs/infer/{task}/{model}/shard-{shard}-of-{nshards}.log",
    conda:
        inference_environment
    threads: model_resource("threads")
    resources:
        mem_mb=model_resource("mem_mb"),
        runtime=model_resource("runtime"),
        gpu=model_resource("gpus"),
    params:
        fingerprint=infer_fingerprint,
    script:
        "../scripts/infer.py"
