"""Snakemake adapter: how often each Multi-VALUE rule fired in a task's rewrites, per dialect
(globalrep.dialect_pairs.summarize_rewrites)."""

from globalrep.dialect_pairs import summarize_rewrites
from globalrep.logs import setup_logging

setup_logging(snakemake.log[0])
summarize_rewrites(dict(zip(snakemake.params.dialects, snakemake.input.rewrites)), snakemake.output[0])
