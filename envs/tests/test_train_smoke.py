"""CleanRL-style smoke tests: the real training entry point runs a few hundred steps on every
suite that installs here, with size1m, and writes scores.jsonl.

Small replay batches and short episodes (through env_args) keep each run to seconds; the
settings are the suites' own otherwise (observation shapes, action sets, repeats).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# suite, task, adapter overrides that end episodes early, per-episode log keys to expect
RUNS = [
    ("gym", "CartPole-v1", {}, []),
    ("atari100k", "pong", {"length": 400}, []),  # 400 frames = 100 agent steps per episode
    ("atari200m", "pong", {"length": 400}, []),
    ("dmc_proprio", "cartpole_balance", {"length": 100}, []),
    ("dmc_vision", "cartpole_swingup", {"length": 100}, []),
    ("bsuite", "catch/0", {}, ["log/bsuite/total_return"]),
    ("crafter", "reward", {"length": 100}, ["log/reward", "log/achievement_collect_wood"]),
    ("procgen", "coinrun", {"length": 100}, []),
]


@pytest.mark.parametrize("suite, task, env_args, log_keys", RUNS, ids=[r[0] for r in RUNS])
def test_train_entry_point_writes_scores(tmp_path, suite, task, env_args, log_keys):
    logdir = tmp_path / "run"
    command = [
        sys.executable, "-m", "training.train", "--suite", suite, "--task", task, "--seed", "1",
        "--size", "1m", "--steps", "300", "--envs", "1", "--train-ratio", "16", "--logdir", str(logdir),
        "--device", "cpu", "--set", "train_fill=128", "batch_size=4", "batch_length=16", "threads=1",
        "log_every=2", f"env_args={json.dumps(env_args)}",
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    done = json.loads((logdir / "done.json").read_text())
    assert done["agent_steps"] == 300
    scores = [json.loads(line) for line in (logdir / "scores.jsonl").read_text().splitlines()]
    assert scores, "no episode finished"
    for line in scores:
        assert {"step", "episode/score", "episode/length"} <= set(line)
        assert set(log_keys) <= set(line), sorted(line)
    metrics = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    assert any("train/loss/total" in line or "loss/total" in line for line in metrics), "no update ran"
