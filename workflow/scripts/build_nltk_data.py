"""Snakemake adapter: build Multi-VALUE's NLTK data folder (globalrep.dialects.build_nltk_data)."""

from globalrep.dialects import build_nltk_data
from globalrep.logs import setup_logging

setup_logging(snakemake.log[0])
build_nltk_data(snakemake.output[0])
