"""The random-policy baseline's run folder: seeded, counted as training.train counts, refusing bad input."""
import json
from pathlib import Path

import pytest
import yaml

from training import random_policy, train

DMC = ["--suite", "dmc_proprio", "--task", "cartpole_balance"]
# Two envs, action repeat 2 and 20-step episodes: reset steps, the repeat and the env order all show in the
# logged step of every episode end (21 agent steps an episode: the reset step and 20 more).
DMC_SHORT = [*DMC, "--envs", "2", "--steps", "101", "--set", "repeat=2", "env_args={length: 20}"]


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_steps_at_episode_ends_match_a_training_run_with_action_repeat(tmp_path, one_torch_thread):
    # The real agent acts (no update: the replay never reaches train_fill); the episodes have fixed lengths,
    # so whatever the actions, both must log the same steps and end with the same counts.
    assert train.main([*DMC_SHORT, "--size", "1m", "--device", "cpu", "--set", "train_fill=1000",
                       "--logdir", str(tmp_path / "train")]) == 0  # fmt: skip
    assert random_policy.main([*DMC_SHORT, "--logdir", str(tmp_path / "random")]) == 0
    trained, played = (read_lines(tmp_path / name / "scores.jsonl") for name in ("train", "random"))
    steps = [(line["step"], line["episode/length"]) for line in played]
    assert steps == [(line["step"], line["episode/length"]) for line in trained]
    assert steps == [(82, 21), (84, 21), (166, 21), (168, 21)]  # env 0, env 1 (counted after env 0's step)
    assert set(played[0]) == set(trained[0]) == {"step", "episode/score", "episode/length"}
    for name in ("train", "random"):  # the budget of 101 ends after a step of both envs
        done = json.loads((tmp_path / name / "done.json").read_text())
        assert (done["step"], done["agent_steps"], done["episodes"]) == (204, 102, 4), name
    config = yaml.safe_load((tmp_path / "random" / "config.yaml").read_text())
    assert config == {"suite": "dmc_proprio", "task": "cartpole_balance", "seed": 0, "steps": 101, "envs": 2,
                      "repeat": 2, "env_args": {"length": 20}, "method": "random"}


def test_a_seed_gives_one_run_and_another_seed_another(tmp_path):
    def play(name, seed):
        argv = ["--suite", "gym", "--task", "CartPole-v1", "--steps", "500", "--seed", str(seed)]
        assert random_policy.main([*argv, "--logdir", str(tmp_path / name)]) == 0
        return (tmp_path / name / "scores.jsonl").read_text()

    first = play("a", 0)
    assert play("b", 0) == first
    assert play("c", 1) != first
    # An unfinished run started again plays the same episodes, without the old lines.
    (tmp_path / "a" / "done.json").unlink()
    assert play("a", 0) == first


def test_bsuite_logs_its_results_columns_as_training_does(tmp_path):
    # bsuite's own score is computed from the adapter's `log/bsuite/...` columns, so they must be there.
    argv = ["--suite", "bsuite", "--task", "catch/0", "--steps", "100", "--logdir", str(tmp_path / "run")]
    assert random_policy.main(argv) == 0
    lines = read_lines(tmp_path / "run" / "scores.jsonl")
    assert len(lines) == 10  # catch: 9 steps and the reset step an episode
    assert {"log/bsuite/episode", "log/bsuite/total_regret"} <= set(lines[-1])
    assert lines[-1]["log/bsuite/episode"] == 10


def test_random_policy_score_of_cartpole_is_about_22():
    # A uniformly random CartPole-v1 policy lasts about 22 steps; a policy stuck on one action about 9.
    assert 18 < random_policy.random_policy_score("gym", "CartPole-v1", seed=0) < 27


@pytest.mark.parametrize("extra, message", [
    (["--steps", "0"], "steps must be at least 1"),
    (["--steps", "many"], "steps"),
    (["--envs", "0"], "envs must be at least 1"),
    (["--set", "batch_sise=8"], "Did you mean batch_size"),
    (["--suite", "pong"], "invalid choice: 'pong'"),
])
def test_bad_arguments_exit_2_before_anything_is_written(tmp_path, capsys, extra, message):
    argv = ["--suite", "gym", "--task", "CartPole-v1", "--logdir", str(tmp_path / "run"), *extra]
    with pytest.raises(SystemExit) as exit_info:
        random_policy.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_an_unknown_task_exits_2_and_leaves_no_folder(tmp_path, capsys):
    argv = ["--suite", "gym", "--task", "NoSuchTask-v9", "--steps", "10", "--logdir", str(tmp_path / "run")]
    assert random_policy.main(argv) == 2
    assert "NoSuchTask-v9" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_folder_of_another_run_is_refused_untouched(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump({"suite": "gym", "task": "CartPole-v1", "seed": 0,
                                                        "size": "1m", "train_ratio": 32.0, "steps": 500}))
    (folder / "scores.jsonl").write_text('{"step": 10, "episode/score": 10.0}\n')
    argv = ["--suite", "gym", "--task", "CartPole-v1", "--steps", "500", "--logdir", str(folder)]
    assert random_policy.main(argv) == 2
    assert "different config" in capsys.readouterr().err
    assert (folder / "scores.jsonl").read_text() == '{"step": 10, "episode/score": 10.0}\n'
