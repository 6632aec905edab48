# Language ID of SFT data (task sft_langid): no models. The task's own stage (its OWN_STAGE, see
# globalrep.tasks.base.OwnStage): one job per (dataset, shard) streams its conversations through
# both detectors and keeps one row per message (no text); one job turns all shards into the
# task's two tables. Figures and report are the generic rules'.

LANGID = "sft_langid"
LANGID_STAGE = get_task(LANGID).own_stage
LANGID_OPTIONS = config["tasks"].get(LANGID)

if LANGID_OPTIONS is not None:
    try:
        LANGID_STAGE.check_sources(LANGID_OPTIONS)
    except GlobalrepError as error:
        raise WorkflowError(str(error)) from None


rule detect_sft_languages:
    input:
        source=lambda wildcards: LANGID_STAGE.source_files(LANGID_OPTIONS, wildcards.dataset),
    output:
        "results/langid/{dataset}/shard-{shard}-of-{nshards}.parquet",
    log:
        "results/logs/detect_sft_languages/{dataset}/shard-{shard}-of-{nshards}.log",
    wildcard_constraints:
        dataset="|".join(map(re.escape, LANGID_STAGE.units(LANGID_OPTIONS) if LANGID_OPTIONS else [])) or "(?!)",
    conda:
        "../../envs/langid.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=240,
    params:
        # The dataset entry, detection options, task version and detector versions.
        fingerprint=lambda wildcards: LANGID_STAGE.fingerprint(LANGID_OPTIONS, wildcards.dataset),
    script:
        "../scripts/detect_sft_languages.py"


rule score_sft_langid:
    input:
        lambda wildcards: [path for paths in langid_shards().values() for path in paths],
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
        shards=lambda wildcards: langid_shards(),
        fingerprint=SCORING_CODE.get(LANGID),
    script:
        "../scripts/score_sft_langid.py"
