"""Snakemake adapter: the sft_langid tables from all detection shards
(globalrep.tasks.sft_langid.write_tables)."""

from globalrep.logs import setup_logging
from globalrep.tasks import sft_langid

setup_logging(snakemake.log[0])
sft_langid.write_tables(
    shards=snakemake.params.shards,
    scores_out=snakemake.output.scores,
    table_out=snakemake.output.table,
    deltas_out=snakemake.output.deltas,
)
