"""Snakemake adapter: build the demo's local models (globalrep.stages.build_demo)."""

from pathlib import Path

from globalrep.logs import setup_logging
from globalrep.stages import build_demo

setup_logging(snakemake.log[0])
# Outputs are {out_dir}/{model}/config.json.
build_demo(Path(snakemake.output[0]).parent.parent, list(snakemake.input))
