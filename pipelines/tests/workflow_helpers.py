"""Run the workflow's snakemake in a subprocess, with the venv's tools first on PATH."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def snakemake(*args, timeout=300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def job_counts(dry_run_output: str) -> dict:
    """The 'Job stats' table of `snakemake -n` as {rule: count}."""
    lines = dry_run_output.split("Job stats:")[1].splitlines()[3:]
    counts = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 2:
            break
        counts[parts[0]] = int(parts[1])
    return counts
