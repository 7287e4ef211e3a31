"""training.eval on short real runs: scores in the run's schema, a playable video, clear errors for bad folders."""
import json
import shutil

import imageio.v2 as imageio
import pytest
import yaml

from training.eval import main as evaluate
from training.tests.test_train import CARTPOLE, TINY
from training.train import main as train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("cartpole") / "run"
    assert train([*CARTPOLE, *TINY, "--steps", "150", "--logdir", str(logdir)]) == 0
    return logdir


def read_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_eval_writes_scores_in_the_run_schema_and_a_video(tmp_path, capsys):
    logdir = tmp_path / "run"
    argv = ["--suite", "crafter", "--task", "reward", "--size", "1m", "--device", "cpu", *TINY, "--steps", "100",
            "--set", "env_args={length: 30}", "--logdir", str(logdir)]  # fmt: skip
    assert train(argv) == 0
    assert evaluate(["--logdir", str(logdir), "--episodes", "3", "--video", "--video-episodes", "2"]) == 0
    lines = read_lines(logdir / "eval_scores.jsonl")
    assert len(lines) == 3
    assert {line["step"] for line in lines} == {100}  # the checkpoint's step, written at the end of the run
    assert set(lines[0]) == set(read_lines(logdir / "scores.jsonl")[0])  # score, length and Crafter's achievements
    assert all(line["episode/length"] == 31 for line in lines)  # 30 steps after the reset step
    video = logdir / "eval-000000000100.mp4"
    reader = imageio.get_reader(video)
    assert reader.count_frames() == 2 * 31
    assert reader.get_meta_data()["size"] == (256, 256)  # 64 x 64 enlarged 4 times
    assert reader.get_data(0).shape == (256, 256, 3)
    assert "3 episodes at step 100: mean score" in capsys.readouterr().out
    assert evaluate(["--logdir", str(logdir), "--episodes", "1"]) == 0
    assert len(read_lines(logdir / "eval_scores.jsonl")) == 4  # a second evaluation appends


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, capsys):
    assert evaluate(["--logdir", str(tmp_path)]) == 2
    assert "has no config.yaml" in capsys.readouterr().err


def test_a_run_without_a_checkpoint_is_refused(tmp_path, cartpole_run, capsys):
    logdir = tmp_path / "run"
    logdir.mkdir()
    shutil.copy(cartpole_run / "config.yaml", logdir)
    assert evaluate(["--logdir", str(logdir)]) == 2
    assert "holds no complete checkpoint" in capsys.readouterr().err
    assert not (logdir / "eval_scores.jsonl").exists()


def test_a_checkpoint_from_another_config_is_refused(tmp_path, cartpole_run, capsys):
    logdir = tmp_path / "run"
    shutil.copytree(cartpole_run, logdir)
    config = yaml.safe_load((logdir / "config.yaml").read_text())
    (logdir / "config.yaml").write_text(yaml.safe_dump({**config, "units": 32}))
    assert evaluate(["--logdir", str(logdir)]) == 2
    err = capsys.readouterr().err
    assert "does not fit the config in" in err and "size mismatch" in err


def test_video_of_a_run_without_images_is_refused(cartpole_run, capsys):
    assert evaluate(["--logdir", str(cartpole_run), "--video"]) == 2
    assert "--video needs an image observation; gym CartPole-v1 observes vector" in capsys.readouterr().err
