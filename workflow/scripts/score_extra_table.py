"""Snakemake adapter: write one of a task's extra tables (globalrep.stages.extra_table)."""

from globalrep.logs import setup_logging
from globalrep.stages import extra_table

setup_logging(snakemake.log[0])
wildcards = snakemake.wildcards
extra_table(
    task_name=wildcards.task,
    task_options=snakemake.config["tasks"][wildcards.task],
    scores_path=snakemake.input.scores,
    chains=snakemake.params.chains,
    correction=snakemake.params.correction,
    table_name=wildcards.table,
    out_path=snakemake.output[0],
)
