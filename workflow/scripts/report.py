"""Snakemake adapter: write the single-file HTML report (globalrep.pipeline.report)."""

from globalrep.pipeline import report, setup_logging

setup_logging(snakemake.log[0])
tasks = snakemake.params.tasks
inputs = snakemake.input
report(
    out_path=snakemake.output[0],
    tables={task: pair for task, pair in zip(tasks, zip(inputs.tables, inputs.deltas))},
    figure_dirs=dict(zip(tasks, inputs.figures)),
    config=snakemake.config,
)
