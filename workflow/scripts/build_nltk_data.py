"""Snakemake adapter: build Multi-VALUE's NLTK data folder (globalrep.nltk_corpora.build_nltk_data)."""

from globalrep.nltk_corpora import build_nltk_data
from globalrep.pipeline import setup_logging

setup_logging(snakemake.log[0])
build_nltk_data(snakemake.output[0])
