"""Snakemake adapter: the sft_langid tables from all detection shards
(task sft_langid's own stage: globalrep.tasks.sft_langid.write_tables)."""

from globalrep.logs import setup_logging
from globalrep.tasks import get_task

setup_logging(snakemake.log[0])
get_task("sft_langid").own_stage.write_tables(
    shards=snakemake.params.shards,
    scores_out=snakemake.output.scores,
    table_out=snakemake.output.table,
    deltas_out=snakemake.output.deltas,
)
