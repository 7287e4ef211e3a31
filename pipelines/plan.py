"""The cost of a grid before it starts: `python -m pipelines.plan --configfile config/paper.yaml`.

Reads the workflow config as the Snakefile does (config/config.yaml, then each --configfile
merged over it, checked against the schema), expands it into runs with the workflow's own
`grid_cells`, resolves each run's agent config with the training CLI's own `parse_args`, and
prints per suite and in total: runs, agent steps, updates, device-hours and the wall-clock
with N runs at once, replay memory per run and disk for the replay chunks. Then it warns where
a run will not fit its job's `mem_mb` or `runtime`.

Estimates, not measurements: time = updates x seconds per update + agent steps / env speed.
CPU seconds per update are the eager float32 medians of benchmarks/train_step.py in
benchmarks/results/ (2 threads, batch 16 x 64); sizes measured on no machine there are interpolated
log-log in the model width. Another batch shape scales them by its replayed steps (B x T), an
assumption: small batches keep more of the per-step overhead, so their estimate is a lower bound.
GPU figures are placeholders until a GPU session measures them.
Acting (one policy call per env batch), start-up and checkpointing are left out.
"""
import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import yaml

from agent.config import SIZES, make_config, parse_overrides
from agent.hardware import resolve_compile
from envs.base import step_spaces
from envs.dmlab import INSTR_EMBED, INSTR_TOKENS
from envs.registry import SUITES
from pipelines.grid import check_names, check_overrides, grid_cells, random_cells, train_resources, validate_config
from spaces import Space
from training.ratio import planned_updates

REPO = Path(__file__).resolve().parents[1]
DEVICES = ("cpu", "cuda")
MEASURED_BATCH_STEPS = 16 * 64  # B x T of the measured seconds per update (benchmarks/train_step.py)
DEFAULT_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"  # its retries let a run span several jobs
# Measured seconds per update on CPU, read from these files in this order: the first file with a
# (size, observation) wins. The 2-core AMD EPYC of 2026-12-01 (1m, 12m), then the Intel Xeon (50m, 200m).
CPU_RESULTS = ("cpu_zen3_before_after.json", "cpu_large.json")
# UNMEASURED placeholder for cuda: the official JAX code ran Crafter at size200m, ratio 512 at about
# 2 env steps/s on an A100 (upstream issue #148, spec 9.7), i.e. about 1 s per update. Other sizes are
# scaled as on CPU, with 0.05 s as the floor (an eager update launches thousands of kernels).
CUDA_PLACEHOLDER_200M_IMAGE = 1.0
CUDA_PLACEHOLDER_FLOOR = 0.05
# UNMEASURED placeholder: host memory of a training process whose model and activations live on the GPU.
CUDA_HOST_PROCESS_BYTES = 4 * 2**30
# Agent steps per second of one env with random actions (README suites table, benchmarks/env_speed.py on a
# 2-core machine). DMLab and Minecraft do not install here: UNMEASURED placeholders.
ENV_SPEED = {"atari100k": 1780, "atari200m": 1230, "dmc_proprio": 5400, "dmc_vision": 33, "bsuite": 34000,
             "crafter": 118, "procgen": 150, "gym": 44000, "dmlab": 100, "minecraft": 30}  # fmt: skip
ENV_SPEED_UNMEASURED = ("dmlab", "minecraft")


def _image(height, width, channels=3):
    return {"image": Space(np.uint8, (height, width, channels))}


DISCRETE = {"action": Space(np.int32, (), 0, 18)}
# The largest observation and action among each suite's official tasks, as its adapter declares them
# (pipelines/tests/test_plan.py checks this against the adapters that install here).
SUITE_SPACES = {
    "atari100k": (_image(64, 64), DISCRETE),
    "atari200m": (_image(96, 96, 1), DISCRETE),
    "dmc_proprio": ({"vector": Space(np.float32, (24,))}, {"action": Space(np.float32, (6,), -1, 1)}),  # walker
    "dmc_vision": (_image(64, 64), {"action": Space(np.float32, (12,), -1, 1)}),  # quadruped
    "bsuite": ({"vector": Space(np.float32, (2500,))}, DISCRETE),  # deep_sea/20: a 50 x 50 grid
    "crafter": (_image(64, 64), DISCRETE),
    "dmlab": ({**_image(64, 64), "instr": Space(np.float32, (INSTR_TOKENS * INSTR_EMBED,))}, DISCRETE),
    "procgen": (_image(96, 96), {"action": Space(np.int32, (), 0, 15)}),
    "minecraft": (_image(64, 64), DISCRETE),  # plus inventory vectors of a few hundred bytes (MineRL's list)
    "gym": ({"vector": Space(np.float32, (4,))}, DISCRETE),  # CartPole; other ids differ
}


class PlanError(Exception):
    """Bad input to the planner; the message says what to do."""


# --- Config and runs, as the workflow has them ---


def load_workflow_config(configfiles: list[str]) -> dict:
    """config/config.yaml with each file merged over it (snakemake's update_config, as --configfile does),
    validated against config/schema.yaml with its defaults filled in, as the Snakefile does."""
    from snakemake.utils import update_config

    config = {}
    for name in [str(REPO / "config" / "config.yaml"), *configfiles]:
        path = Path(name)
        if not path.is_file():
            shipped = ", ".join(sorted(str(p.relative_to(REPO)) for p in (REPO / "config").glob("*.yaml")
                                       if p.name != "schema.yaml"))
            raise PlanError(f"config file {name} not found; the shipped ones are {shipped}")
        update_config(config, yaml.safe_load(path.read_text()) or {})
    try:  # as the workflow does (Snakefile, pipelines/rules/common.smk)
        validate_config(config, str(REPO / "config" / "schema.yaml"))
        check_names(config, SIZES)
        check_overrides(config, lambda items: make_config(**parse_overrides(items)).to_dict())
    except ValueError as error:
        raise PlanError(str(error)) from None
    return config


def run_config(config: dict, cell: dict):
    """The agent config of one grid cell, resolved by the training CLI from the arguments the train rule
    passes (device left at cpu: it does not change what is counted here)."""
    from training.train import parse_args

    argv = ["--suite", cell["suite"], "--task", cell["task"], "--seed", str(cell["seed"]), "--size", cell["size"],
            "--train-ratio", str(cell["train_ratio"]), "--steps", str(cell["steps"]), "--envs", str(cell["envs"]),
            "--logdir", "unused", "--device", "cpu"]  # fmt: skip
    if config["train"]["overrides"]:
        argv += ["--set", *config["train"]["overrides"]]
    return parse_args(argv)[0]


def bsuite_episode_steps(bsuite_id: str) -> int:
    """Steps per episode of a bsuite setting; where the agent ends episodes early (cartpole, mountain
    car), the time limit: an upper bound."""
    from bsuite import sweep

    from envs.bsuite import full_id

    bsuite_id = full_id(bsuite_id)
    settings, experiment = sweep.SETTINGS[bsuite_id], bsuite_id.split("/")[0]
    if experiment.startswith("deep_sea"):
        return settings["size"]
    if experiment == "memory_len":
        return settings["memory_length"] + 1
    if experiment == "memory_size":
        return 3  # memory_length 2, then the query
    if experiment == "umbrella_length":
        return settings["chain_length"]
    fixed = {"bandit": 1, "mnist": 1, "catch": 9, "cartpole": 1000, "mountain_car": 1000,
             "discounting_chain": 100, "umbrella_distract": 20}  # fmt: skip
    return next(steps for prefix, steps in fixed.items() if experiment.startswith(prefix))


def agent_steps(cell: dict) -> int:
    """The run's agent steps: its budget, or for bsuite its episode budget if that ends it first."""
    if cell["suite"] != "bsuite":
        return cell["steps"]
    from envs.bsuite import episode_budget

    return min(cell["steps"], episode_budget(cell["task"]) * bsuite_episode_steps(cell["task"]))


# --- Seconds per update ---


def observation_kind(obs_space: dict) -> str:
    return "image" if any(len(space.shape) == 3 for space in obs_space.values()) else "vector"


def measured_cpu_updates() -> dict:
    """{(size, obs): (seconds per update, peak MiB)} from the benchmark results of this code."""
    table = {}
    for name in CPU_RESULTS:
        for row in json.loads((REPO / "benchmarks" / "results" / name).read_text())["results"]:
            if row.get("code") == "worktree" and row.get("compile") in ("off", False) and row.get("seconds_per_update"):
                table.setdefault((row["size"], row["obs"]), (row["seconds_per_update"], row["peak_memory_mib"]))
    return table


def interpolate(size: str, measured: dict) -> float:
    """log-log in the model width (units) between the nearest measured sizes, or beyond the last two."""
    points = sorted((math.log(SIZES[name]["units"]), math.log(value)) for name, value in measured.items())
    x = math.log(SIZES[size]["units"])
    below = [p for p in points if p[0] <= x]
    above = [p for p in points if p[0] > x]
    if below and above:
        (x0, y0), (x1, y1) = below[-1], above[0]
    else:
        (x0, y0), (x1, y1) = points[-2:] if not above else points[:2]
    return math.exp(y0 + (y1 - y0) * (x - x0) / (x1 - x0))


def cpu_update_cost(size: str, obs: str, measured: dict) -> tuple[float, float, str]:
    """(seconds per update, peak MiB of the training process, "measured" or "interpolated") on CPU."""
    if (size, obs) in measured:
        return (*measured[(size, obs)], "measured")
    same_obs = {name: value for (name, kind), value in measured.items() if kind == obs}
    seconds = interpolate(size, {name: value[0] for name, value in same_obs.items()})
    peak = interpolate(size, {name: value[1] for name, value in same_obs.items()})
    return seconds, peak, "interpolated"


def update_cost(device: str, size: str, obs: str, measured: dict) -> tuple[float, float, str]:
    """(seconds per update, peak MiB of a training process on CPU, where the seconds come from)."""
    seconds, peak, source = cpu_update_cost(size, obs, measured)
    if device == "cuda":
        cpu_200m_image = cpu_update_cost("200m", "image", measured)[0]
        seconds = max(CUDA_PLACEHOLDER_FLOOR, seconds * CUDA_PLACEHOLDER_200M_IMAGE / cpu_200m_image)
        source = "UNMEASURED placeholder"
    return seconds, peak, source


# --- The plan ---


def plan_runs(config: dict, device: str) -> list[dict]:
    """One record per run of the grid: what it costs and what its job asks for."""
    from training.train import replay_memory_estimate

    measured = measured_cpu_updates()
    runs = []
    for cell in grid_cells(config):
        run = run_config(config, cell)
        obs_space, act_space = SUITE_SPACES[cell["suite"]]
        obs_space = {**obs_space, **step_spaces()}
        steps = agent_steps(cell)
        updates = planned_updates(run, steps)
        obs = observation_kind(obs_space)
        seconds_per_update, peak_mib, source = update_cost(device, run.size, obs, measured)
        if run.batch_size * run.batch_length != MEASURED_BATCH_STEPS:
            seconds_per_update *= run.batch_size * run.batch_length / MEASURED_BATCH_STEPS
            source += f", scaled to batch {run.batch_size} x {run.batch_length}"
        if resolve_compile(run.compile, device, updates, obs_space)[0] == "update":
            source += " (eager; compile=auto compiles this run: faster after ~17 min of compiling)"
        per_step, _ = replay_memory_estimate(run, obs_space, act_space)
        replay_bytes = per_step * min(run.replay_size, steps)
        process_bytes = peak_mib * 2**20 if device == "cpu" else CUDA_HOST_PROCESS_BYTES
        resources = train_resources(config, cell["suite"])
        seconds = updates * seconds_per_update + steps / ENV_SPEED[cell["suite"]]
        runs.append(dict(cell=cell, steps=steps, updates=updates, seconds=seconds, obs=obs, source=source,
                         seconds_per_update=seconds_per_update, replay_bytes=replay_bytes,
                         memory_bytes=replay_bytes + process_bytes, runtime_minutes=resources["runtime"],
                         mem_mb=resources["mem_mb"], gpus=resources["gpu"]))  # fmt: skip
    return runs


def random_runs_line(config: dict) -> str | None:
    """The random-policy runs (config `random_policy`): env steps only, so left out of the table."""
    cells = random_cells(config)
    if not cells:
        return None
    steps = sum(agent_steps(cell) for cell in cells)
    hours = sum(agent_steps(cell) / ENV_SPEED[cell["suite"]] for cell in cells) / 3600
    return (f"Random-policy runs (random_policy: true), not in the table above: {len(cells):,}, "
            f"{format_number(steps)} agent steps, about {format_hours(hours)} of env stepping in all (one CPU "
            "each, no updates).")


def slurm_retries(profile: Path) -> int:
    return int(yaml.safe_load(profile.read_text()).get("retries", 0))


def warnings_for(runs: list[dict], retries: int) -> list[str]:
    """Runs whose replay and process will not fit mem_mb, or that will not finish within their jobs."""
    found = {}  # (suite, kind) -> [the worst run, number of runs]

    def add(key, run, measure):
        worst, count = found.get(key, (run, 0))
        found[key] = [max(worst, run, key=lambda r: r[measure]), count + 1]

    for run in runs:
        suite = run["cell"]["suite"]
        if run["memory_bytes"] > run["mem_mb"] * 2**20:
            add((suite, "memory"), run, "memory_bytes")
        jobs = math.ceil(run["seconds"] / 60 / run["runtime_minutes"])
        if jobs > 1 and (not SUITES[suite].resumable or jobs > retries + 1):
            add((suite, "time"), run, "seconds")
    lines = []
    for (suite, kind), (run, count) in found.items():
        runs_text = (f"{count} {suite} run{'s' if count > 1 else ''} (the worst: {run['cell']['task']} "
                     f"{run['cell']['size']})")
        if kind == "memory":
            lines.append(f"{runs_text}: replay {run['replay_bytes'] / 1e9:.1f} GB + training process "
                         f"{(run['memory_bytes'] - run['replay_bytes']) / 1e9:.1f} GB will not fit mem_mb "
                         f"{run['mem_mb']}: raise mem_mb in the config's resources, or --set replay_size=N in "
                         "train: overrides.")
        else:
            hours, limit = run["seconds"] / 3600, run["runtime_minutes"] / 60
            if not SUITES[suite].resumable:
                lines.append(f"{runs_text}: about {hours:,.1f} h, longer than the job's runtime of {limit:,.1f} h, "
                             f"and {suite} runs cannot resume: raise runtime (within the partition's limit) or "
                             "lower the budget.")
            else:
                lines.append(f"{runs_text}: about {hours:,.1f} h = {math.ceil(hours / limit)} jobs of "
                             f"{limit:,.1f} h, more than 1 + retries ({retries}) of the SLURM profile: raise "
                             "retries in profiles/slurm/config.yaml or runtime.")
    return lines


def format_number(value: float) -> str:
    if value >= 1e6:
        return f"{value:.3g}".replace("e+0", "e").replace("e+", "e")
    return f"{value:,.0f}"


def format_bytes(count: float) -> str:
    return f"{count / 1e6:,.1f} MB" if count < 1e9 else f"{count / 1e9:,.1f} GB"


def format_hours(hours: float) -> str:
    if hours < 1 / 60:
        return f"{hours * 3600:.0f} s"
    if hours < 1:
        return f"{hours * 60:.1f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:,.1f} d"


def report(runs: list[dict], device: str, parallel: int, retries: int, name: str,
           parallel_from: str = "--parallel") -> str:
    """The plan as text: a table per suite and in total, the assumptions, and the warnings.
    parallel_from: where the number of runs at once came from, for the reader."""
    suites = {}
    for run in runs:
        suites.setdefault(run["cell"]["suite"], []).append(run)
    hours_label = "GPU-hours" if device == "cuda" else "CPU job-hours"
    header = ["suite", "runs", "agent steps", "updates", "hours/run (max)", hours_label, "replay/run (max)",
              "replay disk"]
    rows = []
    for suite, group in [*suites.items(), ("total", runs)]:
        device_hours = sum(run["seconds"] / 3600 * max(run["gpus"], 1) for run in group)
        rows.append([suite, f"{len(group):,}", format_number(sum(r["steps"] for r in group)),
                     format_number(sum(r["updates"] for r in group)),
                     format_hours(max(r["seconds"] for r in group) / 3600),
                     f"{device_hours:,.{3 if device_hours < 1 else 1}f}",
                     format_bytes(max(r["replay_bytes"] for r in group)),
                     format_bytes(sum(r["replay_bytes"] for r in group))])  # fmt: skip
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"Plan for {name} on {device}: {len(runs):,} runs"]
    for number, row in enumerate([header, *rows]):
        if number == len(rows):
            lines.append("  ".join("-" * width for width in widths))
        lines.append("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in
                               enumerate(zip(row, widths))))  # fmt: skip
    total_hours = sum(run["seconds"] for run in runs) / 3600
    longest = max(run["seconds"] for run in runs) / 3600
    lines.append(f"Wall-clock with {parallel} run{'s' if parallel > 1 else ''} at once ({parallel_from}): about "
                 f"{format_hours(max(total_hours / parallel, longest))} (the longest run alone: "
                 f"{format_hours(longest)}).")
    sources = sorted({(run["cell"]["size"], run["obs"], run["seconds_per_update"], run["source"]) for run in runs},
                     key=lambda item: (SIZES[item[0]]["units"], item[1]))
    lines.append("Seconds per update used: " + "; ".join(
        f"{size} {obs} {seconds:.3g} s ({source})" for size, obs, seconds, source in sources) + ".")
    if device == "cuda":
        lines.append("GPU seconds per update are UNMEASURED placeholders (pipelines/plan.py) until a GPU run "
                     "measures them with benchmarks/train_step.py.")
    unmeasured = sorted({run["cell"]["suite"] for run in runs} & set(ENV_SPEED_UNMEASURED))
    if unmeasured:
        lines.append(f"Env speeds of {', '.join(unmeasured)} are UNMEASURED placeholders (no engine here).")
    lines.append("Replay: uncompressed bytes when full (the chunk files on disk are compressed, so at most this); "
                 "time: updates and env steps only (no acting, start-up or checkpoints).")
    warnings = warnings_for(runs, retries)
    lines += [f"WARNING: {line}" for line in warnings] or ["No warnings: every run fits its mem_mb and its jobs."]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.plan",
        description="Print what a workflow config's grid will cost before it starts: runs, agent steps, updates, "
                    "hours, replay memory and disk, with warnings for runs that will not fit their jobs.")
    parser.add_argument("--configfile", nargs="+", default=[], metavar="FILE",
                        help="config files merged over config/config.yaml, as snakemake --configfile does")
    parser.add_argument("--device", help="cpu or cuda (default: the config's train: device)")
    parser.add_argument("--parallel", type=int, default=1,
                        help="runs at once: GPUs, or train jobs sharing the CPU (default 1)")
    parser.add_argument("--profile", type=Path, default=DEFAULT_PROFILE,
                        help="SLURM profile whose retries let a run span several jobs")
    return parser


def plan_text(config: dict, device: str, parallel: int, profile: Path = DEFAULT_PROFILE, name: str = "",
              parallel_from: str = "--parallel") -> str:
    """The plan of a workflow config that is already loaded and checked: load_workflow_config's, or the
    Snakefile's own `config` in a dry run. Raises PlanError on bad input."""
    if device not in DEVICES:
        raise PlanError(f"unknown device {device!r}; use --device cpu or --device cuda")
    if parallel < 1:
        raise PlanError("--parallel must be at least 1")
    if config["logs_dir"] is not None:
        raise PlanError("logs_dir is set: this config trains nothing, it only aggregates the runs there")
    try:
        retries = slurm_retries(profile)
    except OSError as error:
        raise PlanError(f"cannot read the SLURM profile {profile}: {error}") from None
    return report(plan_runs(config, device), device, parallel, retries, name or "config/config.yaml", parallel_from)


def dry_run_plan(config: dict, configfiles: list, cores: int | None, jobs: int | None) -> str:
    """What the Snakefile prints in a dry run (snakemake -n): the plan of its own config, with as many runs at
    once as snakemake will start (--jobs on a cluster, else --cores over the train jobs' cpus); the reason
    instead where there is no plan."""
    parallel, parallel_from = jobs, "snakemake --jobs"
    if not jobs:
        parallel = max(1, (cores or 1) // config["train"]["resources"]["cpus"])
        parallel_from = "snakemake --cores / train cpus"
    name = " + ".join(os.path.relpath(path) for path in configfiles)  # snakemake holds them absolute
    try:
        return plan_text(config, config["train"]["device"], parallel, name=name, parallel_from=parallel_from)
    except PlanError as error:
        return f"No plan of the grid's cost: {error}"


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_workflow_config(args.configfile)
        text = plan_text(config, args.device or config["train"]["device"], args.parallel, args.profile,
                         " + ".join(args.configfile))
    except PlanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(text)
    random_line = random_runs_line(config)
    if random_line:
        print(random_line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
