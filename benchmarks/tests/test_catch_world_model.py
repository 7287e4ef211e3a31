"""The catch world-model probe: column hits on real catch boards, and a probe of a short real run."""
import numpy as np
import pytest

import envs
from benchmarks.catch_world_model import COLUMNS, ROWS, column_hits, probe
from training.tests.test_train import TINY
from training.train import main as train


def catch_boards(episodes: int) -> np.ndarray:
    """Every board of a few real catch/0 episodes under a random policy: (N, ROWS, COLUMNS)."""
    env, rng, boards = envs.make("bsuite", "catch/0", 0), np.random.default_rng(0), []
    for _ in range(episodes):
        obs = env.step({"action": 0, "reset": True})
        while True:
            boards.append(obs["vector"].reshape(ROWS, COLUMNS))
            if obs["is_last"]:
                break
            obs = env.step({"action": int(rng.integers(3)), "reset": False})
    return np.stack(boards)


def test_column_hits_count_the_boards_with_the_ball_above_the_paddle_row():
    boards = catch_boards(5)
    ball, paddle = column_hits(boards, boards)
    assert ball.all() and paddle.all()
    assert len(ball) == len(paddle) == len(boards) - 5  # each episode's last board: ball in the paddle's row
    shifted = np.roll(boards, 1, axis=-1)  # every cell one column to the right
    ball, paddle = column_hits(shifted, boards)
    assert not ball.any() and not paddle.any()


def test_probe_of_a_short_catch_run(tmp_path):
    logdir = tmp_path / "catch"
    argv = ["--suite", "bsuite", "--task", "catch/0", "--size", "1m", "--device", "cpu", *TINY, "--steps", "200",
            "--logdir", str(logdir)]  # fmt: skip
    assert train(argv) == 0
    result = probe(logdir, batches=4, seed=0)
    assert result["step"] == 200
    assert result["catch"]["steps"] + result["miss"]["steps"] > 0  # 4 batches of 4 x 16 steps hold episode ends
    assert 0.0 <= result["ball_column"] <= 1.0 and 0.0 <= result["paddle_column"] <= 1.0


def test_probe_refuses_a_run_of_another_task(tmp_path):
    (tmp_path / "config.yaml").write_text("suite: gym\ntask: CartPole-v1\n")
    with pytest.raises(SystemExit, match="catch/0"):
        probe(tmp_path, batches=1, seed=0)
