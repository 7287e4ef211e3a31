"""Short real runs give exactly the scores, metrics and parameter counts recorded in behaviour.json.

Each record names the commit whose code wrote it. The first records were written before the
restructuring of issue 16 (f0535c1), so this test showed that moving code around changed no result;
the code matched them up to d9ff5fb. b051873 changed the numbers on purpose (the two-hot heads' bias
gradient summed in float64, agent/networks.py AddBias), so the AVX2 record was rewritten by it and the
AVX-512 record, which no machine at hand could rewrite then, was dropped; b051873 wrote a new one on an
AVX-512 EPYC on 2026-12-05 (25 of its 430 values differ from the AVX2 record's). Each run is the real entry
point on CPU, float32, one thread, a fixed seed, with the time-based writes switched off
(log_every=0: one metrics line at the end; save_every=0: one checkpoint at the end), so every
value is a function of the code and the seed. Wall-clock values (fps, memory, seconds, the time/
shares of the loop's phases) are left out.

Float results depend on the CPU's kernels, so behaviour.json holds one record per machine (CPU
model, torch version, kernel capability), each written by that commit's code on such a machine, and the
test compares against the record of the machine it runs on; on a machine without a record it is skipped
with the command that adds one, run from this checkout on a checkout of the recorded commit:

    git worktree add /tmp/before f0535c1                          # the commit the records name
    python tests/test_behaviour_unchanged.py --write /tmp/before  # add or replace this machine's record
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
# Logged metrics added after the record (the official code logs them too): left out of the comparison.
ADDED = ("ret_min", "ret_max", "adv_mag_live", "policy_entropy_live", "past_end/frac", "past_end/reward_mag",
         "past_end/reward_max", "past_end/cont")


def machine() -> dict:
    import torch

    from training.provenance import cpu_model

    # The model name alone does not tell the kernels apart ("AMD EPYC" is both a Zen 3 with AVX2 and a
    # Zen 4 with AVX-512); torch picks its CPU kernels by this capability.
    return {"cpu": cpu_model(), "torch": torch.__version__, "kernels": torch.backends.cpu.get_cpu_capability()}


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run(name: str, logdir: Path, checkout: Path = REPO) -> dict:
    # The entry point moved from agent.train to training.train in the restructuring (issue 16).
    entry = "training.train" if (checkout / "training" / "train.py").exists() else "agent.train"
    command = [sys.executable, "-m", entry, *RUNS[name], *COMMON, "--logdir", str(logdir)]
    env = dict(os.environ, PYTHONPATH=str(checkout), OMP_NUM_THREADS="1",
               MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    result = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = [{key: value for key, value in line.items()
                if not key.startswith(WALL_CLOCK) and key not in REDEFINED + ADDED}
               for line in read_lines(logdir / "metrics.jsonl")]
    done = json.loads((logdir / "done.json").read_text())
    done.pop("wall_seconds")
    return {"scores": read_lines(logdir / "scores.jsonl"), "metrics": metrics, "done": done}


def parameter_counts(checkout: Path = REPO) -> dict:
    code = ("import json; from agent.params import SETUPS, count; "
            f"print(json.dumps({{setup: count('1m', *SETUPS[setup]) for setup in {SETUPS!r}}}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=checkout, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def record(checkout: Path) -> dict:
    """This machine's record of `checkout`'s runs and parameter counts."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        runs = {name: run(name, Path(folder) / name, checkout) for name in RUNS}
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    return {"commit": commit.stdout.strip(), "machine": machine(), "runs": runs,
            "parameters": parameter_counts(checkout)}


@pytest.fixture(scope="module")
def recorded() -> dict:
    records = json.loads(RECORD.read_text())["records"]
    for entry in records:
        if entry["machine"] == machine():
            return entry
    pytest.skip(f"behaviour.json has records for {[entry['machine'] for entry in records]}, not for this "
                f"{machine()}: float results differ between CPUs. Add one with the command in this file's docstring.")


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
    if len(sys.argv) not in (2, 3) or sys.argv[1] != "--write":
        sys.exit(__doc__)
    sys.path.insert(0, str(REPO))
    new = record(Path(sys.argv[2]).resolve() if len(sys.argv) == 3 else REPO)
    kept = [old for old in json.loads(RECORD.read_text())["records"] if old["machine"] != new["machine"]]
    RECORD.write_text(json.dumps({"records": [*kept, new]}, indent=1) + "\n")
    print(f"wrote this machine's record of {new['commit']} to {RECORD}")
