# Tables -> each task's figures (PDF + PNG), and the single-file HTML report of everything.

# A figure folder lists its figures (figures.json); one that lost or changed a figure is deleted
# before planning, so that this run redraws it (Snakemake sees only the folder).
from snakemake.logging import logger

if workflow.is_main_process:
    for problem in figure_manifest.delete_damaged(f"results/figures/{task}" for task in TASKS):
        logger.warning(f"{problem}: deleted, to be drawn again")


rule plot_task_figures:
    input:
        table="results/tables/{task}.csv",
        deltas="results/tables/{task}_deltas.csv",
        extra_tables=lambda wildcards: task_extra_table_files(wildcards.task),
    output:
        report(
            directory("results/figures/{task}"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
            subcategory="{task}",
        ),
    log:
        "results/logs/plot_task_figures/{task}.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        chains=lambda wildcards: chains_for(wildcards.task),
        models_stage=lambda wildcards: models_stage(wildcards.task),
        unavailable=lambda wildcards: (TASK_NOTES[wildcards.task] if wildcards.task in UNAVAILABLE_TASKS else ""),
        fingerprint=figure_fingerprint,
    script:
        "../scripts/task_figures.py"


rule build_report:
    input:
        tables=expand("results/tables/{task}.csv", task=TASKS),
        deltas=expand("results/tables/{task}_deltas.csv", task=TASKS),
        extra_tables=extra_table_files(),
        figures=expand("results/figures/{task}", task=TASKS),
        findings=FINDINGS,
        findings_figure=FINDINGS_FIGURE,
        predictions=[path for task in SCORED_TASKS for paths in prediction_files(task).values() for path in paths],
    output:
        "results/report.html",
    log:
        "results/logs/build_report.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        tasks=TASKS,
        task_models={task: TASK_MODELS.get(task, []) for task in TASKS},
        notes=TASK_NOTES,
        predictions={task: prediction_files(task) for task in SCORED_TASKS},
        fingerprint=report_fingerprint,
    script:
        "../scripts/report.py"
