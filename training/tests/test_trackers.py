"""TensorBoard copies of the jsonl logs: same scalars at the same steps, one point per step after a resume;
frames of a few episodes of image suites, at a low rate and in bounded memory."""
import importlib.util
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from training import trackers
from training.tests.fakes import FakeAgent
from training.tests.test_train import CARTPOLE, TINY
from training.trackers import EPISODE_FRAMES, FRAMES_TAG, EpisodeFrames, TensorBoard
from training.train import main

CRAFTER = ["--suite", "crafter", "--task", "reward", "--size", "1m", "--device", "cpu",
           "--set", "env_args={length: 30}"]  # 31-step episodes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tensorboard_scalars(logdir: Path) -> dict:
    """{tag: [(step, value), ...]} as TensorBoard shows them (every event file of the folder, purges applied)."""
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    return {tag: [(point.step, point.value) for point in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def tensorboard_images(logdir: Path) -> dict:
    """{tag: [(step, (H, W, C) uint8), ...]} of the image events."""
    events = EventAccumulator(str(logdir), size_guidance={"images": 0})
    events.Reload()
    return {tag: [(event.step, np.asarray(Image.open(io.BytesIO(event.encoded_image_string))))
                  for event in events.Images(tag)] for tag in events.Tags()["images"]}


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
    assert tensorboard_images(logdir) == {}  # a vector suite: no frames


def test_a_short_real_image_run_shows_frames_of_its_episodes_at_their_scores_steps(tmp_path):
    logdir = tmp_path / "run"
    argv = [*CRAFTER, *TINY, "--steps", "200", "--logdir", str(logdir), "--set", "image_every=1e-9"]  # every episode
    assert main(argv) == 0
    scores = [json.loads(line) for line in (logdir / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == 6 and {line["episode/length"] for line in scores} == {31}  # 30 steps after the reset
    images = tensorboard_images(logdir)
    assert list(images) == [FRAMES_TAG]
    assert [step for step, _ in images[FRAMES_TAG]] == [line["step"] for line in scores]
    for _, image in images[FRAMES_TAG]:
        assert image.shape == (2 * 64, 8 * 64, 3)  # 16 of the 31 frames, 8 per row
    assert_tensorboard_matches_jsonl(logdir)  # and the scalars as before


def test_by_default_an_image_run_shows_its_first_episode_only_for_half_an_hour(tmp_path):
    logdir = tmp_path / "run"
    argv = [*CRAFTER, "--steps", "100", "--logdir", str(logdir), "--set", "train_fill=1000"]
    assert main(argv, agent_class=FakeAgent) == 0
    first = json.loads((logdir / "scores.jsonl").read_text().splitlines()[0])
    assert [step for step, _ in tensorboard_images(logdir)[FRAMES_TAG]] == [first["step"]]


def test_image_every_0_shows_no_frames(tmp_path):
    logdir = tmp_path / "run"
    argv = [*CRAFTER, "--steps", "40", "--logdir", str(logdir), "--set", "train_fill=1000", "image_every=0"]
    assert main(argv, agent_class=FakeAgent) == 0
    assert (logdir / "scores.jsonl").read_text() and tensorboard_images(logdir) == {}


def test_gray_frames_show_as_rgb_8_per_row(tmp_path):
    writer = TensorBoard(tmp_path, resume_step=None)
    writer.images(7, FRAMES_TAG, np.full((10, 96, 96, 1), 200, np.uint8))  # Atari 200M: (N, 96, 96, 1)
    writer.close()
    ((step, image),) = tensorboard_images(tmp_path)[FRAMES_TAG]
    assert step == 7 and image.shape == (2 * 96, 8 * 96, 3)
    assert (image[:96] == 200).all() and (image[96:, :2 * 96] == 200).all() and (image[96:, 2 * 96:] == 0).all()


def episode(length: int, index: int = 0):
    """(transition, index) of each step of one episode; the image holds the step's number (256 x channel 0 +
    channel 1)."""
    for step in range(length):
        image = np.stack([np.full((4, 4), step // 256, np.uint8), np.full((4, 4), step % 256, np.uint8)], -1)
        yield {"image": image, "is_first": step == 0, "is_last": step == length - 1}, index


def shown_steps(frames: np.ndarray) -> list[int]:
    return [256 * int(frame[0, 0, 0]) + int(frame[0, 0, 1]) for frame in frames]


@pytest.mark.parametrize("length", [16, 64, 65, 1_000, 10_000])
def test_an_episode_is_kept_in_bounded_memory_and_shown_evenly_from_first_to_last_frame(length):
    written, most_kept = [], 0
    recorder = EpisodeFrames(0.0, written.append)
    for transition, index in episode(length):
        recorder(transition, index)
        most_kept = max(most_kept, len(recorder.frames or []))
    assert most_kept <= EpisodeFrames.KEPT_FRAMES
    (frames,) = written
    assert frames.shape == (EPISODE_FRAMES, 4, 4, 2)
    steps = shown_steps(frames)
    assert steps[0] == 0 and steps[-1] == length - 1
    gaps = np.diff(steps)
    even = (length - 1) / (EPISODE_FRAMES - 1)
    assert gaps.min() > 0.5 * even and gaps.max() < 1.5 * even, steps


def test_frames_are_kept_for_env_0_only_and_at_the_rate_asked(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(trackers.time, "monotonic", lambda: now[0])
    written = []
    recorder = EpisodeFrames(60.0, written.append)
    for start in (0.0, 30.0, 61.0, 100.0, 130.0):  # episodes of env 0 starting at these seconds
        now[0] = start
        for transition, index in [*episode(5, index=1), *episode(5)]:
            recorder(transition, index)
    assert len(written) == 3  # the first, the first to start 60 s after it (61), then 130
    assert all(shown_steps(frames) == [0, 1, 2, 3, 4] for frames in written)  # short episodes: every frame


def test_a_resumed_writer_hides_the_points_after_the_checkpoint(tmp_path):
    first = TensorBoard(tmp_path, resume_step=None)
    for step in range(1, 11):
        first.log(step, {"loss": float(step), "name": "text", "sizes": [1, 2]})
    first.close()  # as after a crash at step 10, with the last checkpoint at step 6
    # TensorBoard reads event files in name order (time in seconds, host, pid, a per-process counter). A real
    # resume is a new process seconds later; in one process within one second the counter decides, and
    # "...10" sorts before "...9" once earlier tests have made ten writers.
    time.sleep(1.1)
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
