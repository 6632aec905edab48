"""GPU readiness: a random 7B Llama-shaped model in bf16 through the engine, and the paper's cost.

Run through ``bench/gpu.sh`` (it picks vLLM's virtualenv where there is one). Weights do not
change speed, so the model is built from its config with random weights, nothing downloaded:
Llama-2-7B's shape (``--shape 7b``: hidden 4096, 32 layers, 32 heads, MLP 11008, vocab 32000),
or a tiny one (``--shape tiny``) that proves the script end to end on a CPU. The tokenizer is
the demo's (trained locally, Zephyr-style chat template); the model's vocabulary stays 32000.

1. Log-likelihoods: Belebele-shaped requests (the task's prompt on data/demo's questions,
   repeated to ``--items``) through the ``hf`` backend's ``ModelRunner``; tokens/s counts the
   requests' unique tokens (each context once, then its continuations).
2. Generation: TyDiQA-GoldP requests as the paper asked them (1 shot drawn per question, 50 new
   tokens; a random model seldom stops early, so this is the slow case), through the same runner.
3. The same two through the ``vllm`` backend where vLLM is installed (``load_format: dummy``:
   random weights, no checkpoint written).
4. The projected GPU-hours of config/paper.yaml: for every task that runs models, its tokens per
   item (its requests on data/demo's items, the paper's options, this tokenizer) times the paper's
   item counts (``PAPER_ITEMS``), divided by the measured tokens/s of the request kind (rewards at
   the log-likelihood rate), times the models that answer it.

    bench/gpu.sh                      # on a GPU: 7B in bf16 (~14 GB of GPU memory)
    GPU_BENCH_SHAPE=tiny bench/gpu.sh # anywhere: the tiny shape, seconds
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

import importlib.util

import pandas as pd
import torch
import yaml

from globalrep.demo import demo_corpus, train_tokenizer
from globalrep.engine.hf import HFBackend
from globalrep.engine.requests import GenerateRequest, LoglikRequest, RewardRequest
from globalrep.engine.runner import ModelRunner
from globalrep.engine.vllm import VLLMBackend
from globalrep.models import ModelSpec
from globalrep.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
SHAPES = {
    "7b": {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32},
    # head_dim 64: vLLM's CPU attention takes no smaller heads
    "tiny": {"hidden_size": 128, "intermediate_size": 344, "num_hidden_layers": 2, "num_attention_heads": 2},
}
# Items per task in the paper's runs (config/paper.yaml's comments and docs/tasks.md): MD3's 894
# cleaned games; the transfer task's 427 US games as written and in 2 dialects; Belebele's 122
# variants x 900 questions; TyDiQA's 5,077 dev questions; GlobalOpinionQA's 2,556; AskReddit's
# 554 questions; the reward probe's 554 questions as written and in 2 dialects. where_from's
# prompts do not depend on a source: its demo count is the paper's.
PAPER_ITEMS = {"md3_taboo": 894, "md3_taboo_transfer": 427 * 3, "belebele": 122 * 900, "tydiqa_goldp": 5077,
               "global_opinions": 2556, "askreddit": 554, "rm_dialect_probe": 554 * 3, "where_from": None}  # fmt: skip
# Tasks whose demo items need an extra (Multi-VALUE's rewrites): measured on the task they rewrite.
STAND_IN = {"md3_taboo_transfer": "md3_taboo"}


def build_model(shape: str, device: torch.device, dtype: torch.dtype, folder: Path, tokenizer):
    """A random Llama of ``shape``, on ``device``; its config and the tokenizer saved in ``folder``
    (what vLLM's dummy loader reads)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**SHAPES[shape], vocab_size=32000, max_position_embeddings=4096,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, dtype=str(dtype).removeprefix("torch."))  # fmt: skip
    config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=dtype)
    return model.eval()


def demo_requests(task_name: str, overrides: dict | None = None, model_kind: str = "lm") -> tuple[list, int]:
    """A task's requests for ``model_kind`` on its demo items (config.yaml's options, then
    ``overrides``), and the number of items."""
    options = {**yaml.safe_load((REPO / "config.yaml").read_text())["tasks"][task_name], **(overrides or {})}
    options = {key: str(REPO / value) if isinstance(value, str) and value.startswith("data/") else value
               for key, value in options.items()}  # fmt: skip
    task = get_task(task_name)
    source = task.resolve_source(options) if task.resolve_source else options.get("source")
    items = task.prepare(options, source)
    return task.requests(items, options, model_kind), len(items)


def repeated(requests: list, n: int) -> list:
    out = []
    while len(out) < n:
        out += [replace(r, item_id=f"{r.item_id}#{len(out) + i}") for i, r in enumerate(requests)]
    return out[:n]


def request_tokens(runner: ModelRunner, requests: list) -> dict[str, int]:
    """Per kind, the tokens a backend works through: log-likelihood contexts once plus their
    continuations; generation prompts plus ``max_new_tokens``; reward conversations."""
    loglik = [r for r in requests if isinstance(r, LoglikRequest)]
    generate = [r for r in requests if isinstance(r, GenerateRequest)]
    reward = [r for r in requests if isinstance(r, RewardRequest)]
    counts = {"loglik": 0, "generate": 0, "reward": 0}
    if loglik:
        _, tokenized = runner.tokenize_loglik(loglik)
        counts["loglik"] = sum(len(t.context) + sum(len(c.tokens) for c in t.continuations) for t in tokenized)
    if generate:
        counts["generate"] = sum(map(len, runner.generation_prompts(generate))) + sum(
            r.max_new_tokens for r in generate
        )
    if reward:
        tokenizer = runner.model.tokenizer
        from globalrep.engine.prompts import render

        counts["reward"] = sum(len(runner._encode(render(c, tokenizer, True))) for r in reward for c in r.conversations)
    return counts


def timed_rate(runner: ModelRunner, requests: list, kind: str) -> float:
    """Tokens of ``kind`` per second for answering ``requests`` (after a warm-up on two)."""
    runner.answer(requests[:2])
    start = time.perf_counter()
    runner.answer(requests)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return request_tokens(runner, requests)[kind] / (time.perf_counter() - start)


def projection(runner: ModelRunner, rates: dict[str, float]) -> pd.DataFrame:
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    models = paper["models"].values()
    n_models_of = {kind: sum(m.get("kind", "lm") == kind for m in models) for kind in ("lm", "reward")}
    rows = []
    for task_name, options in paper["tasks"].items():
        task = get_task(task_name)
        measured = STAND_IN.get(task_name, task_name)
        paper_options = {k: v for k, v in (options or {}).items()
                         if k in ("num_shots", "shot_sampling", "max_new_tokens", "articles")}  # fmt: skip
        for kind in task.model_kinds:  # a task that runs no models has none
            requests, n_demo = demo_requests(measured, paper_options, kind)
            tokens = request_tokens(runner, requests)
            scale = (PAPER_ITEMS[task_name] or n_demo) / n_demo
            hours = sum(tokens[k] * scale / rates[k] for k in tokens) / 3600
            n_models = n_models_of[kind]
            rows.append({"task": task_name, "model kind": kind, "items": round(n_demo * scale), "models": n_models,
                         **{f"{k} tokens": round(tokens[k] * scale) for k in tokens},
                         "hours per model": hours, "GPU-hours": hours * n_models})  # fmt: skip
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    cells = [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "|".join("---" for _ in table.columns) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=SHAPES, default=os.environ.get("GPU_BENCH_SHAPE", "7b"))
    parser.add_argument("--items", type=int, default=int(os.environ.get("GPU_BENCH_ITEMS", 64)),
                        help="requests per measurement (default 64)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-vllm", action="store_true", help="skip vLLM even where it is installed")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    started = time.perf_counter()
    tokenizer = train_tokenizer(demo_corpus(), vocab_size=4096)
    loglik_requests = repeated(demo_requests("belebele")[0], args.items)
    generate_requests = repeated(
        demo_requests("tydiqa_goldp", {"shot_sampling": "per_question", "max_new_tokens": 50})[0], args.items
    )
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        model = build_model(args.shape, device, torch.bfloat16, folder, tokenizer)
        spec = ModelSpec(name=f"llama-{args.shape}", path=str(folder), chat_template=True, dtype="bfloat16",
                         batch_size=args.batch_size)  # fmt: skip
        n_params = sum(p.numel() for p in model.parameters())
        name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
        print(f"# {args.shape} Llama, {n_params / 1e9:.2f}B parameters, bf16, on {name} ({torch.get_num_threads()} "
              f"CPU threads); batch size {args.batch_size}; torch {torch.__version__}; {args.items} requests each")  # fmt: skip
        rates = {}
        hf = ModelRunner(spec, HFBackend.loaded(spec, model, tokenizer, {"device": str(device)}))
        rates["loglik"] = rates["reward"] = timed_rate(hf, loglik_requests, "loglik")
        rates["generate"] = timed_rate(hf, generate_requests, "generate")
        print(f"hf:   log-likelihood {rates['loglik']:9.0f} tokens/s, generation {rates['generate']:9.0f} tokens/s "
              "(prompt and new tokens)")  # fmt: skip
        table = projection(hf, rates)
        del hf, model
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if not args.no_vllm and importlib.util.find_spec("vllm") is not None:
            options = {"load_format": "dummy", "max_model_len": 4096, "enforce_eager": device.type == "cpu"}
            vllm_spec = replace(spec, backend="vllm", options=options)
            backend = VLLMBackend(vllm_spec, {})
            runner = ModelRunner(vllm_spec, backend)
            vllm_loglik = timed_rate(runner, loglik_requests, "loglik")
            vllm_generate = timed_rate(runner, generate_requests, "generate")
            print(f"vllm: log-likelihood {vllm_loglik:9.0f} tokens/s, generation {vllm_generate:9.0f} tokens/s")
            backend.close()
        else:
            print("vllm: not installed here (or --no-vllm): skipped")
        print(
            "\n## config/paper.yaml projected from the hf rates above (the demo's tokens per item x the paper's items)\n"
        )
        print(markdown(table))
        print(f"\nprojected total: {table['GPU-hours'].sum():.1f} GPU-hours ({args.shape} shape, hf backend)")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
