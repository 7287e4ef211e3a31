"""Atomic checkpoints with a checksum; the newest good one is loaded.

A checkpoint is `step-<agent step>.pt` (torch.save of one dict) plus `step-<agent step>.sha256`,
the SHA-256 of the .pt file. Both are written to a temporary file and renamed into place,
the checksum last, so it doubles as the completeness marker: a checkpoint without it, or
whose bytes do not match it, is skipped with a warning and the previous one is used.
The newest `keep` complete checkpoints are kept; a save deletes the rest and any leftovers
of a killed save.
"""
import errno
import hashlib
import io
import os
import sys
from pathlib import Path

import torch


def write_atomic(path: Path, data: bytes):
    """The whole file or the old one, also after a power loss (the file, then its folder, fsynced)."""
    temp = path.with_name(path.name + ".tmp")
    with open(temp, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)
    fsync_directory(path.parent)


def fsync_directory(directory: Path):
    """Puts the folder's renames and new names on disk. Where the file system cannot fsync a folder (some
    network and FUSE file systems), the renames stay atomic, only not yet durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(descriptor)


class Checkpoints:
    def __init__(self, directory, keep: int = 2):
        self.directory = Path(directory)
        self.keep = keep

    def _paths(self) -> list[Path]:
        """Checkpoint files, newest first."""
        return sorted(self.directory.glob("step-*.pt"), reverse=True)

    def save(self, state: dict, step: int) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        data = buffer.getvalue()
        path = self.directory / f"step-{step:012d}.pt"
        marker = path.with_suffix(".sha256")
        marker.unlink(missing_ok=True)  # a checkpoint at the same step is being replaced
        write_atomic(path, data)
        write_atomic(marker, hashlib.sha256(data).hexdigest().encode())
        complete = [p for p in self._paths() if p.with_suffix(".sha256").exists()]
        for old in complete[self.keep :]:
            old.with_suffix(".sha256").unlink()
            old.unlink()
        for leftover in [p for p in self._paths() if p not in complete] + list(self.directory.glob("*.tmp")):
            leftover.unlink()  # from a save that was killed
        return path

    def load_latest(self) -> tuple[dict, Path] | tuple[None, None]:
        """The newest checkpoint whose checksum matches, or (None, None) if there is none."""
        for path in self._paths():
            marker = path.with_suffix(".sha256")
            if not marker.exists():
                warn(f"checkpoint {path} is incomplete (no {marker.name}); trying an older one")
                continue
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != marker.read_text().strip():
                warn(f"checkpoint {path} is corrupt (checksum mismatch); trying an older one")
                continue
            # Our own file, verified by its checksum; it holds numpy RNG states, so not weights_only.
            return torch.load(io.BytesIO(data), weights_only=False), path
        return None, None


def warn(text: str):
    print(f"WARNING: {text}", file=sys.stderr, flush=True)


class Checkpoint:
    """One checkpoint of registered parts: `register(name, save, load)`, where save() returns the part's
    state and load(state) restores it. Parts are saved and restored in the order they were registered."""

    def __init__(self, directory, keep: int = 2):
        self.files = Checkpoints(directory, keep)
        self.parts = {}

    def register(self, name: str, save, load):
        self.parts[name] = (save, load)

    def save(self, step: int) -> Path:
        return self.files.save({name: save() for name, (save, _) in self.parts.items()}, step)

    def restore(self, state: dict):
        for name, (_, load) in self.parts.items():
            load(state[name])
