"""Snakemake adapter: score a task and write its tables (globalrep.stages.score_task)."""

from globalrep.logs import setup_logging
from globalrep.stages import score_task

setup_logging(snakemake.log[0])
task = snakemake.wildcards.task
score_task(
    task_name=task,
    task_options=snakemake.config["tasks"][task],
    prepared_path=snakemake.input.prepared,
    predictions=snakemake.params.predictions,
    fingerprints=snakemake.params.inference,
    chains=snakemake.params.chains,
    correction=snakemake.params.correction,
    scores_out=snakemake.output.scores,
    table_out=snakemake.output.table,
    deltas_out=snakemake.output.deltas,
)
