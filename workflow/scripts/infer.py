"""Snakemake adapter: answer one shard of a task with one model (globalrep.stages.infer_shard).

The model entry and engine options are read from the config, not from params, so that options
that do not change results (batch size, device) do not trigger reruns; params.fingerprint does.
"""

from globalrep.logs import setup_logging
from globalrep.models import ModelSpec
from globalrep.stages import infer_shard

# vLLM on CPU starts its engine in a spawned process, which re-runs this file as __mp_main__:
# only the job's own process runs the job.
if __name__ == "__main__":
    setup_logging(snakemake.log[0])
    wildcards, config = snakemake.wildcards, snakemake.config
    infer_shard(
        task_name=wildcards.task,
        task_options=config["tasks"][wildcards.task],
        model=ModelSpec.from_config(wildcards.model, config["models"][wildcards.model]),
        prepared_path=snakemake.input.prepared,
        n_shards=int(wildcards.nshards),
        shard=int(wildcards.shard),
        engine_options=config["engine"],
        out_path=snakemake.output[0],
        fingerprint=snakemake.params.fingerprint,
        threads=snakemake.threads,
    )
