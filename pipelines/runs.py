"""Load the project's own run folders into `Run` records, the form every score source takes.

A run folder is self-describing: `config.yaml` says which run it is (suite, task, seed,
size, train_ratio, steps, repeat); `scores.jsonl` holds one JSON line per finished episode.
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
    source: str = "reference"


def reference_task(suite: str, task: str) -> str:
    """Our (suite, short task) as the reference files name it."""
    return SUITES[suite].task_prefix + task


def read_score_lines(path: Path, problems: list) -> list[dict]:
    """Episodes of one scores.jsonl; malformed or truncated lines go to `problems` and are skipped."""
    episodes = []
    with open(path) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                step, score = float(record["step"]), float(record["episode/score"])
            except (ValueError, KeyError, TypeError) as error:
                problems.append(f"{path}:{number}: skipped malformed line ({type(error).__name__}: {error})")
                continue
            if not (math.isfinite(step) and math.isfinite(score)):
                problems.append(f"{path}:{number}: skipped line with a non-finite step or score")
                continue
            episodes.append(record)
    return episodes


def load_run_folder(folder: Path, method: str, problems: list):
    """A Run from one run folder, or None (reported) when it cannot say which run it is."""
    folder = Path(folder)
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text())
        suite, task, seed = config["suite"], config["task"], int(config["seed"])
        size, ratio, steps = str(config["size"]), float(config["train_ratio"]), float(config["steps"])
        # Run folders written before the repeat was recorded ran the suite's official one.
        repeat = float(config.get("repeat", SUITES[suite].repeat))
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as error:
        problems.append(f"{folder / 'config.yaml'}: skipped run, unreadable config ({error})")
        return None
    scores_path = folder / "scores.jsonl"
    episodes = read_score_lines(scores_path, problems) if scores_path.exists() else []
    log_keys = sorted({key for episode in episodes for key in episode if key.startswith("log/")})
    budget = steps * repeat
    if SUITES[suite].report_budget:
        budget = min(budget, float(SUITES[suite].report_budget))
    return Run(
        suite=suite, task=reference_task(suite, task), method=method, seed=seed, size=size,
        train_ratio=ratio, budget=budget, source="ours",
        steps=np.array([float(e["step"]) for e in episodes]),
        scores=np.array([float(e["episode/score"]) for e in episodes]),
        episode_logs={
            key.removeprefix("log/"): np.array([float(e.get(key, math.nan)) for e in episodes])
            for key in log_keys
        },
    )
