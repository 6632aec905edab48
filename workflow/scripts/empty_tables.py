"""Snakemake adapter: the empty tables of a task no model could answer (globalrep.pipeline.empty_tables)."""

from globalrep.pipeline import empty_tables, setup_logging

setup_logging(snakemake.log[0])
empty_tables(table_out=snakemake.output.table, deltas_out=snakemake.output.deltas)
