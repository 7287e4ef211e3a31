"""Load the project's own run folders into `Run` records, the form every score source takes.

A run folder is self-describing: `config.yaml` says which run it is (suite, task, seed,
size, train_ratio, steps, repeat); `scores.jsonl` holds one JSON line per finished episode.
A folder whose config.yaml names a `method` (e.g. `random`, training/random_policy.py) is a
baseline played through our env adapters and logger: it keeps that method name and has no
model size or train ratio, as the published runs of other methods have none.
The suite's row in the registry adds how the score files name its tasks and its report budget.
"""
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from envs import SUITES


@dataclass
class Run:
    """One training run of one method on one task: per-episode x (logged steps) and score."""
    suite: str
    task: str  # reference task id, e.g. atari_pong, dmc_walker_walk, bsuite_catch/0
    method: str
    seed: int
    steps: np.ndarray  # (episodes,) logged step at each episode end
    scores: np.ndarray  # (episodes,) episode return
    size: str = ""  # empty for reference runs
    train_ratio: float = math.nan
    budget: float = math.nan  # last logged step that counts; NaN = the largest x of the run's group
    episode_logs: dict = field(default_factory=dict)  # name -> (episodes,) per-episode `log/` values
    source: str = "reference"  # published score files; "ours": our agent's runs; "baseline": e.g. random


def reference_task(suite: str, task: str) -> str:
    """Our (suite, short task) as the reference files name it."""
    return SUITES[suite].task_prefix + task


def read_score_lines(path: Path, problems: list) -> list[dict]:
    """Episodes of one scores.jsonl. Lines that are not UTF-8 JSON objects with a finite numeric step and
    score go to `problems` (file:line and reason) and are skipped; so do `log/` values that are not finite
    numbers (the episode stays, without that value). Nothing in the file can make this raise."""
    episodes = []
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, 1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                record = json.loads(line)
                step, score = float(record["step"]), float(record["episode/score"])
            except (ValueError, KeyError, TypeError, IndexError, RecursionError) as error:
                reason = " ".join(str(error).split())[:200]
                problems.append(f"{where}: skipped malformed line ({type(error).__name__}: {reason})")
                continue
            if not (math.isfinite(step) and math.isfinite(score)):
                problems.append(f"{where}: skipped line with a non-finite step or score")
                continue
            for key in [key for key in record if key.startswith("log/")]:
                value = record[key]
                try:
                    number_value = float(value)
                except (ValueError, TypeError):
                    number_value = math.nan
                if isinstance(value, bool) or not math.isfinite(number_value):
                    problems.append(f"{where}: skipped {key}, not a finite number ({str(value)[:50]!r})")
                    del record[key]
                else:
                    record[key] = number_value
            episodes.append({**record, "step": step, "episode/score": score})
    if not episodes:
        problems.append(f"{path}: no readable episode (empty file or none finished yet)")
    return episodes


def load_run_folder(folder: Path, method: str, problems: list):
    """A Run from one run folder, or None (reported) when it cannot say which run it is. `method`: the name of
    our agent's runs (the workflow config's); a baseline's folder names its own."""
    folder = Path(folder)
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text())
        suite, task, seed, steps = config["suite"], str(config["task"]), int(config["seed"]), float(config["steps"])
        if "method" in config:  # a baseline played by our code (training/random_policy.py): no model
            method, source, size, ratio = str(config["method"]), "baseline", "", math.nan
        else:
            source, size, ratio = "ours", str(config["size"]), float(config["train_ratio"])
        # Run folders written before the repeat was recorded ran the suite's official one.
        repeat = float(config.get("repeat", SUITES[suite].repeat))
        if suite not in SUITES:
            raise ValueError(f"unknown suite {suite!r}")
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as error:
        reason = " ".join(str(error).split())[:200]  # one line in problems.txt
        problems.append(f"{folder / 'config.yaml'}: skipped run, unreadable config ({type(error).__name__}: "
                        f"{reason})")
        return None
    scores_path = folder / "scores.jsonl"
    if scores_path.exists():
        episodes = read_score_lines(scores_path, problems)
    else:
        episodes = []
        problems.append(f"{scores_path}: missing (no episode finished yet?)")
    log_keys = sorted({key for episode in episodes for key in episode if key.startswith("log/")})
    budget = steps * repeat
    if SUITES[suite].report_budget:
        budget = min(budget, float(SUITES[suite].report_budget))
    return Run(
        suite=suite, task=reference_task(suite, task), method=method, seed=seed, size=size,
        train_ratio=ratio, budget=budget, source=source,
        steps=np.array([float(e["step"]) for e in episodes]),
        scores=np.array([float(e["episode/score"]) for e in episodes]),
        episode_logs={
            key.removeprefix("log/"): np.array([float(e.get(key, math.nan)) for e in episodes])
            for key in log_keys
        },
    )
