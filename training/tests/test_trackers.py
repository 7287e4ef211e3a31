"""TensorBoard copies of the jsonl logs: same scalars at the same steps, one point per step after a resume."""
import importlib.util
import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from training.tests.fakes import FakeAgent
from training.tests.test_train import CARTPOLE, TINY
from training.trackers import TensorBoard
from training.train import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tensorboard_scalars(logdir: Path) -> dict:
    """{tag: [(step, value), ...]} as TensorBoard shows them (every event file of the folder, purges applied)."""
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    return {tag: [(point.step, point.value) for point in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def jsonl_scalars(logdir: Path) -> dict:
    """{key: [(step, value), ...]} of every number in metrics.jsonl and scores.jsonl."""
    series = {}
    for name in ("metrics.jsonl", "scores.jsonl"):
        for line in (logdir / name).read_text().splitlines():
            record = json.loads(line)
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    series.setdefault(key, []).append((record["step"], value))
    return series


def assert_tensorboard_matches_jsonl(logdir: Path):
    expected, shown = jsonl_scalars(logdir), tensorboard_scalars(logdir)
    assert sorted(shown) == sorted(expected)
    for key, points in expected.items():
        assert [step for step, _ in shown[key]] == [step for step, _ in points], key
        assert [value for _, value in shown[key]] == pytest.approx([value for _, value in points], rel=1e-6), key


def test_a_short_real_run_writes_tensorboard_scalars_equal_to_its_jsonl_lines(tmp_path):
    logdir = tmp_path / "run"
    assert main([*CARTPOLE, *TINY, "--steps", "300", "--logdir", str(logdir), "--set", "log_every=0.3"]) == 0
    assert len(list(logdir.glob("events.out.tfevents.*"))) == 1
    metrics = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) >= 2 and "loss/dyn" in metrics[-1]
    assert_tensorboard_matches_jsonl(logdir)
    assert "episode/score" in tensorboard_scalars(logdir)


def test_a_resumed_writer_hides_the_points_after_the_checkpoint(tmp_path):
    first = TensorBoard(tmp_path, resume_step=None)
    for step in range(1, 11):
        first.log(step, {"loss": float(step), "name": "text", "sizes": [1, 2]})
    first.close()  # as after a crash at step 10, with the last checkpoint at step 6
    resumed = TensorBoard(tmp_path, resume_step=6)
    for step in range(7, 9):
        resumed.log(step, {"loss": 100.0 + step})
    resumed.close()
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    assert tensorboard_scalars(tmp_path) == {
        "loss": [(step, float(step)) for step in range(1, 7)] + [(7, 107.0), (8, 108.0)]}


def test_no_trackers_writes_no_event_files(tmp_path):
    logdir = tmp_path / "run"
    argv = [*CARTPOLE, "--steps", "100", "--logdir", str(logdir), "--set", "train_fill=1000", "trackers=[]"]
    assert main(argv, agent_class=FakeAgent) == 0
    assert (logdir / "scores.jsonl").exists() and not list(logdir.glob("events.out.tfevents.*"))


@pytest.mark.parametrize("trackers, message", [
    ("[neptune]", "unknown tracker 'neptune'"),
    ("[wandb]", "pip install wandb"),
    ("[mlflow]", "pip install mlflow"),
])
def test_a_bad_or_missing_tracker_fails_before_anything_is_written(tmp_path, capsys, trackers, message):
    name = trackers.strip("[]")
    if name in ("wandb", "mlflow") and importlib.util.find_spec(name):
        pytest.skip(f"{name} is installed here")
    logdir = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main([*CARTPOLE, "--logdir", str(logdir), "--set", f"trackers={trackers}"], agent_class=FakeAgent)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not logdir.exists()
