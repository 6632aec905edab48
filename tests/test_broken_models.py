"""A broken model is never scored as a model: its non-finite answers are missing, never chosen;
every sequence fits the window before it reaches a model; memory knobs are bounded by the job's
memory; and what a model or its files refuse ends in one named line."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TOP_LEVEL_SCHEMA, broken_copy
from workflow_runs import edit_config, output_of, snakemake

from globalrep import config_checks, missing_answers, stages
from globalrep.choices import MISSING, best_choice
from globalrep.engine import Chat, GenerateRequest, LoglikRequest, RewardRequest, answer
from globalrep.engine.hf import HFBackend
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec
from globalrep.tasks import belebele

SRC = Path(__file__).resolve().parents[1] / "src"
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
CPU = {"device": "cpu"}
LM_REQUESTS = [
    LoglikRequest("q1", "choice", "The capital of France is", (" Paris", " Rome")),
    GenerateRequest("q2", "gen", "Where are you from?", max_new_tokens=5),
]
CONVERSATION = Chat((("user", "Where are you from?"), ("assistant", "I am from Nigeria.")))


def lm(name: str, path: Path, **fields) -> ModelSpec:
    return ModelSpec(name=name, path=str(path), dtype="float32", **fields)


def rm(name: str, path: Path) -> ModelSpec:
    return ModelSpec(name=name, path=str(path), kind="reward", dtype="float32", chat_template=True)


def job_mem_mb() -> int:
    """The memory an inference job asks for where the config sets none (engine.mem_mb's default)."""
    schema = yaml.safe_load(TOP_LEVEL_SCHEMA.read_text())
    return schema["properties"]["engine"]["properties"]["mem_mb"]["default"]


# --------------------------------------------------------------------- non-finite is missing


def test_non_finite_log_likelihoods_generations_and_rewards_are_missing_answers_with_a_reason(
    tiny_lm_dir, nan_lm_dir, tiny_rm_dir, nan_rm_dir, caplog
):
    with caplog.at_level(logging.WARNING):
        broken = answer(lm("broken", nan_lm_dir), LM_REQUESTS, CPU).set_index("item_id")
    assert broken["missing_answer"].tolist() == [True, True]
    assert broken.loc["q1", "missing_reason"] == "non-finite log-likelihood (NaN or inf)"
    assert broken.loc["q2", "missing_reason"] == "non-finite generation scores (NaN or inf)"
    assert broken.loc["q2", "gen_text"] == ""  # not the tokens an argmax over NaN picks
    assert "broken: 2 of 2 items have a missing answer" in caplog.text

    healthy = answer(lm("healthy", tiny_lm_dir), LM_REQUESTS, CPU)
    assert not healthy["missing_answer"].any() and healthy["missing_reason"].isna().all()
    assert np.isfinite(healthy.loc[0, "choice_logprob"]).all() and healthy.loc[1, "gen_text"]

    requests = [RewardRequest("r", "reply", (CONVERSATION,))]
    assert answer(rm("rm-nan", nan_rm_dir), requests, CPU).loc[0, "missing_reason"] == "non-finite reward (NaN or inf)"
    assert not answer(rm("rm", tiny_rm_dir), requests, CPU).loc[0, "missing_answer"]


def test_an_infinite_weight_is_as_missing_as_a_nan(tiny_lm_dir, tmp_path):
    overflowed = broken_copy(tiny_lm_dir, tmp_path / "inf", float("inf"))
    frame = answer(lm("inf", overflowed), LM_REQUESTS[:1], CPU)
    assert frame.loc[0, "missing_answer"] and "non-finite log-likelihood" in frame.loc[0, "missing_reason"]


def test_best_choice_never_chooses_a_non_finite_score_except_under_the_papers_rule():
    nan, inf = float("nan"), float("inf")
    logprobs = [[-1.0, -2.0], [nan, -3.0], [-inf, -1.0], [-2.0, nan]]
    ones = np.ones((4, 2))
    assert best_choice(logprobs, ones).tolist() == [0, MISSING, MISSING, MISSING]
    # The paper's argmax took a NaN as the maximum (rows of backend: published).
    published = np.array([False, True, True, True])
    assert best_choice(logprobs, ones, paper_rule=published).tolist() == [0, 0, 1, 1]
    assert best_choice([nan, -1.0], [1, 1], order=[1, 0]) == MISSING
    assert best_choice([nan, -1.0], [1, 1], order=[1, 0], paper_rule=True) == 0


def belebele_items() -> pd.DataFrame:
    return pd.DataFrame(
        {"item_id": ["a", "b", "c"], "group": ["eng_Latn", "eng_Latn", "deu_Latn"],
         "group_name": ["English", "English", "German"], "answer": [0, 0, 0]}
    )  # fmt: skip


def test_belebele_scores_a_missing_answer_as_not_correct_and_published_rows_by_the_papers_rule():
    nan = float("nan")
    predictions = pd.DataFrame(
        {
            "model": ["ours", "ours", "ours", "paper", "paper", "paper"],
            "item_id": ["a", "b", "c"] * 2,
            "choice_logprob": [[nan] * 4, [-1.0, -2.0, -3.0, -4.0], [nan, -1.0, -2.0, -3.0]] * 2,
            "choice_ntokens": [[1] * 4] * 6,
            "published": [None] * 3 + [True] * 3,
        }
    )
    scores = belebele.score(belebele_items(), predictions, {}).set_index(["model", "item_id"])
    # Ours: a NaN is no answer (not the 25% that "always A" would get); the paper's argmax chose A.
    assert scores.loc["ours", "value"].tolist() == [0.0, 100.0, 0.0]
    assert scores.loc["ours", "predicted"].tolist() == ["", "A", ""]
    assert scores.loc["paper", "value"].tolist() == [100.0, 100.0, 100.0]


def test_missing_answers_are_counted_per_model_and_group_and_warned(caplog):
    predictions = pd.DataFrame(
        {
            "model": ["m"] * 3 + ["n"] * 3,
            "item_id": ["a", "b", "c"] * 2,
            "missing_answer": [True, False, True, False, False, False],
            "missing_reason": [
                "non-finite reward (NaN or inf)",
                None,
                "no value in the published file x",
                None,
                None,
                None,
            ],
        }
    )
    counts = missing_answers.count_by_group(predictions, belebele_items())
    assert counts[["model", "group", "missing", "total"]].values.tolist() == [
        ["m", "eng_Latn", 1, 2], ["m", "deu_Latn", 1, 1], ["n", "eng_Latn", 0, 2], ["n", "deu_Latn", 0, 1],
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        missing_answers.check_scorable("belebele", predictions, belebele_items())
    assert "belebele / m: 1 of 2 answers in group eng_Latn are missing (non-finite reward (NaN or inf))" in caplog.text
    assert (
        "belebele / m: 1 of 1 answers in group deu_Latn are missing (no value in the published file x)" in caplog.text
    )
    assert "/ n:" not in caplog.text
    everything_missing = predictions.assign(missing_answer=True)
    with pytest.raises(
        GlobalrepError,
        match=r"^task belebele: refused, no tables written: model 'm': all 3 answers missing \(no value in the published file x; non-finite reward \(NaN or inf\)\); model 'n': all 3 answers missing \(flagged missing\)",
    ):
        missing_answers.check_scorable("belebele", everything_missing, belebele_items())
    # The paper's published rows are scored by its rules, however many it lacks.
    missing_answers.check_scorable("belebele", everything_missing.assign(published=True), belebele_items())


@pytest.mark.parametrize(
    ("task", "options"),
    [
        ("belebele", {"source": str(Path(__file__).parent / "data" / "belebele")}),
        ("global_opinions", {"source": str(DEMO / "global_opinions.csv")}),
    ],
)
def test_a_model_with_nan_weights_is_refused_by_name_not_scored(task, options, tiny_lm_dir, nan_lm_dir, tmp_path):
    """Belebele must not report 25% for it (every item "choosing" A), GlobalOpinionQA must not
    drop it silently: the score job names the model and writes no table."""
    prepared = tmp_path / "prepared.parquet"
    stages.prepare_task(task, options, prepared)
    shards = {}
    for spec in (lm("healthy", tiny_lm_dir), lm("broken", nan_lm_dir)):
        shards[spec.name] = [tmp_path / f"{spec.name}.parquet"]
        stages.infer_shard(task, options, spec, prepared, 1, 0, CPU, shards[spec.name][0])
    n_items = len(pd.read_parquet(prepared))
    assert missing_answers.count(shards) == {"broken": (n_items, n_items)}
    outs = [tmp_path / name for name in ("scores.parquet", "table.csv", "deltas.csv")]
    with pytest.raises(GlobalrepError) as refused:
        stages.score_task(task, options, prepared, shards, {"c": ["healthy", "broken"]}, *outs)
    assert str(refused.value).startswith(
        f"task {task}: refused, no tables written: model 'broken': all {n_items} answers missing "
        "(non-finite log-likelihood (NaN or inf))"
    )
    assert not any(out.exists() for out in outs)
    del shards["broken"]  # without it, the task scores
    stages.score_task(task, options, prepared, shards, {}, *outs)
    assert set(pd.read_parquet(outs[0])["model"]) == {"healthy"}


# ------------------------------------------------------------------ every sequence fits its window

# The job's memory is its address space here (Slurm caps it so); eager attention holds every
# head's scores, so a sequence past the window would need gigabytes (seen: 4 GB for one reward
# conversation of 200,000 characters on the tiny model) and fail at once.
WINDOW_SCRIPT = """
import json, logging, resource, sys
kind, path, mem_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_AS, (mem_mb * 10**6, resource.RLIM_INFINITY))
from globalrep.engine import Chat, GenerateRequest, LoglikRequest, RewardRequest, answer
from globalrep.models import ModelSpec

logging.basicConfig(level=logging.WARNING)
passage = ("Many people in the world speak more than one language at home. " * 4000)[:200_000]
spec = ModelSpec(name="tiny", path=path, dtype="float32", kind="reward" if kind == "reward" else "lm",
                 chat_template=kind == "reward", options={"attn_implementation": "eager"})
request = {
    "loglik": LoglikRequest("i", "choice", passage + " Answer:", (" yes", " no")),
    "generate": GenerateRequest("i", "gen", passage + " Question: where? Answer:", 4, truncatable=passage),
    "reward": RewardRequest("i", "reply", (Chat((("user", passage), ("assistant", "I am from Nigeria."))),)),
}[kind]
frame = answer(spec, [request], {"device": "cpu"})
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "missing": bool(frame.loc[0, "missing_answer"])}))
"""


@pytest.mark.parametrize("kind", ["loglik", "generate", "reward"])
def test_a_200k_character_item_is_cut_to_the_window_and_stays_within_the_jobs_memory(kind, tiny_lm_dir, tiny_rm_dir):
    path = tiny_rm_dir if kind == "reward" else tiny_lm_dir
    done = subprocess.run(
        [sys.executable, "-c", WINDOW_SCRIPT, kind, str(path), str(job_mem_mb())],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["peak_mb"] < job_mem_mb(), result
    assert not result["missing"]
    assert "exceeded the model's window (2048 tokens)" in done.stderr and "1 of 1" in done.stderr


def test_reward_conversations_keep_bos_and_the_reply_when_cut(tiny_rm_dir):
    from globalrep.engine.runner import ModelRunner

    backend = HFBackend(rm("rm", tiny_rm_dir), CPU)
    runner = ModelRunner(rm("rm", tiny_rm_dir), backend)
    long_user_turn = Chat((("user", "word " * 5000), ("assistant", "I am from Nigeria.")))
    [(_, _, ids)] = runner.reward_sequences([RewardRequest("r", "k", (long_user_turn,))])
    tokenizer = backend.tokenizer
    assert len(ids) == backend.window == 2048 and ids[0] == tokenizer.bos_token_id
    assert "I am from Nigeria." in tokenizer.decode(ids[-30:])


# ------------------------------------------------------------------ memory knobs from memory

ENGINE = {"threads": 1, "gpus": 0, "mem_mb": 4000, "runtime": 60}
MODELS = {
    "demo-base": {"path": "m", "batch_size": 16, "dtype": "float32"},
    "published": {"path": "p", "backend": "published"},
}


def test_max_packed_tokens_is_bounded_by_the_jobs_memory():
    config_checks.check_memory_knobs(MODELS, ENGINE)  # the default 2048: 16 masks of 16 MiB
    config_checks.check_memory_knobs(
        MODELS, {**ENGINE, "max_packed_tokens": 7027}
    )  # rows up to 7027 + 7027 // 8 = 7905
    with pytest.raises(GlobalrepError):
        config_checks.check_memory_knobs(MODELS, {**ENGINE, "max_packed_tokens": 7028})
    with pytest.raises(GlobalrepError) as refused:
        config_checks.check_memory_knobs(MODELS, {**ENGINE, "max_packed_tokens": 1_000_000_000})
    message = str(refused.value)
    assert message.startswith("config key 'engine.max_packed_tokens' (1000000000) is too large")
    assert "model 'demo-base': 16 rows (batch_size)" in message and "fit max_packed_tokens up to 7027" in message
    assert "published" not in message  # it runs no model
    # A model's own mem_mb and dtype count: bfloat16 halves the masks.
    roomy = {"demo-base": {**MODELS["demo-base"], "mem_mb": 64_000_000}}
    config_checks.check_memory_knobs(roomy, {**ENGINE, "max_packed_tokens": 500_000})
    half = {"demo-base": {**MODELS["demo-base"], "dtype": "bfloat16"}}
    config_checks.check_memory_knobs(half, {**ENGINE, "max_packed_tokens": 9_938})
    with pytest.raises(GlobalrepError):
        config_checks.check_memory_knobs(half, {**ENGINE, "max_packed_tokens": 9_939})


def test_a_max_packed_tokens_past_memory_stops_the_run_before_any_job(workdir):
    edit_config(workdir, lambda config: config.setdefault("engine", {}).update(max_packed_tokens=1_000_000_000))
    result = snakemake(workdir, "--cores", "1")
    out = output_of(result)
    assert result.returncode != 0 and "Traceback" not in out
    assert "config key 'engine.max_packed_tokens' (1000000000) is too large" in out and "model 'demo-base'" in out
    assert not (workdir / "results").exists(), "a job ran before the check"


def test_an_allocation_failure_names_the_knob_to_lower(tiny_lm_dir, monkeypatch):
    def cannot_allocate(self, requests):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: not enough memory: you tried to "
            "allocate 6710886400 bytes."
        )

    monkeypatch.setattr(HFBackend, "loglik", cannot_allocate)
    with pytest.raises(GlobalrepError) as refused:
        answer(lm("tiny", tiny_lm_dir), LM_REQUESTS[:1], CPU)
    message = str(refused.value)
    assert message.startswith("model 'tiny': out of memory answering loglik requests (RuntimeError: ")
    assert "lower engine.max_packed_tokens" in message and "models.tiny.batch_size" in message


# ------------------------------------------------------------------ refusals are one line


def job(code: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, str]:
    """``code`` run as a workflow job runs (its log set up by globalrep.logs), with a stdin that
    is open and never answers: a prompt would wait on it."""
    log = tmp_path / "job.log"
    script = f"from globalrep.logs import setup_logging\nsetup_logging({str(log)!r})\n{code}\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        timeout=300,
        cwd=tmp_path,
    )
    return done, log.read_text()


def test_custom_code_without_opt_in_is_refused_in_one_line_without_a_prompt(tiny_lm_dir, tmp_path):
    custom = tmp_path / "custom"
    shutil.copytree(tiny_lm_dir, custom)
    config = json.loads((custom / "config.json").read_text())
    config.update(model_type="custom-llama", auto_map={"AutoConfig": "configuration_custom.CustomConfig",
                                                       "AutoModelForCausalLM": "modeling_custom.CustomModel"})  # fmt: skip
    (custom / "config.json").write_text(json.dumps(config))
    payload = "import pathlib\npathlib.Path('PAYLOAD_RAN').touch()\n"
    (custom / "configuration_custom.py").write_text(payload)
    (custom / "modeling_custom.py").write_text(payload)
    code = (
        "from globalrep.engine import LoglikRequest, answer\nfrom globalrep.models import ModelSpec\n"
        f"answer(ModelSpec(name='custom', path={str(custom)!r}), [LoglikRequest('q', 'c', 'x', (' y',))], "
        "{'device': 'cpu'})"
    )
    done, log = job(code, tmp_path)
    assert done.returncode == 1
    assert "[y/N]" not in done.stdout + done.stderr and "Traceback" not in done.stderr + log
    assert f"model 'custom': {custom} contains custom code (auto_map); it was not run" in done.stderr
    assert "models.custom.options.trust_remote_code: true" in log
    assert not (tmp_path / "PAYLOAD_RAN").exists()


def test_a_pickled_value_head_is_refused_naming_the_file(tiny_value_head_rm, tmp_path):
    import torch

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(tmp_path / "PAYLOAD_RAN"),))

    base_dir, _ = tiny_value_head_rm
    pickled = tmp_path / "value_head.pt"
    torch.save({"v_head.weight": torch.zeros(1, 8), "extra": Payload()}, pickled)
    spec = ModelSpec(name="starling", path=str(pickled), kind="reward", head="value-head", base_model=str(base_dir))
    with pytest.raises(GlobalrepError) as refused:
        answer(spec, [RewardRequest("r", "k", (CONVERSATION,))], CPU)
    assert str(refused.value).startswith(
        f"model 'starling': {pickled} holds a pickle that is more than tensors, refused by torch's weights-only loader"
    )
    assert "\n" not in str(refused.value) and not (tmp_path / "PAYLOAD_RAN").exists()


def test_a_chat_template_that_escapes_the_sandbox_is_refused_naming_the_model(tiny_lm_dir, tmp_path):
    from transformers import AutoTokenizer

    hostile = tmp_path / "hostile"
    shutil.copytree(tiny_lm_dir, hostile)
    tokenizer = AutoTokenizer.from_pretrained(hostile)
    tokenizer.chat_template = "{{ ''.__class__.__mro__[1].__subclasses__() }}{{ messages[0]['content'] }}"
    tokenizer.save_pretrained(hostile)
    request = GenerateRequest("g", "gen", Chat((("user", "Hello"),)), max_new_tokens=2)
    with pytest.raises(GlobalrepError) as refused:
        answer(lm("hostile", hostile, chat_template=True), [request], CPU)
    assert str(refused.value).startswith(
        f"model 'hostile': its chat template (the tokenizer's own, from {hostile}) was refused by Jinja's sandbox"
    )


def test_out_of_memory_in_a_job_is_one_line_naming_the_knob(tiny_lm_dir, tmp_path):
    """The issue's case: max_packed_tokens far past memory on full-window items. The job's memory
    is capped (RLIMIT_AS) so that the allocation fails here as under Slurm's limit."""
    code = f"""
import random
import resource
from globalrep.engine import LoglikRequest, open_backend
from globalrep.models import ModelSpec

spec = ModelSpec(name='tiny', path={str(tiny_lm_dir)!r}, dtype='float32', batch_size=1)
words = 'many people speak more than one language at home and the world is large'.split()
rng = random.Random(0)  # 40 distinct full-window contexts: a trie of some 80,000 tokens, one row
requests = [LoglikRequest(f'q{{i}}', 'c', ' '.join(rng.choice(words) for _ in range(3000)), (' y',))
            for i in range(40)]
with open_backend(spec, {{'device': 'cpu', 'max_packed_tokens': 1_000_000_000}}) as backend:
    backend.model.tokenizer  # loads the model first
    with open('/proc/self/status') as status:
        used = next(int(line.split()[1]) for line in status if line.startswith('VmSize')) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (used + 2 * 2**30, resource.RLIM_INFINITY))
    backend.answer(requests)
"""
    done, log = job(code, tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr + log, done.stderr[-3000:]
    assert "model 'tiny': out of memory answering loglik requests" in done.stderr
    assert "lower engine.max_packed_tokens" in log


def test_a_task_prompt_template_that_escapes_the_sandbox_is_refused_naming_it(tmp_path):
    from globalrep.prompt_templates import prompt_renderer

    template = tmp_path / "hostile.jinja"
    template.write_text("{{ passage.__class__.__mro__[1].__subclasses__() }}", encoding="utf-8")
    render = prompt_renderer("belebele", {"prompt_template": str(template)})
    with pytest.raises(
        GlobalrepError, match=r"^prompt template of task 'belebele' \(.*hostile\.jinja\): refused by Jinja's sandbox"
    ):
        render(passage="P", question="Q", choices=["a", "b", "c", "d"])
