"""Snakemake adapter: prepare one task's items (globalrep.pipeline.prepare_task)."""

from globalrep.pipeline import prepare_task, setup_logging

setup_logging(snakemake.log[0])
task = snakemake.wildcards.task
prepare_task(task, snakemake.config["tasks"][task], snakemake.output[0])
