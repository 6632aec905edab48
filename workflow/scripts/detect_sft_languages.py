"""Snakemake adapter: detect the language of every message in one shard of one SFT dataset
(task sft_langid's own stage: globalrep.tasks.sft_langid.detect_shard)."""

from globalrep.logs import setup_logging
from globalrep.tasks import get_task

setup_logging(snakemake.log[0])
wildcards = snakemake.wildcards
get_task("sft_langid").own_stage.run_shard(
    wildcards.dataset,
    snakemake.config["tasks"]["sft_langid"],
    n_shards=int(wildcards.nshards),
    shard=int(wildcards.shard),
    out_path=snakemake.output[0],
)
