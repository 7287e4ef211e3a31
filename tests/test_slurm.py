"""The scale-out path, on a real SLURM: scripts/slurm/cluster.sh brings up a one-node cluster with
slurmdbd (so `sacct` works), and workflows run on it through snakemake-executor-plugin-slurm with the
project's profiles/slurm.

    pytest -m slurm tests/test_slurm.py --durations=0

Tests that need the cluster are marked `slurm` and `slow` and skip, saying why, without root or apt. The
cluster is global to the machine: the fixture reuses one that scripts/slurm/cluster.sh started before and
stops it afterwards only if it started it itself.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "scripts" / "slurm" / "cluster.sh"
SLURM_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
LOCAL_PROFILE = REPO / "profiles" / "local"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# The workflow's `python` is this interpreter, as under `make test`, and `python -m training.train` works
# from any working folder, as after `pip install -e .`.
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
# The plugin waits 40 s before its first status check and polls slowly by default.
FAST_STATUS = ["--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1"]

GYM_CELL = {"suite": "gym", "tasks": ["CartPole-v1"], "seeds": [0], "sizes": ["1m"], "train_ratios": [32]}
needs_project_workflow = pytest.mark.skipif(
    not ((REPO / "training" / "train.py").exists() and (REPO / "Snakefile").exists()),
    reason="needs the project's training/train.py and Snakefile; the stand-in workflow tests the same mechanism",
)

# A stand-in for `python -m training.train`, with the same contract: resumable from its --logdir, and on
# SIGTERM or SIGUSR1 (scancel, preemption, the profile's time-limit signal) it checkpoints and exits.
# `total` sums seed * step over every step, so a step skipped or counted twice changes the result.
STAND_IN_TRAIN = """
import argparse, json, signal, sys, time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int)
parser.add_argument("--steps", type=int)
parser.add_argument("--seconds-per-step", type=float)
parser.add_argument("--logdir", type=Path)
parser.add_argument("--out", type=Path)
args = parser.parse_args()

args.logdir.mkdir(parents=True, exist_ok=True)
checkpoint = args.logdir / "checkpoint.json"
state = json.loads(checkpoint.read_text()) if checkpoint.exists() else {"step": 0, "total": 0}
with open(args.logdir / "starts.txt", "a") as starts:
    starts.write(f"{state['step']}\\n")

def checkpoint_and_exit(signum, frame):
    checkpoint.with_suffix(".tmp").write_text(json.dumps(state))
    checkpoint.with_suffix(".tmp").replace(checkpoint)
    sys.exit(128 + signum)

signal.signal(signal.SIGTERM, checkpoint_and_exit)
signal.signal(signal.SIGUSR1, checkpoint_and_exit)
while state["step"] < args.steps:
    time.sleep(args.seconds_per_step)
    # One assignment, so the handler sees either the old or the new state, never half of it.
    state = {"step": state["step"] + 1, "total": state["total"] + args.seed * state["step"]}
    (args.logdir / "progress.txt").write_text(str(state["step"]))
args.out.write_text(f"{args.seed} {state['total']}\\n")
"""

STAND_IN_SNAKEFILE = """
localrules: all, aggregate

rule all:
    input: "results/scores.txt"

rule train:
    output: "results/{{seed}}/score.txt"
    shell:
        "{python} {{workflow.basedir}}/train.py --seed {{wildcards.seed}} --steps {{config[steps]}}"
        " --seconds-per-step {{config[seconds_per_step]}} --logdir runs/{{wildcards.seed}} --out {{output}}"

rule aggregate:
    input: expand("results/{{seed}}/score.txt", seed=config["seeds"])
    output: "results/scores.txt"
    shell: "cat {{input}} > {{output}}"
"""


def run(command, **kwargs):
    """Runs a command; its exit status and output are the caller's to check."""
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)


def run_ok(command, **kwargs):
    result = run(command, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.5)
    return result


def sacct_states(workdir):
    """State of every SLURM job (array tasks one by one) that ran in workdir, as slurmdbd recorded them."""
    query = "sacct --allusers --allocations --noheader --parsable2 --starttime now-1days"
    table = run_ok([*query.split(), "--format", "JobID,State,WorkDir"]).stdout
    rows = [line.split("|") for line in table.splitlines()]
    # "CANCELLED by 0" -> "CANCELLED"
    return [state.split()[0] for _, state, folder in rows if folder == str(workdir)]


def jobs_in(workdir, rule=""):
    """Ids of the queued or running SLURM jobs in workdir (of one rule: the plugin names it in the job's
    comment)."""
    table = run_ok(["squeue", "--noheader", "--format", "%i|%Z|%k"]).stdout
    rows = [line.split("|") for line in table.splitlines()]
    return [job for job, folder, comment in rows if folder == str(workdir) and comment.startswith(f"rule_{rule}")]


def profile_for_this_machine(folder):
    """profiles/slurm without its Apptainer settings (Apptainer cannot be installed on the project's
    machines) and with this cluster's account; every other setting as shipped: retries, requeue, status
    command, array jobs, the time-limit signal. A copy, because a command-line option would replace a
    whole profile key, not one value in it."""
    profile = yaml.safe_load(SLURM_PROFILE.read_text())
    del profile["software-deployment-method"], profile["apptainer-args"], profile["config"]
    profile["default-resources"]["slurm_account"] = "'root'"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def stand_in_workflow(folder, seeds, steps, seconds_per_step):
    folder.mkdir()
    (folder / "train.py").write_text(STAND_IN_TRAIN)
    (folder / "Snakefile").write_text(STAND_IN_SNAKEFILE.format(python=sys.executable))
    config = {"seeds": seeds, "steps": steps, "seconds_per_step": seconds_per_step}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return ["--snakefile", folder / "Snakefile", "--configfile", folder / "config.yaml"]


def project_workflow(folder, grid):
    """The project's Snakefile with config/test.yaml (what CI runs) and `grid` instead of its grid, from a
    folder outside the repository: with the config files the Snakefile loads from the repository root,
    and the shared reference files by absolute path."""
    # No random-policy runs: these tests follow the one training run of `grid` (its scores, its job's kill).
    override = {"reference": {"local_dir": str(REPO.parent / "shared" / "reference")}, "grid": grid,
                "random_policy": False}
    folder.mkdir()
    (folder / "override.yaml").write_text(yaml.safe_dump(override))
    configs = [REPO / "config" / "config.yaml", REPO / "config" / "test.yaml", folder / "override.yaml"]
    return ["--snakefile", REPO / "Snakefile", "--configfile", *configs]


def finish(process, timeout=300):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


def snakemake_locally(workdir, workflow_args, timeout=300):
    workdir.mkdir()
    run_ok([*SNAKEMAKE, *workflow_args, "--cores", "2"], cwd=workdir, env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("needs root: scripts/slurm/cluster.sh installs Debian packages and starts system daemons")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("needs SLURM installed, or apt-get (Debian/Ubuntu) to install it")
    was_up = run([CLUSTER_SH, "status"]).returncode == 0
    run_ok([CLUSTER_SH, "up"], timeout=600)
    yield
    if not was_up:
        run_ok([CLUSTER_SH, "down"], timeout=300)


@pytest.fixture
def on_slurm(cluster, tmp_path):
    """start(workflow_args) runs Snakemake through SLURM in tmp_path/slurm, in the background, and returns
    the process. Whatever still runs when the test ends is stopped, its SLURM jobs too."""
    workdir = tmp_path / "slurm"
    processes = []

    def start(workflow_args):
        profile = profile_for_this_machine(tmp_path / "profile")
        workdir.mkdir()
        command = [*SNAKEMAKE, *workflow_args, "--workflow-profile", profile, *FAST_STATUS]
        process = subprocess.Popen(
            [str(part) for part in command], cwd=workdir, env=ENV, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.kill()
        process.wait()
    if jobs := jobs_in(workdir):
        run_ok(["scancel", *jobs])


def test_slurm_profile_signals_the_training_process_before_the_time_limit():
    train = yaml.safe_load(SLURM_PROFILE.read_text())["set-resources"]["train"]
    # "B:" would signal only the batch shell, which runs Snakemake, not the training process.
    assert "--signal=USR1@" in train["slurm_extra"] and "B:" not in train["slurm_extra"]


def test_local_profile_runs_one_train_job_per_gpu(tmp_path):
    (tmp_path / "span.py").write_text(
        "import sys, time\nstart = time.time()\ntime.sleep(1)\nopen(sys.argv[1], 'w').write(f'{start} {time.time()}')\n"
    )
    (tmp_path / "Snakefile").write_text(
        'rule all:\n    input: expand("spans/{i}.txt", i=range(3))\n\n'
        f'rule train:\n    output: "spans/{{i}}.txt"\n    shell: "{sys.executable} span.py {{output}}"\n'
    )
    # --cores 2 leaves room for two jobs at once: only the profile's one GPU keeps them apart.
    run_ok([*SNAKEMAKE, "--workflow-profile", LOCAL_PROFILE, "--cores", "2"], cwd=tmp_path)
    spans = sorted(tuple(map(float, path.read_text().split())) for path in (tmp_path / "spans").iterdir())
    assert len(spans) == 3
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), spans


@pytest.mark.slurm
@pytest.mark.slow
def test_sbatch_job_completes_and_sacct_records_it(cluster, tmp_path):
    run_ok(["sbatch", "--wait", "--chdir", tmp_path, "--output", "out.txt", "--wrap", "echo hello"])
    assert (tmp_path / "out.txt").read_text() == "hello\n"
    # slurmdbd records the end of a job a moment after sbatch --wait returns.
    assert wait_until(lambda: sacct_states(tmp_path) == ["COMPLETED"], 30, "sacct to record the job")


@pytest.mark.slurm
@pytest.mark.slow
def test_workflow_on_slurm_submits_jobs_and_matches_a_local_run(on_slurm, tmp_path):
    workflow = stand_in_workflow(tmp_path / "workflow", seeds=[1, 2], steps=5, seconds_per_step=0.1)
    slurm = on_slurm(workflow)
    snakemake_locally(tmp_path / "local", workflow)
    finish(slurm)

    # The two train jobs went through SLURM (as one job array); aggregate is a local rule.
    assert wait_until(lambda: sacct_states(tmp_path / "slurm") == ["COMPLETED"] * 2, 30, "sacct records")
    scores = (tmp_path / "slurm" / "results" / "scores.txt").read_text()
    assert scores == (tmp_path / "local" / "results" / "scores.txt").read_text() == "1 10\n2 20\n"


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.parametrize("scancel_options", [[], ["--signal=USR1"]], ids=["scancel", "time-limit-signal"])
def test_killed_job_is_resubmitted_and_resumes_from_its_checkpoint(on_slurm, tmp_path, scancel_options):
    workflow = stand_in_workflow(tmp_path / "workflow", seeds=[3], steps=30, seconds_per_step=0.2)
    workdir = tmp_path / "slurm"
    snakemake = on_slurm(workflow)
    progress = workdir / "runs" / "3" / "progress.txt"
    wait_until(lambda: progress.exists() and int(progress.read_text() or 0) >= 5, 120, "5 training steps")
    run_ok(["scancel", *scancel_options, *jobs_in(workdir, rule="train")])
    finish(snakemake)

    starts = [int(step) for step in (workdir / "runs" / "3" / "starts.txt").read_text().split()]
    assert len(starts) == 2 and starts[0] == 0 and starts[1] >= 5, starts
    assert (workdir / "results" / "scores.txt").read_text() == f"3 {3 * sum(range(30))}\n"
    # scancel ends the job CANCELLED; the stand-in exits non-zero on USR1, so that job FAILED.
    assert wait_until(lambda: sacct_states(workdir)[-1:] == ["COMPLETED"], 30, "sacct records")
    assert sacct_states(workdir)[0] == ("FAILED" if scancel_options else "CANCELLED")


@pytest.mark.slurm
@pytest.mark.slow
@needs_project_workflow
def test_project_grid_on_slurm_matches_a_local_run(on_slurm, tmp_path):
    # The gym cell of the test grid, through every rule of the workflow. Not the bsuite cell: two runs of
    # one bsuite seed already differ from each other locally.
    workflow = project_workflow(tmp_path / "workflow", grid=[{**GYM_CELL, "steps": 300}])
    slurm = on_slurm(workflow)
    snakemake_locally(tmp_path / "local", workflow, timeout=1800)
    finish(slurm, timeout=1800)

    # Every rule but the local ones ran as a SLURM job: the train jobs and the results rules.
    states = wait_until(lambda: sacct_states(tmp_path / "slurm"), 30, "sacct records")
    assert set(states) == {"COMPLETED"}, states
    local_scores = sorted((tmp_path / "local").rglob("scores.jsonl"))
    assert len(local_scores) == 1, local_scores
    for path in local_scores:
        twin = tmp_path / "slurm" / path.relative_to(tmp_path / "local")
        assert twin.read_text() == path.read_text(), twin


@pytest.mark.slurm
@pytest.mark.slow
@needs_project_workflow
def test_project_train_job_killed_mid_run_resumes_from_its_checkpoint(on_slurm, tmp_path):
    # A cell that resumes (bsuite runs start again by design), long enough to be killed mid-run.
    workflow = project_workflow(tmp_path / "workflow", grid=[{**GYM_CELL, "steps": 1000}])
    workdir = tmp_path / "slurm"
    snakemake = on_slurm(workflow)
    # The first finished episode shows the run is under way.
    scores = wait_until(lambda: next(workdir.glob("results/**/scores.jsonl"), None), 600, "a first episode")
    run_ok(["scancel", *jobs_in(workdir, rule="train")])
    finish(snakemake, timeout=1800)

    run_folder = scores.parent
    assert (run_folder / "done.json").exists()
    resumes = json.loads((run_folder / "provenance.json").read_text())["resumes"]
    assert len(resumes) == 1 and resumes[0]["resumed_from_step"] > 0, resumes
    states = wait_until(lambda: sacct_states(workdir), 30, "sacct records")
    assert states.count("CANCELLED") == 1 and set(states) == {"CANCELLED", "COMPLETED"}, states
