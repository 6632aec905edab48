"""Snakemake adapter: build Multi-VALUE's NLTK data folder (globalrep.nltk_corpora.build_nltk_data)."""

from globalrep.logs import setup_logging
from globalrep.nltk_corpora import build_nltk_data

setup_logging(snakemake.log[0])
build_nltk_data(snakemake.output[0])
