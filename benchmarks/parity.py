"""Paired learning runs: our agent next to the official JAX DreamerV3, same task, same settings.

    # 1. run (each job pinned to one core; rerunning skips finished jobs)
    .venv/bin/python -m benchmarks.parity run --suite gym --task CartPole-v1 --steps 3000 \
        --train-ratio 128 --batch-size 8 --batch-length 32 --lr 1e-4 --warmup 0 --seeds 0 1 2 \
        --official /path/to/dreamerv3 --official-python /path/to/jax-venv/bin/python \
        --out benchmarks/out/parity/cartpole --cores 0 1
    # 2. curves, verdict, figure
    .venv/bin/python -m benchmarks.parity report --out benchmarks/out/parity/cartpole \
        --results benchmarks/results/parity_cartpole

Implementations (`--impls`): `ours` (our default two-hot mean), `ours-official-mean` (ours with
`twohot_mean=official`, the official order of operations), `official` (danijar/dreamerv3 at
e3f0224, unchanged, started by benchmarks/official_launcher.py in its own JAX venv) and
`official-mirrored-mean` (the official code with only its two-hot mean in our order).
Both sides run on CPU in float32 with one thread, with the same size, train ratio, batch
shape, learning rate, warm-up, steps and envs; everything else is each code's default.

Each run folder gets `parity.json` when its process ends (command, exit status, wall time);
`report` reads the `scores.jsonl` of every finished run folder (or of those `--seeds` and `--impls`
name; the official schema on both sides) and writes `<results>.json`, `<results>.md` and
`<results>.png`/`.pdf`: per-seed binned curves (thin lines), the mean with a bootstrap 95 % band over
seeds, and the verdict (see `verdict`). Unfinished runs are named in the Markdown and left out, so that a
report while seeds still run covers the finished ones.
"""
import argparse
import functools
import json
import os
import pickle
import shlex
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pipelines.runs import Run, read_score_lines
from pipelines.scoring import binned_curve, window_score
from training.checkpoint import write_atomic

IMPLS = ("ours", "ours-official-mean", "official", "official-mirrored-mean")
# Our suite -> (official config that carries the suite's settings, or None; official task prefix).
OFFICIAL_SUITE = {"gym": (None, "gym_"), "bsuite": ("bsuite", "bsuite_"), "dmc_proprio": ("dmc_proprio", "dmc_"),
                  "dmc_vision": ("dmc_vision", "dmc_"), "atari100k": ("atari100k", "atari100k_"),
                  "crafter": ("crafter", "crafter_")}  # fmt: skip
# Our metrics.jsonl key -> the official one, compared over the final window (fidelity checks).
METRICS = {"loss/rew": "train/loss/rew", "loss/con": "train/loss/con", "loss/dyn": "train/loss/dyn",
           "loss/rep": "train/loss/rep", "loss/value": "train/loss/value", "loss/repval": "train/loss/repval",
           "loss/policy": "train/loss/policy", "adv_std": "train/adv_std", "adv_mag": "train/adv_mag",
           "ret": "train/ret", "ret_min": "train/ret_min", "ret_max": "train/ret_max", "value": "train/val",
           "reward_pred": "train/rew", "policy_entropy": "train/ent/action", "dyn_ent": "train/dyn_ent",
           "rep_ent": "train/rep_ent", "opt/grad_norm": "train/opt/grad_norm", "adv_mag_live": "train/adv_mag_live",
           "policy_entropy_live": "train/ent_live/action", "past_end/frac": "train/past_end/frac",
           "past_end/reward_mag": "train/past_end/reward_mag", "past_end/reward_max": "train/past_end/reward_max",
           "past_end/cont": "train/past_end/cont", "retnorm/scale": "train/retnorm/scale"}  # fmt: skip
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}  # fmt: skip


@dataclass
class Settings:
    """What both implementations share; everything else is each code's default."""
    suite: str
    task: str
    steps: int  # agent steps (policy steps summed over envs)
    train_ratio: float
    envs: int = 1
    size: str = "1m"
    batch_size: int = 16
    batch_length: int = 64
    lr: float = 4e-5
    warmup: int = 1000


def our_command(settings: Settings, seed: int, logdir: Path, impl: str) -> list[str]:
    """Our training run with the pair's settings. actor_unimix=false: e3f0224 applies no uniform mix to
    its discrete policy (our default mixes in 1 %, as the 2024 code did; README, "The agent").
    A checkpoint every 60 s as on the official side, and resume_stateful_env so that a bsuite run resumes
    as the official one does (its learning curve continues; bsuite's own accounting restarts)."""
    s = settings
    mean_order = "official" if impl == "ours-official-mean" else "mirrored"
    return [sys.executable, "-m", "training.train", "--suite", s.suite, "--task", s.task, "--seed", str(seed),
            "--logdir", str(logdir), "--steps", str(s.steps), "--train-ratio", f"{s.train_ratio:g}",
            "--envs", str(s.envs), "--size", s.size, "--device", "cpu",
            "--set", "threads=1", "precision=float32", "save_every=60", "resume_stateful_env=true",
            f"batch_size={s.batch_size}",
            f"batch_length={s.batch_length}", f"train_fill={s.batch_size * s.batch_length}", f"lr={s.lr:g}",
            f"warmup={s.warmup}", f"twohot_mean={mean_order}", "log_every=30",
            "actor_unimix=false"]  # fmt: skip


def official_command(settings: Settings, seed: int, logdir: Path, impl: str, official: Path, python: str):
    s = settings
    config, prefix = OFFICIAL_SUITE[s.suite]
    launcher = Path(__file__).with_name("official_launcher.py")
    # The official loop trains once the replay holds batch_size x batch_length steps, as ours
    # does with train_fill set to that product. Both codes write train metrics every 30 s instead of 120 s,
    # so that short runs have metrics in their final window and the two metric curves have the same grain.
    # A checkpoint every 60 s (the official loop saves on a clock, not at its end), for resuming an
    # interrupted run and for benchmarks/official_crosscheck.py; the bsuite config's save_every -1 would save
    # after every step.
    return [python, str(launcher), "--official", str(official),
            "--twohot-mean", "mirrored" if impl == "official-mirrored-mean" else "official",
            *(["--blank-log-image"] if s.suite == "dmc_proprio" else []), "--",
            "--configs", *([config] if config else []), f"size{s.size}", "--task", prefix + s.task,
            "--seed", str(seed), "--logdir", str(logdir), "--run.steps", str(s.steps),
            "--run.train_ratio", f"{s.train_ratio:g}", "--run.envs", str(s.envs), "--batch_size", str(s.batch_size),
            "--batch_length", str(s.batch_length), "--agent.opt.lr", f"{s.lr:g}", "--agent.opt.warmup", str(s.warmup),
            "--jax.platform", "cpu", "--jax.compute_dtype", "float32", "--logger.outputs", "jsonl",
            "--run.save_every", "60", "--run.log_every", "30"]  # fmt: skip


def jobs(settings: Settings, impls, seeds, out: Path, official: Path | None, python: str | None):
    """(run folder, command) of every run; folders are <out>/<impl>-<seed>, absolute (the official
    launcher changes into the official checkout, where a relative --logdir would land)."""
    result, out = [], out.resolve()
    for seed in seeds:  # seed by seed, so that the first finished runs already pair up
        for impl in impls:
            logdir = out / f"{impl}-{seed}"
            if impl.startswith("ours"):
                command = our_command(settings, seed, logdir, impl)
            else:
                command = official_command(settings, seed, logdir, impl, official, python)
            result.append((logdir, command))
    return result


def official_checkpoint_step(logdir: Path) -> int | None:
    """Agent step of an official run's newest complete checkpoint (the one its loop resumes from), or None."""
    latest = logdir / "ckpt" / "latest"
    if not latest.exists():
        return None
    folder = logdir / "ckpt" / latest.read_text().strip()
    if not (folder / "done").exists():
        return None
    return int(pickle.loads((folder / "step.pkl").read_bytes()))  # a plain int


def cut_official_logs(logdir: Path, step: int):
    """The official loop appends to its jsonl logs and resumes from its checkpoint: keep only the lines up
    to the checkpoint's step (and none cut off by the kill), so that no step is written twice. (Episodes
    that ended after its last log write but before the checkpoint are lost: it writes every 30 s.)"""
    for name in ("scores.jsonl", "metrics.jsonl"):
        path = logdir / name
        if not path.exists():
            continue
        kept = []
        for line in path.read_text(errors="replace").splitlines(keepends=True):
            try:
                if line.endswith("\n") and json.loads(line)["step"] <= step:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                pass
        write_atomic(path, "".join(kept).encode())


def prepare_resume(logdir: Path) -> bool:
    """Ready an unfinished run folder to continue; False when it must start from scratch. Ours cuts its own
    logs back to its checkpoint; an official run without a complete checkpoint starts again."""
    if not logdir.exists():
        return False
    if not logdir.name.startswith("official"):
        return True  # training.train resumes from its newest good checkpoint (or moves a failed start aside)
    step = official_checkpoint_step(logdir)
    if step is None:
        return False
    cut_official_logs(logdir, step)
    return True


def finished(logdir: Path) -> bool:
    """`run_jobs` writes parity.json into a run folder when its process has succeeded."""
    return (logdir / "parity.json").exists()


def run_jobs(job_list, cores: list[int], log=None):
    """One process per core at a time, each pinned to its core; a folder with parity.json is done. An
    unfinished folder (the machine stopped, the process was killed) continues from its last checkpoint:
    both codes save one every 60 s. <out>/<run>.attempts.json keeps the wall time of every start."""
    log = log or functools.partial(print, flush=True)  # lines appear as they happen in a redirected log
    todo = [(logdir, command) for logdir, command in job_list if not finished(logdir)]
    log(f"{len(job_list) - len(todo)} of {len(job_list)} runs already finished; {len(todo)} to run on cores {cores}")
    running = {}  # core -> (process, logdir, command, start, attempts, attempts_file)
    while todo or running:
        for core in cores:
            if core not in running and todo:
                logdir, command = todo.pop(0)
                attempts_file = logdir.parent / f"{logdir.name}.attempts.json"
                resume = prepare_resume(logdir)
                if not resume:
                    subprocess.run(["rm", "-rf", str(logdir)], check=True)
                attempts = json.loads(attempts_file.read_text()) if resume and attempts_file.exists() else []
                attempts.append({"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "wall_seconds": 0,
                                 "returncode": None})
                logdir.parent.mkdir(parents=True, exist_ok=True)
                output = open(logdir.parent / f"{logdir.name}.log", "a" if resume else "w")
                # Our compiled graphs kept beside the runs (as the workflow keeps results/compile_cache), so
                # that a resumed or later run loads them instead of compiling again (about 17 minutes).
                cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR", str(logdir.parent / "compile_cache"))
                process = subprocess.Popen(["taskset", "-c", str(core), *command], stdout=output,
                                           stderr=subprocess.STDOUT,
                                           env={**os.environ, **ONE_THREAD, "TORCHINDUCTOR_CACHE_DIR": cache},
                                           cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
                running[core] = (process, logdir, command, time.monotonic(), attempts, attempts_file)
                log(f"core {core}: {'resumed' if resume else 'started'} {logdir.name}")
        time.sleep(5)
        for core, (process, logdir, command, start, attempts, attempts_file) in list(running.items()):
            attempts[-1]["wall_seconds"] = round(time.monotonic() - start)
            attempts[-1]["returncode"] = process.poll()
            write_atomic(attempts_file, json.dumps(attempts, indent=1).encode())
            if process.returncode is None:
                continue
            wall = sum(attempt["wall_seconds"] for attempt in attempts)
            record = {"command": shlex.join(command), "returncode": process.returncode, "wall_seconds": wall,
                      "attempts": len(attempts)}
            if process.returncode == 0:
                (logdir / "parity.json").write_text(json.dumps(record, indent=1))
            log(f"core {core}: {logdir.name} ended with {process.returncode} after {wall / 60:.1f} min "
                f"({len(attempts)} start{'s' if len(attempts) > 1 else ''})")
            del running[core]


# --- Statistics ---


def bootstrap_mean_interval(values: np.ndarray, reps: int, rng, axis: int = 0):
    """95 % percentile interval of the mean over `axis` (seeds), all replicates at once.
    values: (seeds, ...) -> (low, high), each (...)."""
    count = values.shape[axis]
    picks = rng.integers(0, count, size=(reps, count))  # (reps, seeds)
    with warnings.catch_warnings():  # a bin where the picked seeds have no episode stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(np.take(values, picks, axis=axis), axis=axis + 1)  # (reps, ...)
    return np.nanpercentile(means, 2.5, axis=0), np.nanpercentile(means, 97.5, axis=0)


def difference_interval(a: np.ndarray, b: np.ndarray, reps: int, rng):
    """mean(a) - mean(b) and its 95 % bootstrap interval, seeds resampled within each side."""
    means_a = a[rng.integers(0, len(a), size=(reps, len(a)))].mean(1)
    means_b = b[rng.integers(0, len(b), size=(reps, len(b)))].mean(1)
    differences = means_a - means_b
    return float(a.mean() - b.mean()), float(np.percentile(differences, 2.5)), float(np.percentile(differences, 97.5))


def fraction_inside(mean_curve: np.ndarray, seed_curves: np.ndarray) -> float:
    """Share of bins where one side's mean curve (bins,) lies within the other's seed range
    (seeds, bins), over the bins where both have data."""
    valid = np.isfinite(mean_curve) & np.isfinite(seed_curves).all(0)
    if not valid.any():
        return float("nan")
    low, high = seed_curves[:, valid].min(0), seed_curves[:, valid].max(0)
    return float(((mean_curve[valid] >= low) & (mean_curve[valid] <= high)).mean())


INSIDE = 0.8  # a curve "lies inside" the other's seed spread in at least this share of bins
MIN_SEEDS = 2  # per implementation, for an interval and a seed range


def verdict(final_a: np.ndarray, final_b: np.ndarray, curves_a: np.ndarray, curves_b: np.ndarray,
            reps: int = 10_000, seed: int = 0) -> dict:
    """a vs b: the difference of final-window means with a 95 % interval, and whether each
    mean curve lies inside the other's seed spread (`INSIDE` of the bins or more). With one seed
    on a side there is no spread to resample or lie inside: only the difference, `consistent` None."""
    if min(len(final_a), len(final_b)) < MIN_SEEDS:
        return {"difference": float(final_a.mean() - final_b.mean()), "ci_low": float("nan"), "ci_high": float("nan"),
                "interval_contains_zero": None, "a_inside_b": float("nan"), "b_inside_a": float("nan"),
                "consistent": None, "seeds": [len(final_a), len(final_b)]}  # fmt: skip
    rng = np.random.default_rng(seed)
    difference, low, high = difference_interval(final_a, final_b, reps, rng)
    a_in_b = fraction_inside(np.nanmean(curves_a, 0), curves_b)
    b_in_a = fraction_inside(np.nanmean(curves_b, 0), curves_a)
    return {"difference": difference, "ci_low": low, "ci_high": high, "interval_contains_zero": low <= 0 <= high,
            "a_inside_b": a_in_b, "b_inside_a": b_in_a,
            "consistent": bool(low <= 0 <= high and a_in_b >= INSIDE and b_in_a >= INSIDE),
            "seeds": [len(final_a), len(final_b)]}  # fmt: skip


# --- Report ---


def load_runs(out: Path, settings: Settings, seeds=None, impls=None) -> tuple[dict[str, list[Run]], list[str]]:
    """impl -> its finished runs (with a scores.jsonl), from the folders <out>/<impl>-<seed>, and a label for
    each unfinished one; only the given seeds and implementations when named."""
    runs, unfinished, problems = {}, [], []
    for folder in sorted(out.iterdir()):
        impl, _, seed = folder.name.rpartition("-")
        if not folder.is_dir() or impl not in IMPLS or not (folder / "scores.jsonl").exists():
            continue
        if (seeds is not None and int(seed) not in seeds) or (impls is not None and impl not in impls):
            continue
        lines = read_score_lines(folder / "scores.jsonl", problems)
        if not finished(folder):
            unfinished.append(f"{folder.name} ({max((line['step'] for line in lines), default=0):,.0f} of "
                              f"{settings.steps:,} steps)")
            continue
        runs.setdefault(impl, []).append(Run(
            suite=settings.suite, task=settings.task, method=impl, seed=int(seed), source=impl,
            steps=np.array([float(line["step"]) for line in lines]),
            scores=np.array([float(line["episode/score"]) for line in lines]),
            budget=float(settings.steps)))  # repeat 1 on both sides for these suites
    for problem in problems:
        print(problem, file=sys.stderr)
    return runs, unfinished


def run_summary(run: Run, folder: Path, window: float) -> dict:
    """One finished run (load_runs leaves the others out), with the wall time and command from its parity.json."""
    record = json.loads((folder / "parity.json").read_text())
    return {"seed": run.seed, "episodes": len(run.scores), "last_step": float(run.steps.max()) if len(run.steps) else 0,
            "final_window_mean": window_score(run, window), "finished": True,
            "wall_seconds": record.get("wall_seconds"), "command": record.get("command")}  # fmt: skip


def metric_lines(folder: Path, impl: str) -> list[tuple[float, dict]]:
    """(step, {our METRICS name: value}) for each line of a run's metrics.jsonl that has any of them."""
    path, lines = folder / "metrics.jsonl", []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        values = {}
        for ours, official in METRICS.items():
            value = record.get(official if impl.startswith("official") else ours)
            if isinstance(value, (int, float)) and np.isfinite(value):
                values[ours] = float(value)
        if values and isinstance(record.get("step"), (int, float)):
            lines.append((float(record["step"]), values))
    return lines


def final_metrics(lines: list[tuple[float, dict]], start: float) -> dict:
    """Mean of each METRICS value over the `metric_lines` logged at step >= start."""
    sums, counts = {}, {}
    for step, values in lines:
        if step < start:
            continue
        for key, value in values.items():
            sums[key], counts[key] = sums.get(key, 0.0) + value, counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sums}


def metric_curves(lines: list[tuple[float, dict]], impl: str, settings: Settings, bins: int) -> dict:
    """Each METRICS value of `metric_lines` binned over the steps like the score curves: key -> (bins,),
    NaN where a bin has no line. Where the two codes' curves part, these show which quantity parts first."""
    curves = {}
    for key in METRICS:
        points = np.array([(step, values[key]) for step, values in lines if key in values])  # (lines, 2)
        if len(points):
            run = Run(suite=settings.suite, task=settings.task, method=impl, seed=0, source=impl,
                      steps=points[:, 0], scores=points[:, 1], budget=float(settings.steps))  # fmt: skip
            curves[key] = binned_curve(run, bins)[1]
    return curves


def reused_entries(paths: list[Path], impl: str, settings: Settings, bins: int, window: float) -> list:
    """`impl`'s entries in earlier reports (results JSON files) of the same settings, bins and window:
    [(path, implementation entry)] for the files that have `impl` runs (at least one must)."""
    entries = []
    for path in paths:
        earlier = json.loads(Path(path).read_text())
        ours = {"settings": asdict(settings), "bins": bins, "window_fraction": window}
        theirs = {key: earlier.get(key) for key in ours}
        if theirs != ours:
            raise SystemExit(f"{path} was reported with {theirs}, this report uses {ours}: reuse only runs "
                             "of the same settings, bins and window")  # fmt: skip
        if impl in earlier["implementations"]:
            if "seed_curves" not in earlier["implementations"][impl]:
                raise SystemExit(f"{path} was written before reports kept per-seed curves: its runs cannot be reused")
            entries.append((str(path), earlier["implementations"][impl]))
    if not entries:
        raise SystemExit(f"none of {', '.join(map(str, paths))} has {impl} runs")
    return entries


def joined_implementation(impl: str, entries: list):
    """One implementation entry from several [(source, entry)]: the run folders of this report (source None)
    and earlier reports' entries (source: their results file). Per-seed curves, final-window means and run
    rows as each source wrote them; metric curves and final metrics averaged over the sources weighted by
    their seed counts. -> (entry, finals, curves)."""
    seeds = [run["seed"] for _, entry in entries for run in entry["runs"]]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"the joined {impl} runs repeat a seed ({sorted(seeds)}): name each run once")
    curves = np.array([curve for _, entry in entries for curve in entry["seed_curves"]], dtype=float)  # (seeds, bins)
    finals = np.array([run["final_window_mean"] for _, entry in entries for run in entry["runs"]])
    weights = np.array([len(entry["runs"]) for _, entry in entries], dtype=float)
    low, high = bootstrap_mean_interval(curves, 10_000, np.random.default_rng(0))

    def weighted(name: str) -> dict:  # key -> seed-weighted mean of the sources' values (NaN-aware per bin)
        keys = [key for key in METRICS if any(key in entry.get(name, {}) for _, entry in entries)]
        result = {}
        for key in keys:
            values = [(np.array(entry[name][key], dtype=float), w) for (_, entry), w in zip(entries, weights)
                      if key in entry.get(name, {})]  # fmt: skip
            stacked = np.stack([v for v, _ in values])  # (sources,) or (sources, bins)
            w = np.array([w for _, w in values]).reshape(-1, *[1] * (stacked.ndim - 1))
            w = np.where(np.isfinite(stacked), w, 0.0)  # a source without a value in a bin has no weight there
            with np.errstate(invalid="ignore"):
                mean = (np.nan_to_num(stacked) * w).sum(0) / w.sum(0)
            result[key] = mean.tolist() if mean.ndim else float(mean)
        return result

    runs = [{**run, "results_file": source} if source else run for source, entry in entries for run in entry["runs"]]
    entry = {"x": entries[0][1]["x"], "mean": np.nanmean(curves, 0).tolist(), "band_low": low.tolist(),
             "band_high": high.tolist(), "seed_curves": curves.tolist(), "runs": runs,
             "final_metrics": weighted("final_metrics"), "metric_curves": weighted("metric_curves")}  # fmt: skip
    return entry, finals, curves


def report(out: Path, results: Path, settings: Settings, bins: int, window: float, random_score: float | None,
           reuse: list[Path] = (), reuse_impls=("official",), seeds=None, impls=None):
    """`reuse`: earlier results files whose runs of `reuse_impls` join this report instead of running them
    again (e.g. the official runs of the same settings, when only our side changed; or seeds 0 and 1 of both
    codes, when a lost seed 2 ran again), beside any run folders of other seeds. `seeds`, `impls`: only these runs
    (default: every run folder). Unfinished runs (no parity.json yet) are listed, but stay out of the curves,
    the train metrics and the verdict: their final window is partial or missing."""
    runs, unfinished = load_runs(out, settings, seeds, impls)
    if unfinished:
        print(f"unfinished, left out of the report: {', '.join(unfinished)}", file=sys.stderr)
    if not runs:
        raise SystemExit(f"no finished run folders with scores.jsonl under {out}"
                         + (f" (unfinished: {', '.join(unfinished)})" if unfinished else ""))
    data = {"settings": asdict(settings), "bins": bins, "window_fraction": window, "random_policy": random_score,
            "implementations": {}, "verdicts": {}, "reused": {},
            "unfinished": unfinished}
    curves, finals = {}, {}
    for impl, impl_runs in runs.items():
        xs = binned_curve(impl_runs[0], bins)[0]
        curves[impl] = np.stack([binned_curve(run, bins)[1] for run in impl_runs])  # (seeds, bins)
        finals[impl] = np.array([window_score(run, window) for run in impl_runs])
        low, high = bootstrap_mean_interval(curves[impl], 10_000, np.random.default_rng(0))
        data["implementations"][impl] = {
            "x": xs.tolist(), "mean": np.nanmean(curves[impl], 0).tolist(), "band_low": low.tolist(),
            "band_high": high.tolist(), "seed_curves": curves[impl].tolist(),
            "runs": [run_summary(run, out / f"{impl}-{run.seed}", window) for run in impl_runs]}  # fmt: skip
    start = settings.steps * (1 - window)
    for impl, impl_runs in runs.items():
        lines = [metric_lines(out / f"{impl}-{run.seed}", impl) for run in impl_runs]  # one list per seed
        per_seed = [final_metrics(seed_lines, start) for seed_lines in lines]
        data["implementations"][impl]["final_metrics"] = {
            key: float(np.mean([seed[key] for seed in per_seed if key in seed]))
            for key in METRICS if any(key in seed for seed in per_seed)}  # fmt: skip
        per_seed = [metric_curves(seed_lines, impl, settings, bins) for seed_lines in lines]
        with warnings.catch_warnings():  # a bin without a metrics line in any seed stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            data["implementations"][impl]["metric_curves"] = {
                key: np.nanmean(np.stack([seed[key] for seed in per_seed if key in seed]), 0).tolist()
                for key in METRICS if any(key in seed for seed in per_seed)}  # fmt: skip
    for impl in reuse_impls if reuse else ():
        earlier = reused_entries(reuse, impl, settings, bins, window)
        here = [(None, data["implementations"][impl])] if impl in runs else []
        data["implementations"][impl], finals[impl], curves[impl] = joined_implementation(impl, earlier + here)
        data["reused"][impl] = [source for source, _ in earlier]
    for impl in data["implementations"]:
        if impl != "official" and "official" in data["implementations"]:
            data["verdicts"][f"{impl} vs official"] = verdict(finals[impl], finals["official"], curves[impl],
                                                              curves["official"])
    results.parent.mkdir(parents=True, exist_ok=True)
    results.with_suffix(".json").write_text(json.dumps(data, indent=1, allow_nan=True))
    results.with_suffix(".md").write_text(markdown(data))
    figure(data, results)
    metrics_figure(data, results)
    print(markdown(data))


def markdown(data: dict) -> str:
    s = data["settings"]
    lines = [f"### {s['suite']} {s['task']}: {s['steps']:,} agent steps, train ratio {s['train_ratio']:g}, "
             f"size {s['size']}, batch {s['batch_size']}x{s['batch_length']}, lr {s['lr']:g}, warm-up {s['warmup']}, "
             f"{s['envs']} env(s)", "",
             f"Final window: mean episode score over the last {data['window_fraction']:.0%} of the steps."
             + (f" Random policy: {data['random_policy']:.2f}." if data["random_policy"] is not None else ""), "",
             "| implementation | seed | final-window mean | episodes | last step | wall (min) |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for impl, entry in data["implementations"].items():
        for run in entry["runs"]:
            wall = f"{run['wall_seconds'] / 60:.1f}" if run["wall_seconds"] else "unfinished"
            lines.append(f"| {impl} | {run['seed']} | {run['final_window_mean']:.2f} | {run['episodes']} | "
                         f"{run['last_step']:,.0f} | {wall} |")
    if data.get("unfinished"):
        lines += ["", f"Unfinished, left out of the curves and the verdict: {', '.join(data['unfinished'])}."]
    for impl, paths in data.get("reused", {}).items():
        seeds = [str(run["seed"]) for run in data["implementations"][impl]["runs"] if "results_file" in run]
        lines += ["", f"The {impl} runs of seed{'s' * (len(seeds) > 1)} {', '.join(seeds)} are reused from earlier "
                  f"reports of the same settings: {', '.join(paths)}."]
    if data["verdicts"]:
        lines += ["", "| comparison | difference of final-window means [95 % CI] | a inside b's seed range | "
                  "b inside a's | consistent |", "|---|---|---:|---:|---|"]  # fmt: skip
        for name, v in data["verdicts"].items():
            if v["consistent"] is None:
                seeds = " + ".join(map(str, v["seeds"]))
                lines.append(f"| {name} | {v['difference']:+.2f} [no interval: {seeds} seeds, needs {MIN_SEEDS}+ "
                             f"per implementation] | – | – | n/a |")
                continue
            lines.append(f"| {name} | {v['difference']:+.2f} [{v['ci_low']:+.2f}, {v['ci_high']:+.2f}] | "
                         f"{v['a_inside_b']:.0%} | {v['b_inside_a']:.0%} | {'yes' if v['consistent'] else 'no'} |")
    impls = list(data["implementations"])
    keys = [key for key in METRICS if any(key in data["implementations"][impl]["final_metrics"] for impl in impls)]
    if keys:
        lines += ["", "Train metrics over the final window (mean over seeds; official names in "
                  "benchmarks/parity.py `METRICS`):", "", "| metric | " + " | ".join(impls) + " |",
                  "|---|" + "---:|" * len(impls)]  # fmt: skip
        for key in keys:
            values = [data["implementations"][impl]["final_metrics"].get(key) for impl in impls]
            lines.append(f"| {key} | " + " | ".join("–" if v is None else f"{v:.4g}" for v in values) + " |")
    return "\n".join(lines) + "\n"


def figure(data: dict, results: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipelines.plots import save

    figure, axis = plt.subplots(figsize=(6, 4))
    for index, (impl, entry) in enumerate(data["implementations"].items()):
        colour = f"C{index}"
        xs = np.array(entry["x"])
        axis.fill_between(xs, entry["band_low"], entry["band_high"], color=colour, alpha=0.2, lw=0)
        for seed_curve in entry["seed_curves"]:  # NaN bins (no episode ended there) leave gaps
            axis.plot(xs, seed_curve, color=colour, lw=0.6, alpha=0.5)
        axis.plot(xs, entry["mean"], color=colour, lw=2, label=f"{impl} ({len(entry['runs'])} seeds)")
    if data["random_policy"] is not None:
        axis.axhline(data["random_policy"], color="grey", ls="--", lw=1, label="random policy")
    s = data["settings"]
    axis.set(xlabel="env steps", ylabel="episode score", title=f"{s['suite']} {s['task']}, ratio {s['train_ratio']:g}")
    axis.legend(fontsize=8)
    save(figure, results.parent, results.name)


FIGURE_METRICS = ("loss/rew", "loss/con", "loss/dyn", "loss/value", "ret", "adv_std", "policy_entropy",
                  "opt/grad_norm")  # fmt: skip


def metrics_figure(data: dict, results: Path):
    """<results>_metrics.png: train metrics over the steps, mean over each code's seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipelines.plots import save

    entries = data["implementations"].values()
    keys = [key for key in FIGURE_METRICS if any(key in entry.get("metric_curves", {}) for entry in entries)]
    if not keys:
        return
    columns = 4
    figure, axes = plt.subplots((len(keys) + columns - 1) // columns, columns, figsize=(12, 5), squeeze=False)
    for axis, key in zip(axes.flat, keys):
        for index, (impl, entry) in enumerate(data["implementations"].items()):
            if key in entry.get("metric_curves", {}):
                xs, ys = np.array(entry["x"]), np.array(entry["metric_curves"][key], dtype=float)
                logged = np.isfinite(ys)  # bins without a metrics line are bridged, not left as gaps
                axis.plot(xs[logged], ys[logged], color=f"C{index}", lw=1.5, marker=".",
                          label=f"{impl} ({len(entry['runs'])} seeds)")  # fmt: skip
        axis.set(title=key, xlabel="env steps")
    for axis in axes.flat[len(keys):]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    save(figure, results.parent, results.name + "_metrics")


def settings_from(args) -> Settings:
    return Settings(suite=args.suite, task=args.task, steps=int(args.steps), train_ratio=args.train_ratio,
                    envs=args.envs, size=args.size, batch_size=args.batch_size, batch_length=args.batch_length,
                    lr=args.lr, warmup=args.warmup)  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("run", "report"))
    parser.add_argument("--suite", required=True, choices=sorted(OFFICIAL_SUITE))
    parser.add_argument("--task", required=True)
    parser.add_argument("--steps", type=float, required=True, help="agent steps per run")
    parser.add_argument("--train-ratio", type=float, required=True)
    parser.add_argument("--envs", type=int, default=1)
    parser.add_argument("--size", default="1m")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batch-length", type=int, default=64)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="run: the seeds (default 0 1 2); report: only these seeds (default: every run folder)")
    parser.add_argument("--impls", nargs="+", choices=IMPLS,
                        help="run: the implementations (default ours official); report: only these (default: all)")
    parser.add_argument("--out", type=Path, required=True, help="folder of the run folders <impl>-<seed>")
    parser.add_argument("--official", type=Path, default=os.environ.get("DREAMERV3_OFFICIAL"),
                        help="danijar/dreamerv3 checkout at e3f0224 (or $DREAMERV3_OFFICIAL)")
    parser.add_argument("--official-python", default=os.environ.get("DREAMERV3_OFFICIAL_PYTHON"),
                        help="python of the official code's JAX venv (or $DREAMERV3_OFFICIAL_PYTHON)")
    parser.add_argument("--cores", type=int, nargs="+", default=[0], help="CPU cores; one run per core")
    parser.add_argument("--results", type=Path, help="report: output path without suffix")
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--window", type=float, default=0.2, help="final window as a fraction of the steps")
    parser.add_argument("--reuse", type=Path, nargs="+", default=[],
                        help="report: earlier results JSON files (same settings) whose --reuse-impl runs join this "
                        "one, beside run folders of other seeds")
    parser.add_argument("--reuse-impl", nargs="+", choices=IMPLS, default=["official"])
    args = parser.parse_args(argv)
    settings = settings_from(args)
    if args.command == "run":
        args.impls, args.seeds = args.impls or ["ours", "official"], args.seeds or [0, 1, 2]
        if any(impl.startswith("official") for impl in args.impls):
            if not args.official or not (Path(args.official) / "dreamerv3" / "main.py").exists():
                parser.error("--official must name a danijar/dreamerv3 checkout (dreamerv3/main.py not found)")
            if not args.official_python or not Path(args.official_python).exists():
                parser.error("--official-python must name the python of the official code's JAX venv "
                             "(see README: Paired runs against the official code)")
        run_jobs(jobs(settings, args.impls, args.seeds, args.out, args.official, args.official_python), args.cores)
    else:
        if not args.results:
            parser.error("report needs --results PATH (without suffix)")
        from training.random_policy import random_policy_score

        report(args.out, args.results, settings, args.bins, args.window,
               random_policy_score(settings.suite, settings.task, seed=0), args.reuse, args.reuse_impl, args.seeds,
               args.impls)


if __name__ == "__main__":
    main()
