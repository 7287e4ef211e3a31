# Grid, paths and input functions shared by the rule files.
import glob
import os
import shlex

import yaml

from agent.config import SIZES, make_config, parse_overrides
from envs import SUITES
from pipelines.grid import (
    check_names,
    check_overrides,
    grid_cells,
    random_cells,
    random_run_name,
    run_name,
    train_resources,
)

check_names(config, SIZES)
check_overrides(config, lambda items: make_config(**parse_overrides(items)).to_dict())
RUNS = config["runs_dir"]
RESULTS = config["results_dir"]
RUN_PATTERN = "{suite}/{task}/{size}-ratio{train_ratio}/seed{seed}"
# A random-policy run (config `random_policy`): `random` in place of size and ratio, which RUN_PATTERN's
# size wildcard ([0-9]+m) never matches.
RANDOM_PATTERN = "{suite}/{task}/random/seed{seed}"
# With logs_dir set, nothing is trained: the run folders already there are aggregated.
FROM_LOGS = config["logs_dir"] is not None
CELLS = {} if FROM_LOGS else {run_name(cell): cell for cell in grid_cells(config)}
RANDOM_CELLS = {} if FROM_LOGS else {random_run_name(cell): cell for cell in random_cells(config)}


wildcard_constraints:
    suite="[a-z0-9_]+",
    task="[A-Za-z0-9_.-]+",
    size="[0-9]+m",
    train_ratio="[0-9.]+",
    seed="[0-9]+",


def reference_path(relative_path):
    """A reference file: the local copy when configured, else the download in resources/."""
    folder = config["reference"]["local_dir"] or "resources/reference"
    return f"{folder}/{relative_path}"


REFERENCE_FILES = [reference_path(name) for name in config["reference"]["files"]]
BASELINES = reference_path("baselines.yaml")


def run_folders():
    if FROM_LOGS:
        pattern = os.path.join(config["logs_dir"], "**", "scores.jsonl")
        return sorted(os.path.dirname(path) for path in glob.glob(pattern, recursive=True))
    return [f"{RUNS}/{name}" for name in [*CELLS, *RANDOM_CELLS]]


def run_markers():
    """What aggregation waits for: finished runs of the grid (and its random-policy runs), or the scores
    found under logs_dir."""
    marker = "scores.jsonl" if FROM_LOGS else "done.json"
    return [f"{folder}/{marker}" for folder in run_folders()]


def evaluation_outputs():
    """The evaluations the config asks for (`evaluate: episodes` above 0): one per run of the grid."""
    if FROM_LOGS or config["evaluate"]["episodes"] == 0:
        return []
    return [f"{RUNS}/{name}/eval_scores.jsonl" for name in CELLS]


def grid_cell(wildcards):
    return CELLS[RUN_PATTERN.format(**dict(wildcards.items()))]


def random_cell(wildcards):
    return RANDOM_CELLS[RANDOM_PATTERN.format(**dict(wildcards.items()))]


def train_resource(name):
    """A training resource: the suite's own setting, else the train default."""
    def lookup(wildcards):
        return train_resources(config, wildcards.suite)[name]
    return lookup


def display(wildcards):
    """e.g. Minecraft renders through an X display even headless (inside its container)."""
    return "xvfb-run -a" if SUITES[wildcards.suite].needs_display else ""


# train.overrides as the command-line flags of every run: training runs and random-policy runs alike.
# Each quoted for the shell: a value such as env_args={length: 100} holds spaces and braces.
OVERRIDE_FLAGS = shlex.join(["--set"] + config["train"]["overrides"]) if config["train"]["overrides"] else ""
