"""The grid's cost before it starts: counts from first principles, the measured timings, warnings, bad input."""
import json
import math

import pytest
import yaml

import envs
from agent.config import Config, make_config
from envs.base import step_spaces
from pipelines.grid import grid_cells
from pipelines.plan import SUITE_SPACES, format_hours, load_workflow_config, main, plan_runs, run_config
from pipelines.tests.workflow_helpers import REPO
from training.train import replay_memory_estimate

FLOAT16_DETER_1M = 512 * 2  # size1m deter, stored as float16
STOCH_1M = 32  # 32 uint8 class indices
STEP_FLAGS = 4 + 3  # float32 reward, is_first, is_last, is_terminal


def cpu_seconds_per_update(size: str, obs: str) -> float:
    rows = json.loads((REPO / "benchmarks/results/cpu_zen3_before_after.json").read_text())["results"]
    return next(row["seconds_per_update"] for row in rows
                if (row["size"], row["obs"], row["code"]) == (size, obs, "worktree"))


def write_config(tmp_path, content: dict) -> str:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(content))
    return str(path)


def test_plan_of_the_test_config_from_first_principles(capsys):
    runs = plan_runs(load_workflow_config(["config/test.yaml"]), "cpu")
    gym, bsuite = runs
    # 300 agent steps each, with config.yaml's CPU-sized updates (batch 8 x 32, train_fill 256, ratio 32): the
    # first update at 256 steps, then one per 256 / 32 = 8 steps. catch/0 ends at 300 steps, long before its
    # 10,000 episodes of 9 steps.
    assert [run["steps"] for run in runs] == [300, 300] and [run["updates"] for run in runs] == [6, 6]
    # CartPole: 4 float32 + int32 action; bsuite: the suite's largest observation (deep_sea/20, 50 x 50 float32).
    assert gym["replay_bytes"] == 300 * (4 * 4 + STEP_FLAGS + 4 + FLOAT16_DETER_1M + STOCH_1M)
    assert bsuite["replay_bytes"] == 300 * (2500 * 4 + STEP_FLAGS + 4 + FLOAT16_DETER_1M + STOCH_1M)
    update = cpu_seconds_per_update("1m", "vector") * (8 * 32) / (16 * 64)  # scaled by the replayed steps
    assert gym["seconds"] == pytest.approx(6 * update + 300 / 44000)
    assert bsuite["seconds"] == pytest.approx(6 * update + 300 / 34000)
    assert main(["--configfile", "config/test.yaml"]) == 0
    total = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("total"))
    assert total.split()[:4] == ["total", "2", "600", "12"]


def test_updates_and_hours_follow_the_train_ratio_and_the_measured_update_time(tmp_path, capsys):
    grid = [{"suite": "gym", "tasks": ["CartPole-v1"], "seeds": [0, 1], "sizes": ["1m"], "train_ratios": [64],
             "steps": 5000},
            {"suite": "crafter", "seeds": [0], "sizes": ["1m", "25m"], "train_ratios": [32], "steps": 3000}]
    runs = plan_runs(load_workflow_config([write_config(tmp_path, {"grid": grid})]), "cpu")
    assert len(runs) == 4
    # config.yaml's batch 8 x 32: the first update once the replay holds 256 steps, then one per 256 / ratio
    # agent steps; the measured seconds (batch 16 x 64) scaled by the replayed steps.
    gym_updates = 1 + (5000 - 256) * 64 // 256
    crafter_updates = 1 + (3000 - 256) * 32 // 256
    assert [run["updates"] for run in runs] == [gym_updates, gym_updates, crafter_updates, crafter_updates]
    scale = (8 * 32) / (16 * 64)
    assert runs[0]["seconds"] == pytest.approx(gym_updates * cpu_seconds_per_update("1m", "vector") * scale
                                               + 5000 / 44000)
    assert runs[2]["seconds"] == pytest.approx(crafter_updates * cpu_seconds_per_update("1m", "image") * scale
                                               + 3000 / 118)
    # 25m image was measured nowhere: log-log between 12m (width 256) and 50m (width 512, the Intel Xeon file).
    rows = json.loads((REPO / "benchmarks/results/cpu_large.json").read_text())["results"]
    seconds_50m = next(row["seconds_per_update"] for row in rows if (row["size"], row["obs"]) == ("50m", "image"))
    seconds_12m = cpu_seconds_per_update("12m", "image")
    expected_25m = seconds_12m * (seconds_50m / seconds_12m) ** (math.log(384 / 256) / math.log(2))
    assert runs[3]["seconds_per_update"] == pytest.approx(expected_25m * scale)
    assert runs[3]["source"] == "interpolated, scaled to batch 8 x 32"
    assert main(["--configfile", write_config(tmp_path, {"grid": grid}), "--parallel", "2"]) == 0
    output = capsys.readouterr().out
    assert "Wall-clock with 2 runs at once" in output
    # config.yaml's random_policy: one random run per (task, seed), as long as the task's longest run; env steps only.
    random_hours = format_hours((2 * 5000 / 44000 + 3000 / 118) / 3600)
    assert (f"Random-policy runs (random_policy: true), not in the table above: 3, 13,000 agent steps, about "
            f"{random_hours} of env stepping") in output
    # The 25m update's memory (interpolated between 12m and 50m, 11.6 GiB) does not fit the default 4000 MB.
    assert [line for line in output.splitlines() if line.startswith("WARNING")] == [
        next(line for line in output.splitlines() if "1 crafter run (the worst: reward 25m)" in line)]


def test_warns_for_memory_and_for_runs_longer_than_their_jobs(tmp_path, capsys):
    config = {"train": {"resources": {"runtime": 60, "mem_mb": 100, "gpu": 0, "cpus": 1}},
              "grid": [{"suite": "bsuite", "tasks": ["cartpole/0"], "seeds": [0], "sizes": ["1m"]},
                       {"suite": "gym", "tasks": ["CartPole-v1"], "seeds": [0], "steps": 1000000}]}
    assert main(["--configfile", write_config(tmp_path, config)]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("WARNING")]
    # bsuite cartpole: 1,000 episodes of up to 1,000 steps at ratio 1024, far beyond an hour, and not resumable.
    assert any("bsuite run" in line and "cannot resume" in line for line in warnings)
    # gym: 1e6 updates of about a second are more than 11 jobs (1 + the SLURM profile's 10 retries) of an hour.
    assert any("gym run" in line and "more than 1 + retries (10)" in line for line in warnings)
    assert any("will not fit mem_mb 100" in line for line in warnings)


def test_suite_spaces_hold_the_largest_replay_step_of_the_adapters_that_install_here():
    config = make_config(size="1m")
    checked = {"atari100k": ["pong"], "atari200m": ["pong"], "dmc_proprio": envs.SUITES["dmc_proprio"].tasks,
               "dmc_vision": ["walker_walk", "quadruped_run"], "bsuite": ["catch/0", "deep_sea/20"],
               "crafter": ["reward"], "procgen": ["coinrun"], "gym": ["CartPole-v1"]}  # fmt: skip
    for suite, tasks in checked.items():
        largest = 0
        for task in tasks:
            env = envs.make(suite, task, 0)
            obs = {key: space for key, space in env.obs_space.items() if not key.startswith("log/")}
            act = {key: space for key, space in env.act_space.items() if key != "reset"}
            largest = max(largest, replay_memory_estimate(config, obs, act)[0])
            env.close()
        obs, act = SUITE_SPACES[suite]
        obs = {**obs, **step_spaces()}
        assert replay_memory_estimate(config, obs, act)[0] == largest, suite


@pytest.mark.parametrize("argv, message", [
    (["--configfile", "config/papr.yaml"], "config/papr.yaml not found; the shipped ones are config/config.yaml"),
    (["--configfile", "config/paper.yaml", "--device", "tpu"], "unknown device 'tpu'"),
    (["--parallel", "0"], "--parallel must be at least 1"),
])
def test_bad_input_gets_a_clear_error(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_config_that_fails_the_schema_is_refused_naming_the_key(tmp_path, capsys):
    bad = write_config(tmp_path, {"grid": [{"suite": "gym", "seeds": [0], "train_ratios": [-1]}]})
    assert main(["--configfile", bad]) == 2
    err = capsys.readouterr().err
    assert "config/schema.yaml" in err and "-1" in err


def test_an_unknown_size_is_refused_as_the_workflow_does(tmp_path, capsys):
    bad = write_config(tmp_path, {"grid": [{"suite": "gym", "seeds": [0], "sizes": ["3m"]}]})
    assert main(["--configfile", bad]) == 2
    err = capsys.readouterr().err
    assert "grid[0]: unknown size '3m'" in err


@pytest.mark.parametrize("name", ["paper.yaml", "scaling.yaml"])
def test_full_scale_grids_train_with_the_official_update_settings(name):
    """config.yaml's CPU-sized updates (batch 8 x 32, lr 1e-4) must not leak into the full-scale grids
    through the --configfile merge: every run there has the official batch, learning rate and warm-up."""
    config = load_workflow_config([f"config/{name}"])
    official = Config()
    expected = (official.batch_size, official.batch_length, official.train_fill, official.lr, official.warmup)
    for cell in grid_cells(config)[::50]:
        run = run_config(config, cell)
        assert (run.batch_size, run.batch_length, run.train_fill, run.lr, run.warmup) == expected, cell
