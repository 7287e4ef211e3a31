"""The run folder (--logdir) of one training run: what it holds, and the rules for reusing it.

  config.yaml      the resolved config (suite, task, seed, repeat, steps, ...: what the pipeline reads)
  provenance.json  code version, packages, host, device, container, command line (and each resume)
  metrics.jsonl    averaged train metrics, episode averages, replay statistics, fps; every log_every s
  scores.jsonl     one line per finished episode: episode/score, episode/length, log/... values
  events.out.tfevents.*  the same lines for TensorBoard (training/trackers.py; config key trackers), and
                   for image suites a few episodes' frames (config key image_every)
  checkpoints/     the last two good checkpoints (training/checkpoint.py)
  replay/          the replay as chunk files, saved with each checkpoint
  done.json        written last: {"step", "agent_steps", "episodes", "wall_seconds"}
  aside-<time>/    what a start found but could not resume from (no loadable checkpoint), moved aside
  run.lock         held (fcntl.flock) by the process running in the folder; holds its host, pid, start time

A folder made with a different config is refused, except for the keys in MAY_DIFFER_ON_RESUME
(they change speed or cadence, not results). Every write is atomic (temporary file + rename).
Two processes on one folder are kept apart by an OS lock on run.lock, taken before anything else is
written; the kernel drops it when its process dies, so a killed run never leaves a stale lock.
"""
import datetime
import errno
import fcntl
import json
import os
import socket
import sys
from pathlib import Path

import yaml

from training.checkpoint import write_atomic
from training.logger import FILES as LOG_FILES
from training.trackers import EVENT_FILES

MAY_DIFFER_ON_RESUME = ("device", "compile", "threads", "parallel_envs", "log_every", "save_every", "trackers",
                        "image_every", "resume_stateful_env")


def config_as_dict(config) -> dict:
    return json.loads(json.dumps(config.to_dict()))  # tuples become lists, as YAML reads them back


class RunFolder:
    def __init__(self, path: Path, config):
        self.path = Path(path)
        self.config = config
        self.checkpoints = self.path / "checkpoints"
        self.replay = self.path / "replay"
        self.lock_file = None  # the open run.lock while this process holds it

    def lock(self) -> str | None:
        """Take the folder's lock (creating the folder); an error message naming the holder if another
        process has it. Where the filesystem offers no flock (e.g. Lustre mounted with noflock), warns
        and goes on unlocked."""
        self.created = not self.path.exists()
        path = self.path / "run.lock"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            file = open(path, "a+")
        except OSError as error:
            if (self.path / "config.yaml").exists():  # a run to resume, e.g. on a file system now read-only
                return (f"{self.path} cannot be written ({error.strerror}: {error.filename}); nothing was changed. "
                        "Rerun the same command once it is writable to resume the run.")
            return (f"--logdir {self.path} cannot hold a run ({error.strerror}: {error.filename}); "
                    "give a writable folder path.")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                print(f"WARNING: cannot lock {path} ({error.strerror}): this filesystem offers no flock, so "
                      "nothing stops a second run in this folder; start each run once.", file=sys.stderr)
                file.close()
                return None
            file.seek(0)
            holder = file.read().strip() or "a process that has not written its name yet"
            file.close()
            return (f"{self.path} is in use by another run ({holder}). Wait for it to end or stop it; "
                    "use another --logdir for a second run.")
        start = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        file.truncate(0)
        file.write(f"host {socket.gethostname()}, pid {os.getpid()}, started {start}\n")
        file.flush()
        self.lock_file = file
        return None

    def unlock(self):
        """Release the lock; a folder this start created and left holding only run.lock is removed."""
        if self.lock_file is None:
            return
        if self.created and [p.name for p in self.path.iterdir()] == ["run.lock"]:
            (self.path / "run.lock").unlink()
            self.path.rmdir()
        self.lock_file.close()
        self.lock_file = None

    def config_error(self) -> str | None:
        """An error message if the folder was made with a config that differs in a key that matters."""
        path = self.path / "config.yaml"
        if not path.exists():
            return None
        try:
            old = yaml.safe_load(path.read_text())
            if not isinstance(old, dict):
                raise ValueError("not a mapping of config keys")
        except (OSError, ValueError, yaml.YAMLError) as error:
            reason = " ".join(str(error).split())[:200]
            return (f"{path} cannot be read ({type(error).__name__}: {reason}); nothing was changed. Restore it "
                    f"(the run's keys are in {self.path / 'provenance.json'}'s command line), or move the folder "
                    "away to start a new run there.")
        new = config_as_dict(self.config)
        keys = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
        differing = [key for key in keys if key not in MAY_DIFFER_ON_RESUME]
        if not differing:
            return None
        changes = "\n".join(f"  {key}: {old.get(key)!r} in the folder, {new.get(key)!r} now" for key in differing)
        return (f"{self.path} holds a run with a different config:\n{changes}\n"
                f"Use another --logdir for a new run, or the original values (see {path}) to resume it. "
                f"Only {', '.join(MAY_DIFFER_ON_RESUME)} may change on resume.")

    def finished(self) -> str | None:
        """done.json's text if the run is finished."""
        path = self.path / "done.json"
        return path.read_text().strip() if path.exists() else None

    def start(self, resumed: bool):
        """Before the first write of a start: a fresh start in a folder that an earlier start left without
        a usable checkpoint moves that start's files into aside-<UTC time>/ (nothing is deleted) and says
        so; then the config is written."""
        if not resumed and (self.path / "config.yaml").exists():
            aside = self.path / ("aside-" + datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S"))
            while aside.exists():  # two fresh starts within a second
                aside = aside.with_name(aside.name + "+")
            aside.mkdir()
            names = ["config.yaml", "provenance.json", self.checkpoints.name, self.replay.name, *LOG_FILES]
            for path in [*(self.path / name for name in names), *self.path.glob(EVENT_FILES)]:
                if path.exists():
                    path.rename(aside / path.name)
            print(f"No checkpoint to resume from in {self.path}: starting fresh; the earlier start's logs, "
                  f"checkpoints and replay are moved to {aside}.", file=sys.stderr, flush=True)
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path / "config.yaml",
                     yaml.safe_dump(config_as_dict(self.config), sort_keys=False).encode())

    def write_provenance(self, entry: dict, resumed_from: int | None):
        """provenance.json: the first start's entry, then one entry per resume."""
        path = self.path / "provenance.json"
        if resumed_from is None or not path.exists():
            provenance = {**entry, "resumes": []}
        else:
            provenance = json.loads(path.read_text())
            provenance["resumes"].append({**entry, "resumed_from_step": resumed_from})
        write_atomic(path, json.dumps(provenance, indent=2).encode())

    def write_done(self, done: dict):
        write_atomic(self.path / "done.json", json.dumps(done).encode())
