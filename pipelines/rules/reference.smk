# Published reference runs and baselines, downloaded from their public sources into
# resources/reference unless config reference.local_dir points at a local copy.


localrules:
    fetch_reference,


rule fetch_reference:
    output:
        "resources/reference/{path}",
    log:
        f"{RESULTS}/logs/fetch_reference/{{path}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fetch_reference/{{path}}.tsv"
    wildcard_constraints:
        path=r"dreamerv3-scores/[a-z0-9_]+-[a-z0-9_]+\.json\.gz|crafter/[a-z_]+-[a-z]+\.json|baselines\.yaml",
    retries: 2
    conda:
        "../../environment.yml"
    shell:
        "python -m pipelines.reference {wildcards.path} {output} > {log} 2>&1"
