"""The random-policy baseline's run folders (written by `python -m training.random_policy` as a process, so
pipelines/ imports no training code) are read like any run and shown as their own method, `random`."""
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pipelines import plots, scoring, tables
from pipelines.aggregate import aggregate
from pipelines.runs import load_run_folder
from pipelines.tests.conftest import REPO, catch_episodes, write_run
from pipelines.tests.test_aggregation import workflow_config

RANDOM_RUNS = {
    "gym": ["--suite", "gym", "--task", "CartPole-v1", "--steps", "3000"],
    "bsuite": ["--suite", "bsuite", "--task", "catch/0", "--steps", "300"],
}


@pytest.fixture(scope="module")
def random_runs(tmp_path_factory) -> dict:
    pytest.importorskip("bsuite")
    folders = {}
    for name, argv in RANDOM_RUNS.items():
        folder = tmp_path_factory.mktemp("random") / name
        command = [sys.executable, "-m", "training.random_policy", *argv, "--seed", "0", "--logdir", str(folder)]
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        folders[name] = folder
    return folders


def test_a_random_run_folder_reads_as_the_method_random(random_runs):
    problems = []
    run = load_run_folder(random_runs["gym"], "dreamerv3-torch", problems)
    assert problems == []
    assert (run.method, run.source, run.size, run.task, run.seed) == ("random", "baseline", "", "gym_CartPole-v1", 0)
    assert math.isnan(run.train_ratio) and run.budget == 3000
    lines = [json.loads(line) for line in (random_runs["gym"] / "scores.jsonl").read_text().splitlines()]
    assert run.steps.tolist() == [line["step"] for line in lines] and run.steps.max() <= 3000
    # A uniformly random CartPole-v1 policy lasts about 22 steps (one stuck on one action about 9).
    assert 18 < run.scores.mean() < 27 and len(run.scores) > 100
    assert scoring.run_label(run) == "random"


# One-point lines (one ratio, one size) once warned from pandas inside matplotlib's errorbar; a future pandas raises.
@pytest.mark.filterwarnings("error::FutureWarning")
def test_tables_and_figures_show_random_beside_our_runs(tmp_path, random_runs, reference_dir):
    ours = [write_run(tmp_path / "gym", "gym", "CartPole-v1", 0,
                      [{"step": 100 * i, "episode/score": 10.0 * i} for i in range(1, 31)], steps=3000),
            write_run(tmp_path / "catch", "bsuite", "catch/0", 0, catch_episodes(30, 0.2), steps=300)]
    out = tmp_path / "aggregate"
    aggregate(workflow_config(), [*ours, *random_runs.values()], [], reference_dir / "baselines.yaml", out)
    runs = pd.read_csv(out / "runs.csv", keep_default_na=False, na_values=[""], dtype={"size": str})
    assert sorted(zip(runs.suite, runs.label, runs.source)) == [
        ("bsuite", "dreamerv3-torch 1m ratio 32", "ours"), ("bsuite", "random", "baseline"),
        ("gym", "dreamerv3-torch 1m ratio 32 · 3k steps", "ours"), ("gym", "random", "baseline")]
    random_gym = runs[(runs.label == "random") & (runs.suite == "gym")].iloc[0]
    assert 10 < random_gym.window < 40 and np.isnan(random_gym.train_ratio)
    bsuite = pd.read_csv(out / "bsuite.csv")
    assert sorted(zip(bsuite.label, bsuite.source)) == [("dreamerv3-torch 1m ratio 32", "ours"), ("random", "baseline")]

    tables.write_tables(out / "runs.csv", out / "bsuite.csv", tmp_path / "tables", reps=20)
    aggregates = pd.read_csv(tmp_path / "tables" / "aggregates.csv", dtype={"size": str})
    random_rows = aggregates[aggregates.label == "random"]
    assert set(random_rows.benchmark) == {"gym", "bsuite"} and set(random_rows.source) == {"baseline"}
    for name in ("aggregates.md", "paper.md"):  # a column of its own in each benchmark's table
        text = (tmp_path / "tables" / name).read_text()
        for section in ("## bsuite", "## gym"):
            header = text.split(section)[1].split("\n")[2]
            assert "| random " in header and "dreamerv3-torch 1m ratio 32" in header, (name, section)
    task_rows = pd.read_csv(tmp_path / "tables" / "tasks.csv")
    assert "random" in set(task_rows[task_rows.task == "gym_CartPole-v1"].label)

    curves = pd.read_csv(out / "curves.csv", dtype={"size": str})
    curves["benchmark"] = [tables.benchmark_name(suite, task) for suite, task in zip(curves.suite, curves.task)]
    profiles = pd.read_csv(tmp_path / "tables" / "profiles.csv")
    jobs = {name: arguments for name, _, arguments in plots.figure_jobs(curves, aggregates, profiles, 20)}
    assert jobs["learning_curves_gym"][2] == ["dreamerv3-torch 1m ratio 32 · 3k steps", "random"]  # the legend's labels
    # The scaling figure is ours only: the random bsuite score (no size) stays out of it.
    figure = plots.scaling_curves(aggregates)
    legends = [text.get_text() for axis in figure.axes if axis.get_legend() for text in axis.get_legend().get_texts()]
    assert legends and not any("nan" in text for text in legends)
    plots.plot_all(curves, aggregates, profiles, tmp_path / "figures", reps=20)
    assert (tmp_path / "figures" / "learning_curves_gym.png").exists()
