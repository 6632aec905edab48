"""Snakemake adapter: the empty tables of a task no model could answer (globalrep.stages.empty_tables)."""

from globalrep.logs import setup_logging
from globalrep.stages import empty_tables

setup_logging(snakemake.log[0])
empty_tables(table_out=snakemake.output.table, deltas_out=snakemake.output.deltas)
