"""Snakemake adapter: detect the language of every message in one shard of one SFT dataset
(globalrep.tasks.sft_langid.detect_shard)."""

from globalrep.logs import setup_logging
from globalrep.tasks import sft_langid

setup_logging(snakemake.log[0])
wildcards = snakemake.wildcards
sft_langid.detect_shard(
    name=wildcards.dataset,
    options=snakemake.config["tasks"][sft_langid.NAME],
    n_shards=int(wildcards.nshards),
    shard=int(wildcards.shard),
    out_path=snakemake.output[0],
)
