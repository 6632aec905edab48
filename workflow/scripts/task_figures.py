"""Snakemake adapter: draw one task's figures (globalrep.stages.task_figures)."""

from globalrep.logs import setup_logging
from globalrep.stages import task_figures

setup_logging(snakemake.log[0])
task = snakemake.wildcards.task
task_figures(
    task_name=task,
    task_options=snakemake.config["tasks"][task],
    table_path=snakemake.input.table,
    deltas_path=snakemake.input.deltas,
    chains=snakemake.params.chains,
    models_stage=snakemake.params.models_stage,
    out_dir=snakemake.output[0],
    unavailable=snakemake.params.unavailable,
    extra_tables=snakemake.input.extra_tables,
)
