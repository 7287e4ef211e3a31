# Evaluation of each run's final checkpoint with training.eval, when the config's `evaluate: episodes`
# is above 0 (off by default): eval_scores.jsonl (and with `video: true` an MP4) in the run folder.


rule evaluate:
    input:
        f"{RUNS}/{RUN_PATTERN}/done.json",
    output:
        f"{RUNS}/{RUN_PATTERN}/eval_scores.jsonl",
    log:
        f"{RESULTS}/logs/evaluate/{RUN_PATTERN}.log",
    params:
        logdir=lambda wildcards, output: os.path.dirname(output[0]),
        episodes=config["evaluate"]["episodes"],
        video="--video" if config["evaluate"]["video"] else "",
        device=config["train"]["device"],
        display=display,
    threads: train_resource("cpus")
    resources:
        runtime=train_resource("runtime"),
        mem_mb=train_resource("mem_mb"),
        gpu=train_resource("gpu"),
    conda:
        "../../environment.yml"
    container:
        lambda wildcards: config.get(f"container_{wildcards.suite}", config["container_agent"])
    shell:
        "{params.display} python -m training.eval --logdir {params.logdir} --episodes {params.episodes} {params.video}"
        " --device {params.device} > {log} 2>&1"
