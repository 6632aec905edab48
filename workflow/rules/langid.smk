# Language ID of SFT data (task sft_langid): no models. One job per (dataset, shard) streams its
# conversations through both detectors and keeps one row per message (no text); one job turns all
# shards into the task's two tables. Figures and report are the generic rules'.

from globalrep.tasks import sft_langid

LANGID = config["tasks"].get(sft_langid.NAME)

if LANGID is not None:
    try:
        sft_langid.check_sources(LANGID)
    except GlobalrepError as error:
        raise WorkflowError(str(error)) from None


rule detect_sft_languages:
    input:
        source=lambda wildcards: sft_langid.source_files(LANGID, wildcards.dataset),
    output:
        "results/langid/{dataset}/shard-{shard}-of-{nshards}.parquet",
    wildcard_constraints:
        dataset="|".join(map(re.escape, (LANGID or {}).get("datasets", {}))) or "(?!)",
    log:
        "results/logs/detect_sft_languages/{dataset}/shard-{shard}-of-{nshards}.log",
    conda:
        "../../envs/langid.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=240,
    params:
        # The dataset entry, detection options, task version and detector versions.
        fingerprint=lambda wildcards: sft_langid.job_fingerprint(LANGID, wildcards.dataset),
    script:
        "../scripts/detect_sft_languages.py"


rule score_sft_langid:
    input:
        lambda wildcards: [f for d in LANGID["datasets"] for f in sft_langid.shard_files(LANGID, d)],
    output:
        scores="results/scores/sft_langid.parquet",
        table=report(
            "results/tables/sft_langid.csv",
            caption="../report/table.rst",
            category="Tables",
            subcategory="sft_langid",
        ),
        deltas="results/tables/sft_langid_deltas.csv",
    log:
        "results/logs/score_sft_langid.log",
    conda:
        "../../envs/langid.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        shards=lambda wildcards: {d: sft_langid.shard_files(LANGID, d) for d in LANGID["datasets"]},
        fingerprint=SCORING_CODE.get(sft_langid.NAME),
    script:
        "../scripts/score_sft_langid.py"
