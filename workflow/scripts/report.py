"""Snakemake adapter: write the single-file HTML report (globalrep.stages.report)."""

from globalrep import missing_answers
from globalrep.logs import setup_logging
from globalrep.stages import report

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
    findings_path=inputs.findings,
    findings_figure_path=inputs.findings_figure,
    missing={task: missing_answers.count(files) for task, files in snakemake.params.predictions.items()},
)
