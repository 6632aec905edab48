"""Snakemake adapter: write findings.csv (globalrep.stages.findings)."""

from globalrep.logs import setup_logging
from globalrep.stages import findings

setup_logging(snakemake.log[0])
findings(
    tables=list(snakemake.input.tables),
    scores=snakemake.params.scores,
    task_options=snakemake.params.task_options,
    chains=snakemake.params.chains,
    out_path=snakemake.output[0],
    correction=snakemake.params.correction,
)
