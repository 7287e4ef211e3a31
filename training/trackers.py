"""Copies of a run's log lines for TensorBoard and, optionally, Weights & Biases or MLflow.

metrics.jsonl and scores.jsonl stay the source of truth: the Logger hands every line it
appends to the trackers that the config key `trackers` names, as scalars at the line's own
step (agent steps x repeat). Lists and strings are left out. TensorBoard writes its event
files into the run folder itself, so `tensorboard --logdir results/runs` lists each run of a
grid under its folder name.

Resume: the jsonl files are cut back to the checkpoint, but an event file cannot be cut. A
resumed run starts a new event file whose first record is a purge marker at the first step
after the checkpoint (torch's `purge_step`); TensorBoard then drops the older file's points
from that step on, so each step shows once. W&B (offline, synced later with `wandb sync`)
and MLflow are optional extras, imported only when chosen: a resumed run is a new W&B or
MLflow run there (W&B and MLflow do not take steps that go back).

Image suites: TensorBoard also shows frames of a few of env 0's episodes (EpisodeFrames, config key
`image_every`), as one image of EPISODE_FRAMES frames per episode under the tag `episode/frames`, at
the step of the episode's scores.jsonl line. Vector suites write none; W&B and MLflow get none.
"""
import numbers
import os
import time
from pathlib import Path

import numpy as np

TRACKERS = ("tensorboard", "wandb", "mlflow")
EVENT_FILES = "events.out.tfevents.*"  # TensorBoard's file names, in the run folder
EPISODE_FRAMES = 16  # frames shown of a recorded episode, evenly spaced from its first step to its last
FRAMES_TAG = "episode/frames"


def check_trackers(names):
    """A ValueError that says what to do if a name is unknown or its package is not installed."""
    for name in names:
        if name not in TRACKERS:
            raise ValueError(f"unknown tracker {name!r} in trackers; valid: {', '.join(TRACKERS)}")
    for name, module, package in (("wandb", "wandb", "wandb"), ("mlflow", "mlflow", "mlflow")):
        if name in names:
            try:
                __import__(module)
            except ImportError as error:  # not installed, or installed without its own dependencies
                raise ValueError(f"trackers names {name}, but the {package} package does not import ({error}): "
                                 f"`pip install {package}`, or leave {name} out of trackers") from None


def open_trackers(config, logdir: Path, resume_step: int | None) -> list:
    """The trackers of config.trackers for the run in `logdir`. resume_step: the logged step
    (agent steps x repeat) of the checkpoint a resumed run starts from, else None."""
    check_trackers(config.trackers)
    opened = []
    for name in config.trackers:
        if name == "tensorboard":
            opened.append(TensorBoard(logdir, resume_step))
        elif name == "wandb":
            opened.append(WandB(logdir, config))
        else:
            opened.append(MLflow(logdir, config))
    return opened


def scalars(values: dict) -> dict:
    return {key: value for key, value in values.items()
            if isinstance(value, numbers.Real) and not isinstance(value, bool)}


def episode_frames(config, obs_space: dict, write):
    """The EpisodeFrames of a run, or None where nothing would show them: no TensorBoard, no image
    observation (vector suites), or image_every = 0."""
    if config.image_every > 0 and "tensorboard" in config.trackers and "image" in obs_space:
        return EpisodeFrames(config.image_every, write)
    return None


class EpisodeFrames:
    """A driver step callback that keeps frames of env 0's episodes at a low rate: the first episode, then
    the first to start once `seconds` have passed since the last recorded one started. At the recorded
    episode's last step it calls write(frames (n <= EPISODE_FRAMES, H, W, C) uint8): the kept frames
    nearest to evenly spaced steps from the first to the last. Memory stays bounded however long the
    episode: every stride-th frame is kept, at most KEPT_FRAMES of them; when full, every other one is
    dropped and the stride doubles (so the shown frames are off even spacing by at most a stride / 2)."""

    KEPT_FRAMES = 4 * EPISODE_FRAMES

    def __init__(self, seconds: float, write):
        self.seconds, self.write = seconds, write
        self.started = None  # time.monotonic() when the last recorded episode started
        self.frames = None  # [(step in the episode, (H, W, C) frame)] of the episode being recorded, or None
        self.stride, self.seen = 1, 0  # keep every stride-th frame; frames of the episode so far

    def __call__(self, transition: dict, index: int):
        if index != 0:
            return
        if transition["is_first"]:
            self.frames = None
            if self.started is None or time.monotonic() - self.started >= self.seconds:
                self.started, self.frames, self.stride, self.seen = time.monotonic(), [], 1, 0
        if self.frames is None:
            return
        if self.seen % self.stride == 0 or transition["is_last"]:
            self.frames.append((self.seen, transition["image"].copy()))  # a copy: the image is a view of the batch
        if len(self.frames) == self.KEPT_FRAMES and not transition["is_last"]:
            del self.frames[1::2]
            self.stride *= 2
        self.seen += 1
        if transition["is_last"]:
            steps = np.array([step for step, _ in self.frames])
            targets = np.linspace(0, self.seen - 1, min(EPISODE_FRAMES, len(self.frames)))
            chosen = np.abs(steps[None, :] - targets[:, None]).argmin(1)  # (n,): the nearest kept frame
            self.write(np.stack([self.frames[i][1] for i in chosen]))  # (n, H, W, C)
            self.frames = None


class TensorBoard:
    def __init__(self, logdir: Path, resume_step: int | None):
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: points at or after it in older event files are hidden (they came after the checkpoint).
        purge_step = None if resume_step is None else resume_step + 1
        self.writer = SummaryWriter(str(logdir), purge_step=purge_step)

    def log(self, step: int, values: dict):
        for key, value in scalars(values).items():
            self.writer.add_scalar(key, value, step)

    def images(self, step: int, tag: str, images: np.ndarray):
        """images: (N, H, W, C) uint8, shown as one grid (8 per row; gray as RGB)."""
        self.writer.add_images(tag, images, step, dataformats="NHWC")

    def flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()


class WandB:
    def __init__(self, logdir: Path, config):
        import wandb

        # Offline: works without network or account; `wandb sync <logdir>/wandb/offline-run-*` uploads it.
        self.run = wandb.init(project="dreamerv3-bench", name=str(logdir), dir=str(logdir), mode="offline",
                              config=config.to_dict())
        self.run.define_metric("*", step_metric="step")

    def log(self, step: int, values: dict):
        self.run.log({"step": step, **scalars(values)})

    def images(self, step: int, tag: str, images):
        pass  # TensorBoard only

    def flush(self):
        pass  # wandb writes its offline files itself

    def close(self):
        self.run.finish()


class MLflow:
    def __init__(self, logdir: Path, config):
        import mlflow
        from mlflow.entities import Param

        # A SQLite store in the run folder (MLflow 3 refuses its old file store) unless MLFLOW_TRACKING_URI
        # names a server or database.
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(logdir / 'mlflow.db').resolve()}"
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        experiment = self.client.get_experiment_by_name("dreamerv3-bench")
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment("dreamerv3-bench")
        self.run_id = self.client.create_run(experiment_id, run_name=str(logdir)).info.run_id
        self.client.log_batch(self.run_id, params=[Param(key, str(value)) for key, value in config.to_dict().items()])

    def log(self, step: int, values: dict):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(key, value, now, step)
                                                    for key, value in scalars(values).items()])

    def images(self, step: int, tag: str, images):
        pass  # TensorBoard only

    def flush(self):
        pass  # each metric is stored as it is logged

    def close(self):
        self.client.set_terminated(self.run_id)
