"""Short real runs give exactly the scores, metrics and parameter counts recorded in behaviour.json.

behaviour.json was written by the code before the restructuring of issue 16 (commit named in the
file), so this test shows that moving code around changed no result. Each run is the real entry
point on CPU, float32, one thread, a fixed seed, with the time-based writes switched off
(log_every=0: one metrics line at the end; save_every=0: one checkpoint at the end), so every
value is a function of the code and the seed. Wall-clock values (fps, memory, seconds, the time/
shares of the loop's phases) are left out.

Float results depend on the CPU's kernels, so the values are compared exactly only on the CPU
model and torch version that wrote them; elsewhere the test is skipped with the command that
records the values anew (run it on the commit in the file, then on the new code, and compare).

    python tests/test_behaviour_unchanged.py --write   # record behaviour.json with this checkout
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECORD = Path(__file__).with_name("behaviour.json")
COMMON = ["--seed", "3", "--size", "1m", "--steps", "300", "--train-ratio", "16", "--device", "cpu",
          "--set", "train_fill=128", "batch_size=4", "batch_length=16", "threads=1", "precision=float32",
          "log_every=0", "save_every=0"]  # fmt: skip
RUNS = {
    "gym": ["--suite", "gym", "--task", "CartPole-v1", "--envs", "2"],
    "bsuite": ["--suite", "bsuite", "--task", "catch/0", "--envs", "1"],
    "dmc_proprio": ["--suite", "dmc_proprio", "--task", "cartpole_balance", "--envs", "1",
                    "--set", "env_args={length: 100}"],
}  # fmt: skip
SETUPS = ("atari", "crafter", "dmc_vision", "dmc_proprio")
WALL_CLOCK = ("fps/", "usage/", "time/")
# Logged metrics whose definition changed after the record, on purpose: `ret` and `ret_rate` are now
# (return - P5) / scale as in the official code (benchmarks/parity.py compares them side by side).
REDEFINED = ("ret", "ret_rate")


def machine() -> dict:
    import torch

    from training.provenance import cpu_model

    # The model name alone does not tell the kernels apart ("AMD EPYC" is both a Zen 3 with AVX2 and a
    # Zen 4 with AVX-512); torch picks its CPU kernels by this capability.
    return {"cpu": cpu_model(), "torch": torch.__version__, "kernels": torch.backends.cpu.get_cpu_capability()}


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run(name: str, logdir: Path) -> dict:
    command = [sys.executable, "-m", "training.train", *RUNS[name], *COMMON, "--logdir", str(logdir)]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = [{key: value for key, value in line.items() if not key.startswith(WALL_CLOCK) and key not in REDEFINED}
               for line in read_lines(logdir / "metrics.jsonl")]
    done = json.loads((logdir / "done.json").read_text())
    done.pop("wall_seconds")
    return {"scores": read_lines(logdir / "scores.jsonl"), "metrics": metrics, "done": done}


def parameter_counts() -> dict:
    from agent.params import SETUPS as NAMED
    from agent.params import count

    return {setup: count("1m", *NAMED[setup]) for setup in SETUPS}


def record() -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        runs = {name: run(name, Path(folder) / name) for name in RUNS}
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    return {"commit": commit.stdout.strip(), "machine": machine(), "runs": runs, "parameters": parameter_counts()}


@pytest.fixture(scope="module")
def recorded() -> dict:
    recorded = json.loads(RECORD.read_text())
    if recorded["machine"] != machine():
        pytest.skip(f"behaviour.json was recorded on {recorded['machine']}, this is {machine()}: float results "
                    f"differ between CPUs. Record both sides here: `python {Path(__file__).name} --write`.")
    return recorded


def test_parameter_counts_unchanged(recorded):
    assert parameter_counts() == recorded["parameters"]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_short_run_scores_and_metrics_unchanged(recorded, tmp_path, name):
    if name == "bsuite":
        pytest.importorskip("bsuite")
    if name == "dmc_proprio":
        pytest.importorskip("dm_control")
    now, before = run(name, tmp_path / name), recorded["runs"][name]
    assert now["done"] == before["done"]
    assert now["scores"] == before["scores"]
    assert len(now["metrics"]) == len(before["metrics"])
    for line_now, line_before in zip(now["metrics"], before["metrics"]):
        line_before = {key: value for key, value in line_before.items() if key not in REDEFINED}
        assert sorted(line_now) == sorted(line_before)
        differing = {key: (line_before[key], line_now[key]) for key in line_now if line_now[key] != line_before[key]}
        assert not differing, differing


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    sys.path.insert(0, str(REPO))
    RECORD.write_text(json.dumps(record(), indent=1) + "\n")
    print(f"wrote {RECORD}")
