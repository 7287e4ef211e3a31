"""Env steps per second of the full training loop (env stepping, replay, updates), per suite and task.

    python -m benchmarks.train_loop --runs dmc_proprio:walker_walk atari100k:pong --size 1m --steps 3000 \\
        --json out.json --markdown out.md
    python -m benchmarks.train_loop --runs dmlab:rooms_watermaze crafter:reward --size 12m --max-seconds 600
    python -m benchmarks.train_loop --runs gym:CartPole-v1 bsuite:catch/0 --size 1m --steps 300 --threads 1 \\
        --set batch_size=4 batch_length=16 train_fill=64 train_ratio=32   # seconds: a check of the tool

Each run is the normal entry point, `python -m training.train`, in a fresh temporary run folder, so
the train ratio and number of envs are the suite's official ones unless --set changes them (any
training.train config key). Metrics are written every --log-every seconds; checkpoints only at the
end. The rates are read from the run's metrics.jsonl over a window that starts at the first line
written after the first update, so replay prefill and warm-up stay out: env steps/s (agent steps
x the suite's action repeat), agent (policy) steps/s, updates/s, replayed steps/s, and the
measured train ratio (replayed steps per agent step) next to the configured one, and where the
window's wall time went: each phase's share (update, policy, env, replay sample / write, logging,
checkpoint, other; training/phases.py), from the lines' time/ fractions. Peak memory is
the run's own usage/max_rss_gb (and usage/cuda_max_gb on CUDA), in MiB. --max-seconds stops a run
early (SIGTERM: it checkpoints and exits) and measures what it wrote until then.

A suite whose engine is not installed here (DMLab, Minecraft outside their containers) is
reported as skipped with the adapter's message; any other failure as failed with the log's
last line. Prints one line per run, then a Markdown table (also to --markdown); --json keeps
everything.
"""
import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import torch
import yaml

import envs
from benchmarks.train_step import machine_info, machine_line, markdown_table, write_results
from training.phases import PHASES

ROOT = pathlib.Path(__file__).resolve().parents[1]
MISSING_ENGINE = 3  # training.train's exit status when the suite's engine is not installed


def window_intervals(lines: list[dict], repeat: int) -> tuple[int, list[tuple[float, dict]]] | None:
    """(index of the window's first line, [(seconds, line)] for each later line); the window starts at the
    first line written after an update. None if that leaves no interval. `step` in the lines is agent
    steps x repeat."""
    start = next((i for i, line in enumerate(lines) if line.get("train/updates", 0) > 0), None)
    if start is None or start + 1 >= len(lines):
        return None
    # Each line's fps/agent_steps covers the interval since the line before it, so it gives that
    # interval's length; the lines carry no clock time of their own.
    return start, [((line["step"] - before["step"]) / repeat / line["fps/agent_steps"], line)
                   for before, line in zip(lines[start:], lines[start + 1:]) if line["step"] > before["step"]]


def window_rates(lines: list[dict], repeat: int, replayed_per_update: int) -> dict | None:
    """Rates over the metrics lines from the first one written after an update to the last;
    None if that leaves no interval."""
    window = window_intervals(lines, repeat)
    if window is None:
        return None
    start, intervals = window
    first, last = lines[start], lines[-1]
    seconds = sum(seconds for seconds, _ in intervals)
    agent_steps = (last["step"] - first["step"]) / repeat
    updates = last["train/updates"] - first["train/updates"]
    return dict(window_seconds=seconds, window_agent_steps=agent_steps, window_updates=updates,
                env_steps_per_second=agent_steps * repeat / seconds, agent_steps_per_second=agent_steps / seconds,
                updates_per_second=updates / seconds, replayed_steps_per_second=updates * replayed_per_update / seconds,
                train_ratio_measured=updates * replayed_per_update / agent_steps)


def window_phases(lines: list[dict], repeat: int) -> dict | None:
    """Each phase's share of the window's wall time (training/phases.py), its lines' time/ fractions
    weighted by their intervals' lengths, plus `other`: what no phase covers. None without a window
    or without time/ fractions in the lines (runs before they were logged)."""
    window = window_intervals(lines, repeat)
    if window is None or not all(f"time/{name}" in line for _, line in window[1] for name in PHASES):
        return None
    seconds = sum(seconds for seconds, _ in window[1])
    shares = {name: sum(s * line[f"time/{name}"] for s, line in window[1]) / seconds for name in PHASES}
    return {**shares, "other": max(1 - sum(shares.values()), 0.0)}


def failure(code: int, log: str) -> tuple[str, str]:
    """(status, reason) of a run that exited with an error, from its exit status and log."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return "skipped" if code == MISSING_ENGINE else "failed", lines[-1] if lines else "no output"


def train_command(suite: str, task: str, logdir: pathlib.Path, args) -> list[str]:
    command = [sys.executable, "-m", "training.train", "--suite", suite, "--task", task, "--logdir", str(logdir)]
    for flag in ("size", "steps", "device"):
        if getattr(args, flag) is not None:
            command += [f"--{flag}", str(getattr(args, flag))]
    settings = [f"log_every={args.log_every}", "save_every=0"]  # save_every 0: checkpoint only at the end
    if args.threads:
        settings.append(f"threads={args.threads}")
    return command + ["--set", *settings, *args.set]


def run_one(suite: str, task: str, args, tmp: str) -> dict:
    logdir = pathlib.Path(tempfile.mkdtemp(prefix=f"{suite}-", dir=tmp))
    row = dict(suite=suite, task=task, status="ok", reason="")
    start = time.monotonic()
    with open(logdir.with_suffix(".log"), "w+") as log:
        process = subprocess.Popen(train_command(suite, task, logdir, args), cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            code = process.wait(timeout=args.max_seconds)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)  # training.train checkpoints and exits with 143
            code = process.wait()
            row.update(status="stopped", reason=f"stopped after {args.max_seconds:g} s")
        log.seek(0)
        text = log.read()
    row["wall_seconds"] = time.monotonic() - start
    if code not in (0, 128 + signal.SIGTERM):
        row.update(zip(("status", "reason"), failure(code, text)))
        return row
    metrics = logdir / "metrics.jsonl"
    if not metrics.exists():  # stopped before its first metrics line
        row.update(status="no window", reason="no metrics line written: raise --max-seconds")
        return row
    config = yaml.safe_load((logdir / "config.yaml").read_text())
    provenance = json.loads((logdir / "provenance.json").read_text())
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    replayed_per_update = config["batch_size"] * config["batch_length"]
    row.update(size=config["size"], device=provenance["device"], device_name=provenance["device_name"],
               threads=provenance["torch_threads"], envs=config["envs"], repeat=envs.SUITES[suite].repeat,
               batch_size=config["batch_size"], batch_length=config["batch_length"],
               train_ratio_setting=config["train_ratio"], agent_steps=lines[-1]["step"] // envs.SUITES[suite].repeat,
               peak_rss_mib=max(line.get("usage/max_rss_gb", 0) for line in lines) * 1e9 / 2**20)
    if any("usage/cuda_max_gb" in line for line in lines):
        row["cuda_peak_mib"] = max(line.get("usage/cuda_max_gb", 0) for line in lines) * 1e9 / 2**20
    rates = window_rates(lines, row["repeat"], replayed_per_update)
    if rates is None:
        row.update(status="no window", reason="fewer than two metrics lines after the first update: raise --steps "
                                              "or lower --log-every")
    else:
        row.update(rates)
        row["time_fractions"] = window_phases(lines, row["repeat"])
    return row


def results_markdown(machine: dict, rows: list[dict]) -> str:
    columns = ["suite", "task", "size", "device", "threads", "envs", "env steps/s", "agent steps/s", "updates/s",
               "replayed steps/s", "train ratio (set)", "peak MiB", "window s"]
    cells = []
    for row in rows:
        if "env_steps_per_second" not in row:
            cells.append([row["suite"], row["task"], row.get("size", "–"), row.get("device", "–"),
                          row.get("threads", "–"), row.get("envs", "–"), f"{row['status']}: {row['reason']}",
                          *["–"] * 6])
            continue
        peak = f"{row['peak_rss_mib']:,.0f}" + (f" (GPU {row['cuda_peak_mib']:,.0f})" if "cuda_peak_mib" in row else "")
        cells.append([row["suite"], row["task"], row["size"], row["device"], row["threads"], row["envs"],
                      f"{row['env_steps_per_second']:,.1f}", f"{row['agent_steps_per_second']:,.1f}",
                      f"{row['updates_per_second']:.2f}", f"{row['replayed_steps_per_second']:,.0f}",
                      f"{row['train_ratio_measured']:.0f} ({row['train_ratio_setting']:g})", peak,
                      f"{row['window_seconds']:.0f}"])
    text = machine_line(machine) + "\n\n" + markdown_table(columns, cells)
    profiled = [row for row in rows if row.get("time_fractions")]
    if profiled:
        names = [*PHASES, "other"]
        text += ("\n\nWhere the wall time goes (% of the window; training/phases.py; on CUDA `update` is the "
                 "host's wait for the update). Last column: the share of all but the update if the update took "
                 "1/20 of its time (a GPU's) and the rest as long as here:\n\n" + markdown_table(
                     ["suite", "task", *[name.replace("_", " ") for name in names], "not update, update / 20"],
                     [[row["suite"], row["task"], *[f"{100 * row['time_fractions'][name]:.2f}" for name in names],
                       f"{100 * rest_share(row['time_fractions']['update'], 20):.1f}"] for row in profiled]))
    return text


def rest_share(update: float, speedup: float) -> float:
    """The share of wall time outside the update if the update ran `speedup` times faster and the rest
    took as long as before; update: the update's share now."""
    rest = 1 - update
    return rest / (update / speedup + rest) if rest > 0 else 0.0


def parse_run(text: str) -> tuple[str, str]:
    suite, colon, task = text.partition(":")
    if not colon or suite not in envs.SUITES:
        raise argparse.ArgumentTypeError(f"{text!r}: use suite:task with a suite of {', '.join(envs.SUITES)}")
    return suite, task


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", type=parse_run, required=True, metavar="SUITE:TASK")
    parser.add_argument("--size", help="model size (default: each suite's)")
    parser.add_argument("--steps", help="agent steps per run (default: each suite's budget; see --max-seconds)")
    parser.add_argument("--max-seconds", type=float, help="stop each run after this long and measure what it wrote")
    parser.add_argument("--device", help="auto (default), cpu, cuda, ...")
    parser.add_argument("--threads", type=int, help="torch CPU threads of each run (default: torch's)")
    parser.add_argument("--log-every", type=float, default=5.0, help="seconds between metrics lines")
    parser.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="more training.train config values, e.g. train_ratio=64 envs=4")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results here")
    parser.add_argument("--markdown", type=pathlib.Path, help="also write the Markdown table here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the runs inherit it (numpy, BLAS)

    device = args.device if args.device not in (None, "auto") else "cuda" if torch.cuda.is_available() else "cpu"
    machine = machine_info(device)
    print(f"# {machine}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for suite, task in args.runs:
            row = run_one(suite, task, args, tmp)
            rows.append(row)
            if "env_steps_per_second" in row:
                print(f"{suite}:{task} {row['env_steps_per_second']:.1f} env steps/s, "
                      f"{row['agent_steps_per_second']:.1f} agent steps/s, {row['updates_per_second']:.2f} updates/s, "
                      f"train ratio {row['train_ratio_measured']:.1f} (set {row['train_ratio_setting']:g}), "
                      f"peak {row['peak_rss_mib']:.0f} MiB, window {row['window_seconds']:.1f} s "
                      f"of {row['wall_seconds']:.1f} s", flush=True)
                if row.get("time_fractions"):
                    print("  time: " + ", ".join(f"{name} {100 * share:.1f}%"
                                                 for name, share in row["time_fractions"].items()), flush=True)
            else:
                print(f"{suite}:{task} {row['status']}: {row['reason']}", flush=True)
    write_results(results_markdown(machine, rows), machine, rows, args.markdown, args.json)


if __name__ == "__main__":
    main()
