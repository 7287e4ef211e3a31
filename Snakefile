"""DreamerV3 benchmark: train a grid of runs, then aggregate, tabulate, plot, export and report.

    snakemake --cores all                                 # default small grid (config/config.yaml)
    snakemake --cores all --configfile config/paper.yaml  # the full benchmark
    snakemake --cores 1 --config logs_dir=path/to/runs    # only regenerate results from logs
    snakemake --report results/report.html                # HTML report of tables and figures
    snakemake -n --configfile config/paper.yaml           # what would run, and what it will cost (the plan)
"""
from snakemake.utils import min_version

from pipelines.grid import validate_config

min_version("9.0")


configfile: "config/config.yaml"


validate_config(config, f"{workflow.basedir}/config/schema.yaml")  # validate() resolves a relative path from its caller


report: "pipelines/report/workflow.rst"


localrules:
    all,


# Tables, figures, exported scores and the report; training runs as far as they need; evaluations if asked for.
rule all:
    input:
        f"{config['results_dir']}/tables/paper.md",
        f"{config['results_dir']}/figures",
        f"{config['results_dir']}/export",
        f"{config['results_dir']}/report.md",
        lambda wildcards: evaluation_outputs(),


include: "pipelines/rules/common.smk"
include: "pipelines/rules/train.smk"
include: "pipelines/rules/random.smk"
include: "pipelines/rules/evaluate.smk"
include: "pipelines/rules/reference.smk"
include: "pipelines/rules/results.smk"


# A dry run first prints what the grid will cost: the plan of `make plan` (pipelines/plan.py), from this
# config. Only in a dry run: a real run, and each job that reads this file again, never imports the planner.
if workflow.output_settings.dryrun and not FROM_LOGS:
    from pipelines.plan import dry_run_plan

    print(dry_run_plan(config, workflow.overwrite_configfiles, workflow.resource_settings.cores,
                       workflow.resource_settings.nodes), flush=True)
