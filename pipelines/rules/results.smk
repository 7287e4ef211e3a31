# From finished runs (or copied-back logs) and the reference runs to tables, figures,
# exported score files and a report. All cheap next to training, so they run locally.
# Aggregation, tables and plots print their progress lines to the terminal as well as the log.
AGGREGATE = f"{RESULTS}/aggregate"
TABLES = f"{RESULTS}/tables"
# Parsed reference files and drawn figures, reused while their inputs are unchanged.
CACHE = f"{RESULTS}/cache"


localrules:
    workflow_config,
    aggregate,
    tables,
    plots,
    export,
    report,


# The resolved config (defaults and --config overrides included) for the Python steps;
# rewritten, and everything downstream redone, whenever the config changes.
rule workflow_config:
    output:
        f"{AGGREGATE}/workflow-config.yaml",
    log:
        f"{RESULTS}/logs/workflow_config.log",
    benchmark:
        f"{RESULTS}/benchmarks/workflow_config.tsv"
    params:
        text=yaml.safe_dump(config, sort_keys=False),
    conda:
        "../../environment.yml"
    shell:
        "printf '%s' {params.text:q} > {output} 2> {log}"


rule aggregate:
    input:
        runs=run_markers(),
        reference=REFERENCE_FILES,
        baselines=BASELINES,
        config=rules.workflow_config.output,
    output:
        runs=f"{AGGREGATE}/runs.csv",
        curves=f"{AGGREGATE}/curves.csv",
        bsuite=f"{AGGREGATE}/bsuite.csv",
        problems=report(f"{AGGREGATE}/problems.txt", caption="../report/problems.rst", category="Logs"),
    log:
        f"{RESULTS}/logs/aggregate.log",
    benchmark:
        f"{RESULTS}/benchmarks/aggregate.tsv"
    params:
        folders=lambda wildcards, input: [os.path.dirname(path) for path in input.runs],
        out_dir=lambda wildcards, output: os.path.dirname(output.runs),
        cache=f"{CACHE}/reference",
    conda:
        "../../environment.yml"
    shell:
        "python -m pipelines.aggregate --workflow-config {input.config} --runs {params.folders:q}"
        " --reference {input.reference:q} --baselines {input.baselines:q} --out-dir {params.out_dir}"
        " --reference-cache {params.cache} 2>&1 | tee {log}"


rule tables:
    input:
        runs=rules.aggregate.output.runs,
        bsuite=rules.aggregate.output.bsuite,
    output:
        paper=report(f"{TABLES}/paper.csv", caption="../report/paper.rst", category="Tables"),
        aggregates=report(f"{TABLES}/aggregates.csv", caption="../report/aggregates.rst", category="Tables"),
        tasks=report(f"{TABLES}/tasks.csv", caption="../report/tasks.rst", category="Tables"),
        profiles=f"{TABLES}/profiles.csv",
        paper_md=f"{TABLES}/paper.md",
        aggregates_md=f"{TABLES}/aggregates.md",
    log:
        f"{RESULTS}/logs/tables.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables.tsv"
    params:
        reps=config["aggregation"]["bootstrap_reps"],
        out_dir=lambda wildcards, output: os.path.dirname(output.paper),
    conda:
        "../../environment.yml"
    shell:
        "python -m pipelines.tables --runs {input.runs} --bsuite {input.bsuite} --out-dir {params.out_dir}"
        " --bootstrap-reps {params.reps} 2>&1 | tee {log}"


rule plots:
    input:
        curves=rules.aggregate.output.curves,
        aggregates=rules.tables.output.aggregates,
        profiles=rules.tables.output.profiles,
    output:
        report(
            directory(f"{RESULTS}/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        f"{RESULTS}/logs/plots.log",
    benchmark:
        f"{RESULTS}/benchmarks/plots.tsv"
    params:
        reps=config["aggregation"]["bootstrap_reps"],
        cache=f"{CACHE}/figures",
    # Figures are drawn side by side, one per thread; Snakemake lowers this to --cores where fewer.
    threads: 4
    conda:
        "../../environment.yml"
    shell:
        "python -m pipelines.plots --curves {input.curves} --aggregates {input.aggregates}"
        " --profiles {input.profiles} --out-dir {output} --bootstrap-reps {params.reps} --workers {threads}"
        " --cache-dir {params.cache} 2>&1 | tee {log}"


rule export:
    input:
        runs=run_markers(),
        config=rules.workflow_config.output,
    output:
        directory(f"{RESULTS}/export"),
    log:
        f"{RESULTS}/logs/export.log",
    benchmark:
        f"{RESULTS}/benchmarks/export.tsv"
    params:
        folders=lambda wildcards, input: [os.path.dirname(path) for path in input.runs],
    conda:
        "../../environment.yml"
    shell:
        "python -m pipelines.export --workflow-config {input.config} --runs {params.folders:q}"
        " --out-dir {output} > {log} 2>&1"


rule report:
    input:
        paper=rules.tables.output.paper_md,
        aggregates=rules.tables.output.aggregates_md,
        figures=rules.plots.output,
        problems=rules.aggregate.output.problems,
    output:
        f"{RESULTS}/report.md",
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    conda:
        "../../environment.yml"
    shell:
        "python -m pipelines.report --paper {input.paper} --aggregates {input.aggregates}"
        " --figures {input.figures} --problems {input.problems} --out {output} > {log} 2>&1"
