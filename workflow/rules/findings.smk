# Tables -> findings.csv: the paper's three questions answered per chain step (globalrep.findings),
# and the overview figure the report opens with.


rule findings:
    input:
        tables=findings_tables(),
        scores=list(findings_scores().values()),
    output:
        report("results/tables/findings.csv", caption="../report/findings.rst", category="Findings"),
    log:
        "results/logs/findings.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        scores=findings_scores(),
        task_options={task: config["tasks"][task] for task in findings_scores()},
        chains=CHAINS,
        correction=config["stats"]["correction"],
        fingerprint=findings_fingerprint,
    script:
        "../scripts/findings.py"


rule plot_findings:
    input:
        "results/tables/findings.csv",
    output:
        pdf="results/figures/findings/findings_overview.pdf",
        png=report(
            "results/figures/findings/findings_overview.png",
            caption="../report/findings.rst",
            category="Findings",
        ),
    log:
        "results/logs/plot_findings.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        fingerprint=FINDINGS_FIGURE_CODE,
    script:
        "../scripts/findings_figure.py"
