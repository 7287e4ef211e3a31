# A random-policy run per (suite, task, seed) of the grid when the config's `random_policy` is on: the
# baseline the tables and learning curves show beside our runs (method `random`), played through the same
# env adapters, step counting and score files as training (training/random_policy.py). As for training,
# only done.json is declared, written at the very end.


rule random_policy:
    output:
        f"{RUNS}/{RANDOM_PATTERN}/done.json",
    log:
        f"{RESULTS}/logs/random_policy/{RANDOM_PATTERN}.log",
    benchmark:
        f"{RESULTS}/benchmarks/random_policy/{RANDOM_PATTERN}.tsv"
    params:
        task=lambda wildcards: random_cell(wildcards)["task"],
        steps=lambda wildcards: random_cell(wildcards)["steps"],
        envs=lambda wildcards: random_cell(wildcards)["envs"],
        logdir=lambda wildcards, output: os.path.dirname(output[0]),
        display=display,
        overrides=OVERRIDE_FLAGS,  # the training runs' env_args and repeat, too
    threads: 1
    resources:
        runtime=train_resource("runtime"),
        mem_mb=train_resource("mem_mb"),
        gpu=0,
    conda:
        "../../environment.yml"
    container:
        lambda wildcards: config.get(f"container_{wildcards.suite}", config["container_agent"])
    shell:
        "{params.display} python -m training.random_policy --suite {wildcards.suite} --task '{params.task}'"
        " --seed {wildcards.seed} --steps {params.steps} --envs {params.envs} --logdir {params.logdir}"
        " {params.overrides} > {log} 2>&1"
