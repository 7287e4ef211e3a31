# One training run per grid cell. The declared output is only done.json, written by
# training.train at the very end, so a failed or preempted job never deletes checkpoints,
# replay or scores; running the same command on the same folder resumes the run.


rule train:
    output:
        f"{RUNS}/{RUN_PATTERN}/done.json",
    log:
        f"{RESULTS}/logs/train/{RUN_PATTERN}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{RUN_PATTERN}.tsv"
    params:
        task=lambda wildcards: grid_cell(wildcards)["task"],
        steps=lambda wildcards: grid_cell(wildcards)["steps"],
        envs=lambda wildcards: grid_cell(wildcards)["envs"],
        logdir=lambda wildcards, output: os.path.dirname(output[0]),
        device=config["train"]["device"],
        display=display,
        overrides=OVERRIDE_FLAGS,
        # torch.compile's cache (used with --set compile=...), shared by every run and job of the grid: only
        # the first run of each model shape compiles for minutes; the others, and requeued jobs on other
        # nodes, load the graphs. An absolute path, as jobs on a cluster start elsewhere; beside runs_dir, not
        # in results_dir, so that a config sharing the run folders with its own results_dir
        # (config/scaling_small.yaml) leaves this param, and so the finished runs, as they are.
        compile_cache=os.path.join(os.path.dirname(os.path.abspath(RUNS)), "compile_cache"),
    threads: train_resource("cpus")
    # Longest runs first (thousands of replayed steps: agent steps x train ratio), so that no long run
    # starts last and runs alone at the end while the other cores idle; random-policy runs (priority 0) after.
    priority: lambda wildcards: int(grid_cell(wildcards)["steps"] * grid_cell(wildcards)["train_ratio"]) // 1000
    resources:
        runtime=train_resource("runtime"),
        mem_mb=train_resource("mem_mb"),
        gpu=train_resource("gpu"),
    conda:
        "../../environment.yml"
    # Only used with --software-deployment-method apptainer (profiles/slurm): DMLab and
    # Minecraft need their own images, every other suite runs in the agent image.
    container:
        lambda wildcards: config.get(f"container_{wildcards.suite}", config["container_agent"])
    shell:
        'TORCHINDUCTOR_CACHE_DIR="${{TORCHINDUCTOR_CACHE_DIR:-{params.compile_cache}}}"'
        " {params.display} python -m training.train --suite {wildcards.suite} --task '{params.task}' --seed {wildcards.seed}"
        " --size {wildcards.size} --train-ratio {wildcards.train_ratio} --steps {params.steps}"
        " --envs {params.envs} --logdir {params.logdir} --device {params.device} {params.overrides}"
        " > {log} 2>&1"
