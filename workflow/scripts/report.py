"""Snakemake adapter: write the single-file HTML report (globalrep.pipeline.report)."""

from globalrep import missing_answers
from globalrep.pipeline import report, setup_logging

setup_logging(snakemake.log[0])
tasks = snakemake.params.tasks
inputs = snakemake.input
report(
    out_path=snakemake.output[0],
    tables=dict(zip(tasks, zip(inputs.tables, inputs.deltas))),
    figure_dirs=dict(zip(tasks, inputs.figures)),
    extra_tables=list(inputs.extra_tables),
    task_models=snakemake.params.task_models,
    notes=missing_answers.with_notes(snakemake.params.notes, snakemake.params.predictions),
    config=snakemake.config,
)
