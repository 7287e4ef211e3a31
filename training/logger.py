"""metrics.jsonl, scores.jsonl and the progress line of a run (spec 6.10).

Every line is a JSON object {"step": agent steps x repeat, ...}, as in the official logs.
scores.jsonl holds one line per finished episode (`episode/score`, `episode/length`, and
the episode's `log/...` values); metrics.jsonl one line per log interval with the train
metrics averaged over the interval, episode averages (`epstats/...`) and whatever the
caller adds (replay statistics, fps). Both files are appended to and flushed per write,
so a checkpoint can record their sizes and a resume can cut them back to it. Each line
also goes to the trackers (training/trackers.py: TensorBoard, W&B, MLflow) at the same step.
"""
import collections
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from training.checkpoint import warn

FILES = ("metrics.jsonl", "scores.jsonl")


def to_json(value):
    value = np.asarray(value)
    return value.item() if value.size == 1 else value.tolist()


class Logger:
    def __init__(self, directory, repeat: int, total_steps: int, start_step: int = 0, stream=None, trackers=()):
        """repeat: action repeat (logged step = agent steps x repeat); total_steps: budget for the ETA;
        start_step: agent steps already done (on resume); stream: default sys.stderr as it is now;
        trackers: from training.trackers.open_trackers, each given every line written."""
        self.directory = Path(directory)
        self.repeat = repeat
        self.total_steps = total_steps
        self.stream = stream if stream is not None else sys.stderr
        self.trackers = list(trackers)
        self.live = self.stream.isatty()  # one updating line on a terminal, plain lines in cluster logs
        self.train_sums = collections.defaultdict(float)
        self.train_counts = collections.defaultdict(int)
        self.interval_episodes = []
        self.recent_scores = collections.deque(maxlen=10)
        self.start_step, self.start_time = start_step, time.monotonic()
        self.last_step, self.last_time = start_step, self.start_time
        self.last_live_print = 0.0
        self.interval_fps = None  # agent steps/s over the last log interval: the best guess for the ETA

    # --- Files ---

    def sizes(self) -> dict:
        """Bytes in each log file now, to store in a checkpoint; fsynced first, so that the files hold what
        the checkpoint counts also after a power loss."""
        sizes = dict.fromkeys(FILES, 0)
        for name in FILES:
            if (self.directory / name).exists():
                with open(self.directory / name, "rb") as file:
                    os.fsync(file.fileno())
                    sizes[name] = os.fstat(file.fileno()).st_size
        return sizes

    def truncate(self, sizes: dict):
        """Cut the log files back to the sizes a checkpoint recorded (drops lines written after it). A file
        found shorter (cut by hand, or lost) is reported and cut to its last whole line, never padded."""
        for name in FILES:
            path, recorded = self.directory / name, sizes.get(name, 0)
            size = path.stat().st_size if path.exists() else 0
            if size < recorded:
                warn(f"{path} holds {size:,} bytes, fewer than the {recorded:,} the checkpoint recorded (cut or "
                     "deleted by hand?): the lines in between are lost; new lines follow its last whole line")
                recorded = path.read_bytes().rfind(b"\n") + 1 if path.exists() else 0
            if path.exists():
                with open(path, "r+b") as file:
                    file.truncate(recorded)

    def _append(self, name: str, step: int, values: dict):
        values = {key: to_json(value) for key, value in values.items()}
        with open(self.directory / name, "a") as file:
            file.write(json.dumps({"step": step * self.repeat, **values}) + "\n")
        for tracker in self.trackers:
            tracker.log(step * self.repeat, values)

    # --- Recording ---

    def episode(self, step: int, episode: dict):
        """One finished episode from the driver; `step` in agent steps."""
        values = {key: value for key, value in episode.items() if key.startswith(("episode/", "log/"))}
        self._append("scores.jsonl", step, values)
        self.interval_episodes.append(values)
        self.recent_scores.append(values["episode/score"])

    def images(self, step: int, tag: str, images: np.ndarray):
        """Images (N, H, W, C) uint8 for the trackers that show them (TensorBoard); `step` in agent steps.
        No jsonl line: the files hold numbers only."""
        for tracker in self.trackers:
            tracker.images(step * self.repeat, tag, images)

    def add(self, metrics: dict):
        """Train metrics of one update; averaged over the log interval."""
        for key, value in metrics.items():
            self.train_sums[key] += float(value)
            self.train_counts[key] += 1

    def write(self, step: int, values: dict):
        """One metrics.jsonl line: interval averages plus `values`; also prints the progress line."""
        now = time.monotonic()
        fps = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_step, self.last_time = step, now
        self.interval_fps = fps
        line = {key: self.train_sums[key] / self.train_counts[key] for key in sorted(self.train_sums)}
        if self.interval_episodes:
            keys = {key for episode in self.interval_episodes for key in episode}
            for key in sorted(keys):
                numbers = [to_json(e[key]) for e in self.interval_episodes if key in e]
                numbers = [n for n in numbers if isinstance(n, (int, float))]
                if numbers:
                    line["epstats/" + key.split("/", 1)[1]] = float(np.mean(numbers))
        line.update(values)
        line["fps/agent_steps"] = fps
        self._append("metrics.jsonl", step, line)
        self.train_sums.clear()
        self.train_counts.clear()
        self.interval_episodes.clear()
        for tracker in self.trackers:
            tracker.flush()
        self.print_progress(step, force=True)

    def close(self):
        for tracker in self.trackers:
            tracker.close()

    # --- Progress line ---

    def print_progress(self, step: int, force: bool = False):
        """On a terminal, refresh the live line (at most twice a second); elsewhere print only when forced."""
        now = time.monotonic()
        if self.live and not force and now - self.last_live_print < 0.5:
            return
        if not self.live and not force:
            return
        self.last_live_print = now
        scores = f"{np.mean(self.recent_scores):.1f}" if self.recent_scores else "-"
        fps = self.interval_fps or (step - self.start_step) / max(now - self.start_time, 1e-9)
        eta = (self.total_steps - step) / fps if fps > 0 else float("nan")
        text = (f"step {step:,}/{self.total_steps:,} ({step * self.repeat:,} env steps) | "
                f"{fps:.1f} agent steps/s | mean of last {len(self.recent_scores)} scores {scores} | "
                f"ETA {format_seconds(eta)}")
        if self.live:
            self.stream.write("\r" + text + "\033[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def message(self, text: str):
        """A plain message that does not get mixed into the live line."""
        self.stream.write(("\n" if self.live else "") + text + "\n")
        self.stream.flush()


def format_seconds(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
