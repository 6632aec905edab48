# globalrep: how alignment changes an LLM's performance across dialects, languages and countries.
#
#   snakemake --cores all                              # the embedded demo (config.yaml)
#   snakemake --cores all --configfile config/paper.yaml
#   snakemake --profile profiles/slurm --configfile config/paper.yaml
#
# Layout: workflow/rules/*.smk (one file per stage), logic in src/globalrep.

from snakemake.utils import min_version

min_version("9.0")


# The demo config, unless config files are given on the command line: then those alone are the
# config (Snakemake would otherwise merge them into the demo's, adding the demo models to a run).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/dialects.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/langid.smk"
include: "workflow/rules/findings.smk"
include: "workflow/rules/figures.smk"


# A cluster job removes its rule's old log only once it runs, so one cancelled before (pending, or
# while starting) would show the previous run's log as its own. The logs of every job this run
# executes go before any job is sent, as a local run removes each job's log when it starts.
onstart:
    for job in workflow.dag.needrun_jobs():
        for path in job.log:
            Path(path).unlink(missing_ok=True)


# Like a test runner's summary: what each chain step did, and where the report is (when this run's
# targets include the findings, so that a run of other targets prints nothing stale).
onsuccess:
    if FINDINGS in set(map(str, workflow.dag.derived_targetfiles)):
        print(stages.findings_summary(FINDINGS, "results/report.html", TASKS))


rule all:
    default_target: True
    input:
        all_targets(),
