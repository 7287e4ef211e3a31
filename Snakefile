"""DreamerV3 benchmark: train a grid of runs, then aggregate, tabulate, plot, export and report.

    snakemake --cores all                                 # default small grid (config/config.yaml)
    snakemake --cores all --configfile config/paper.yaml  # the full benchmark
    snakemake --cores 1 --config logs_dir=path/to/runs    # only regenerate results from logs
    snakemake --report results/report.html                # HTML report of tables and figures
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
