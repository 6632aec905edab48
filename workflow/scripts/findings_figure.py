"""Snakemake adapter: draw the findings' overview figure (globalrep.stages.findings_figure)."""

from pathlib import Path

from globalrep.logs import setup_logging
from globalrep.stages import findings_figure

setup_logging(snakemake.log[0])
findings_figure(snakemake.input[0], Path(snakemake.output.png).with_suffix(""))
