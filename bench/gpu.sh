#!/usr/bin/env bash
# A random 7B Llama-shaped model in bf16 through the hf backend (and vLLM where installed):
# log-likelihood and generation tokens/s, and config/paper.yaml's projected GPU-hours
# (bench/gpu.py says how). GPU_BENCH_SHAPE=tiny proves it on a CPU in seconds.
#
#   bench/gpu.sh                         # on a GPU machine
#   GPU_BENCH_SHAPE=tiny bench/gpu.sh    # anywhere
#   bench/gpu.sh --items 32 --no-vllm    # options of bench/gpu.py
set -euo pipefail
cd "$(dirname "$0")/.."
# vLLM pins torch and transformers, so it has its own virtualenv (.ci/run builds .venv-vllm); the
# hf backend runs there too. Without it: the active Python, hf alone.
python=python
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x .venv-vllm/bin/python ]; then
    python=.venv-vllm/bin/python
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" bench/gpu.py "$@"
