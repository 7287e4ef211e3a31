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
"""
import numbers
import os
import time
from pathlib import Path

TRACKERS = ("tensorboard", "wandb", "mlflow")
EVENT_FILES = "events.out.tfevents.*"  # TensorBoard's file names, in the run folder


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


class TensorBoard:
    def __init__(self, logdir: Path, resume_step: int | None):
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: points at or after it in older event files are hidden (they came after the checkpoint).
        purge_step = None if resume_step is None else resume_step + 1
        self.writer = SummaryWriter(str(logdir), purge_step=purge_step)

    def log(self, step: int, values: dict):
        for key, value in scalars(values).items():
            self.writer.add_scalar(key, value, step)

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

    def flush(self):
        pass  # each metric is stored as it is logged

    def close(self):
        self.client.set_terminated(self.run_id)
