"""Snakemake adapter: rewrite a task's SAE items into every dialect, then pair them
(globalrep.dialect_rewrites.rewrite_task_items, globalrep.dialect_pairs.combine_task_items)."""

from globalrep.dialect_pairs import combine_task_items
from globalrep.dialect_rewrites import rewrite_task_items
from globalrep.logs import setup_logging

setup_logging(snakemake.log[0])
dialects, rewrites = snakemake.params.dialects, list(snakemake.output.rewrites)
rewrite_task_items(
    task_name=snakemake.wildcards.task,
    dialects=dialects,
    seed=snakemake.params.seed,
    sae_path=snakemake.input.sae,
    nltk_data=snakemake.input.nltk_data[0] if dialects else None,
    out_paths=rewrites,
)
combine_task_items(
    sae_path=snakemake.input.sae,
    rewrite_paths=dict(zip(dialects, rewrites)),
    items_out=snakemake.output.prepared,
)
