"""The whole workflow: from copied-back logs (no training), and train -> report on config/test.yaml."""
import importlib.util
import json
import re
import subprocess
import sys

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
    done = sorted((tmp_path / "runs").glob("**/done.json"))
    assert len(done) == 2
    for marker in done:  # every run of the grid shares one torch.compile cache beside the results
        provenance = json.loads((marker.parent / "provenance.json").read_text())
        assert provenance["compile_cache"] == str(tmp_path / "results" / "compile_cache")
    report = snakemake("--configfile", "config/test.yaml", local_settings(tmp_path),
                       "--report", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr[-3000:]
    assert (tmp_path / "report.html").stat().st_size > 0
