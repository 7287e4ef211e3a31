"""What produced a run: code version, packages, machine, container and command line."""
import hashlib
import importlib.metadata
import os
import platform
import re
import socket
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
# torch, numpy and every suite's engine; the ones not installed are left out.
PACKAGES = ("torch", "numpy", "gymnasium", "ale-py", "dm-control", "mujoco", "bsuite", "crafter", "minerl")
# Inside an image built from containers/*.def: the pin file it was installed from, and its apt sources,
# whose first line debootstrap wrote from the recipe's MirrorURL (a dated snapshot of the Debian archive).
IMAGE_PIN_FILE = Path("/opt/dreamer/requirements.txt")
IMAGE_APT_SOURCES = Path("/etc/apt/sources.list")
DEBIAN_SNAPSHOT = re.compile(r"snapshot\.debian\.org/archive/debian/(\d{8}T\d{6}Z)")


def git(*args) -> str | None:
    try:
        result = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def package_versions() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 24), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def container() -> dict | None:
    """The Apptainer/Singularity image this runs in: its file's SHA-256, and which environment it holds
    (the SHA-256 of its pin file, its apt sources and the Debian snapshot they name)."""
    image = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    if not image:
        return None
    sources = IMAGE_APT_SOURCES.read_text().splitlines() if IMAGE_APT_SOURCES.is_file() else []
    sources = [line for line in sources if line.startswith("deb ")]
    snapshots = {match for line in sources for match in DEBIAN_SNAPSHOT.findall(line)}
    return {
        "image": image,
        "digest": sha256(image) if Path(image).is_file() else None,  # a sandbox folder has no single file
        "pin_file_sha256": sha256(IMAGE_PIN_FILE) if IMAGE_PIN_FILE.is_file() else None,
        "apt_sources": sources,
        "debian_snapshot": snapshots.pop() if len(snapshots) == 1 else None,
    }


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_model()


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; platform.processor() is empty there)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect(device: str, argv: list[str], precision: str) -> dict:
    """device: the resolved torch device the run uses; precision: the resolved compute dtype."""
    status = git("status", "--porcelain")
    return {
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "packages": package_versions(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "device": device,
        "device_name": device_name(device),
        "precision": precision,
        "torch_threads": torch.get_num_threads(),
        "command": [sys.executable, *argv],
        "container": container(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "compile_cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR"),  # None: torch's default under /tmp
    }
