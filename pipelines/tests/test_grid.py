"""The run grid and the run folders read their suite facts from the registry (envs/registry.py), so a grid
run and a hand-started `training.train` use the same official settings, and aggregation needs no
workflow config to read a run folder."""
import pytest

from envs import SUITES
from pipelines.grid import check_overrides, grid_cells, random_cells, random_run_name
from pipelines.runs import load_run_folder
from pipelines.tests.conftest import write_run


def test_a_block_without_lists_runs_the_suites_official_settings():
    blocks = [{"suite": "atari100k", "seeds": [0]}, {"suite": "crafter", "seeds": [1], "steps": 50}]
    cells = grid_cells({"grid": blocks})
    atari = [cell for cell in cells if cell["suite"] == "atari100k"]
    assert sorted(cell["task"] for cell in atari) == sorted(SUITES["atari100k"].tasks) and len(atari) == 26
    assert {(cell["size"], cell["train_ratio"], cell["steps"], cell["envs"]) for cell in atari} == {
        ("200m", 256, 110_000, 1)}
    crafter = [cell for cell in cells if cell["suite"] == "crafter"]
    assert crafter == [{"suite": "crafter", "task": "reward", "seed": 1, "size": "200m", "train_ratio": 512,
                        "steps": 50, "envs": 1}]
    bsuite = grid_cells({"grid": [{"suite": "bsuite", "seeds": [0]}]})
    assert len(bsuite) == 468 and bsuite[0]["task"] == "bandit/0"


def test_run_folder_budget_from_its_recorded_repeat_and_the_suites_report_budget(tmp_path):
    episode = [{"step": 10, "episode/score": 1.0, "episode/length": 10}]
    dmc = write_run(tmp_path / "dmc", "dmc_proprio", "walker_walk", 0, episode, steps=1000, repeat=2)
    assert load_run_folder(dmc, "ours", []).budget == 2000  # the run's own repeat, not the suite's 1
    atari = write_run(tmp_path / "atari", "atari100k", "pong", 0, episode, steps=110_000, repeat=4)
    run = load_run_folder(atari, "ours", [])
    assert run.budget == 400_000 and run.task == "atari_pong"  # 4.4e5 frames run, reported at 4e5
    old = write_run(tmp_path / "old", "atari100k", "pong", 0, episode, steps=1000)  # no repeat recorded
    assert load_run_folder(old, "ours", []).budget == 4000


def test_overrides_env_args_are_checked_against_every_grid_blocks_suite():
    """`check` stands in for agent.config (pipelines/ does not import the agent): it returns the config."""
    config = {"grid": [{"suite": "dmc_proprio", "seeds": [0]}, {"suite": "procgen", "seeds": [0]}],
              "train": {"overrides": ["env_args={log_image: true}"]}}
    with pytest.raises(ValueError, match=r"^train.overrides: grid\[1\]: env_args key 'log_image' is not taken by "
                                         r"the procgen adapter \(envs.procgen.ProcGen\)\. Accepted keys: size, "
                                         r"length\.$"):
        check_overrides(config, lambda items: {"env_args": {"log_image": True}})
    check_overrides(config, lambda items: {"env_args": {"length": 100}})  # both adapters take it

    def unknown_key(items):
        raise KeyError("unknown config key 'batch_sise'")

    with pytest.raises(ValueError, match="^train.overrides: unknown config key 'batch_sise'"):
        check_overrides(config, unknown_key)
def test_one_random_run_per_task_and_seed_as_long_as_the_tasks_longest_run():
    blocks = [{"suite": "gym", "tasks": ["CartPole-v1"], "seeds": [0, 1], "sizes": ["1m"], "train_ratios": [32, 64],
               "steps": 3000},
              {"suite": "gym", "tasks": ["CartPole-v1"], "seeds": [1, 2], "sizes": ["12m"], "steps": 5000, "envs": 4},
              {"suite": "bsuite", "tasks": ["catch/0"], "seeds": [0], "steps": 2000}]
    assert random_cells({"grid": blocks}) == []  # off unless asked for
    cells = random_cells({"grid": blocks, "random_policy": True})
    cartpole = [{"suite": "gym", "task": "CartPole-v1", "seed": seed, "steps": 5000, "envs": 4} for seed in (0, 1, 2)]
    assert cells == [*cartpole, {"suite": "bsuite", "task": "catch/0", "seed": 0, "steps": 2000, "envs": 1}]
    assert random_run_name(cells[-1]) == "bsuite/catch-0/random/seed0"
