"""The whole workflow: from copied-back logs (no training), and train -> report on config/test.yaml."""
import importlib.util
import json
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from pipelines.tests.conftest import REFERENCE, catch_episodes, write_run
from pipelines.tests.workflow_helpers import REPO, snakemake

OUTPUTS = ["tables/paper.md", "tables/paper.csv", "tables/aggregates.csv", "tables/tasks.csv",
           "figures/aggregate_curves.png", "figures/aggregate_curves.pdf", "figures/scaling.png",
           "figures/performance_profiles.png", "report.md", "aggregate/problems.txt"]


def training_train_missing() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import training.train"], cwd=REPO, capture_output=True)
    return probe.returncode != 0


def local_settings(tmp_path, **extra) -> str:
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump({"reference": {"local_dir": str(REFERENCE)},
                                    "results_dir": str(tmp_path / "results"),
                                    "runs_dir": str(tmp_path / "runs"), **extra}))
    return str(path)


def test_results_regenerate_from_logs_without_training(tmp_path, reference_dir):
    logs = tmp_path / "copied_logs"
    for seed in (0, 1):
        episodes = [{"step": 30 * i, "episode/score": 10.0 + i + seed} for i in range(1, 11)]
        write_run(logs / f"cartpole-{seed}", "gym", "CartPole-v1", seed, episodes, steps=300)
        write_run(logs / f"catch-{seed}", "bsuite", "catch/0", seed, catch_episodes(30, 0.2), steps=300)
    settings = local_settings(tmp_path, logs_dir=str(logs))
    result = snakemake("--cores", "2", "--configfile", "config/test.yaml", settings)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rule train" not in result.stderr
    terminal = result.stdout + result.stderr  # progress shows while the steps run, not only in their logs
    for step in ("aggregate: reference files 2/2", "tables: aggregates", "tables: profiles"):
        assert step in terminal, step
    assert re.search(r"plots: (\d+)/\1 figures", terminal), "the last figure's progress line"
    results = tmp_path / "results"
    for name in OUTPUTS:
        assert (results / name).exists(), name
    assert {path.name for path in (results / "export").glob("*.json.gz")} == {
        "gym-dreamerv3-torch.json.gz", "bsuite-dreamerv3-torch.json.gz"}
    paper = (results / "tables" / "paper.md").read_text()
    assert "bsuite score" in paper and "dmc_proprio" in paper


def test_random_policy_runs_play_beside_the_grid_and_show_as_their_own_method(tmp_path, reference_dir):
    """config/test.yaml with config.yaml's random_policy on: its training runs already finished (a done.json
    each), so only the random-policy runs play; then the tables, figures and export show method `random`."""
    runs = tmp_path / "runs"
    cartpole = [{"step": 30 * i, "episode/score": 10.0 + i} for i in range(1, 11)]
    for folder in (write_run(runs / "gym/CartPole-v1/1m-ratio32/seed0", "gym", "CartPole-v1", 0, cartpole, steps=300),
                   write_run(runs / "bsuite/catch-0/1m-ratio32/seed0", "bsuite", "catch/0", 0,
                             catch_episodes(30, 0.2), steps=300)):
        (folder / "done.json").write_text("{}")
    result = snakemake("--cores", "2", "--configfile", "config/test.yaml", local_settings(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rule train:" not in result.stderr and result.stderr.count("rule random_policy:") == 2
    for name in ("gym/CartPole-v1", "bsuite/catch-0"):
        config = yaml.safe_load((runs / name / "random/seed0/config.yaml").read_text())
        assert (config["method"], config["steps"]) == ("random", 300)
    results = tmp_path / "results"
    tasks = pd.read_csv(results / "tables" / "tasks.csv")
    assert set(tasks[tasks.label == "random"].benchmark) == {"gym", "bsuite"}
    paper = (results / "tables" / "paper.md").read_text()
    assert "| random " in paper.split("## bsuite")[1].split("\n")[2]  # the header row of bsuite's table
    curves = pd.read_csv(results / "aggregate" / "curves.csv")
    # CartPole's 300 steps are short of gym's budget (labelled); bsuite has an episode budget instead.
    assert set(curves.label) == {"dreamerv3-torch 1m ratio 32 · 300 steps", "dreamerv3-torch 1m ratio 32", "random",
                                 "dreamerv3", "human"}
    assert (results / "figures" / "learning_curves_gym.png").exists()
    assert {path.name for path in (results / "export").glob("*.json.gz")} == {
        "gym-dreamerv3-torch.json.gz", "bsuite-dreamerv3-torch.json.gz", "gym-random.json.gz",
        "bsuite-random.json.gz"}


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("training") is None or training_train_missing(),
                    reason="needs the real training entry point: `python -c 'import training.train'` fails")
def test_train_aggregate_plot_report_on_test_config(tmp_path, reference_dir, monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)  # the rule's own default, not the caller's
    result = snakemake("--cores", "2", "--configfile", "config/test.yaml", local_settings(tmp_path),
                       timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in OUTPUTS:
        assert (tmp_path / "results" / name).exists(), name
    done = sorted((tmp_path / "runs").glob("*/*/*-ratio*/seed*/done.json"))
    assert len(done) == 2
    assert len(list((tmp_path / "runs").glob("*/*/random/seed*/done.json"))) == 2  # config.yaml's random_policy
    for marker in done:  # every run of the grid shares one torch.compile cache beside the runs folder
        provenance = json.loads((marker.parent / "provenance.json").read_text())
        assert provenance["compile_cache"] == str(tmp_path / "compile_cache")
    report = snakemake("--configfile", "config/test.yaml", local_settings(tmp_path),
                       "--report", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr[-3000:]
    assert (tmp_path / "report.html").stat().st_size > 0
