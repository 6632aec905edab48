"""Snakemake adapter: prepare one task's items (globalrep.stages.prepare_task)."""

from globalrep.logs import setup_logging
from globalrep.stages import prepare_task

setup_logging(snakemake.log[0])
task = snakemake.wildcards.task
prepare_task(task, snakemake.config["tasks"][task], snakemake.output[0])
