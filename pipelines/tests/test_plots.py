"""Figures: drawn side by side, and copied from the cache while their inputs are unchanged."""
import pandas as pd

from pipelines import plots
from pipelines.tests.conftest import catch_episodes, write_run
from pipelines.tests.test_aggregation import workflow_config


def small_results(tmp_path, reference_dir, score_offset=0.0):
    """Aggregated curves and tables of two short CartPole runs (no reference runs)."""
    from pipelines.aggregate import aggregate
    from pipelines.tables import benchmark_name, write_tables

    folders = []
    for seed in (0, 1):
        episodes = [{"step": 30 * i, "episode/score": 10.0 + i + seed + score_offset} for i in range(1, 11)]
        folders.append(write_run(tmp_path / "logs" / f"cartpole-{seed}", "gym", "CartPole-v1", seed, episodes,
                                 steps=300))
    folders.append(write_run(tmp_path / "logs" / "catch", "bsuite", "catch/0", 0, catch_episodes(30, 0.2), steps=300))
    aggregate(workflow_config(), folders, [], reference_dir / "baselines.yaml", tmp_path / "aggregate")
    write_tables(tmp_path / "aggregate" / "runs.csv", tmp_path / "aggregate" / "bsuite.csv", tmp_path / "tables", 50)
    curves = pd.read_csv(tmp_path / "aggregate" / "curves.csv", dtype={"size": str})
    curves["benchmark"] = [benchmark_name(suite, task) for suite, task in zip(curves.suite, curves.task)]
    aggregates = pd.read_csv(tmp_path / "tables" / "aggregates.csv", dtype={"size": str})
    return curves, aggregates, pd.read_csv(tmp_path / "tables" / "profiles.csv")


def test_unchanged_figures_come_from_the_cache_and_changed_ones_are_redrawn(tmp_path, reference_dir, capsys):
    curves, aggregates, profiles = small_results(tmp_path, reference_dir)
    cache = tmp_path / "cache"
    plots.plot_all(curves, aggregates, profiles, tmp_path / "first", reps=50, workers=2, cache_dir=cache)
    names = {"learning_curves_gym", "aggregate_curves", "scaling", "performance_profiles"}
    assert {path.stem for path in (tmp_path / "first").glob("*.png")} == names
    assert {path.stem for path in (tmp_path / "first").glob("*.pdf")} == names
    drawn = capsys.readouterr().err
    assert drawn.count("(drawn)") == 4 and "plots: 4/4 figures" in drawn

    plots.plot_all(curves, aggregates, profiles, tmp_path / "second", reps=50, workers=1, cache_dir=cache)
    assert capsys.readouterr().err.count("(unchanged, from the cache)") == 4
    for name in names:
        assert (tmp_path / "second" / f"{name}.png").read_bytes() == (tmp_path / "first" / f"{name}.png").read_bytes()

    changed_curves, changed_aggregates, changed_profiles = small_results(tmp_path / "changed", reference_dir, 1.0)
    plots.plot_all(changed_curves, changed_aggregates, changed_profiles, tmp_path / "third", reps=50, workers=1,
                   cache_dir=cache)
    third = capsys.readouterr().err
    # Higher CartPole scores change the curves and the tables; the bsuite-only profile stays.
    assert "learning_curves_gym (drawn)" in third and "aggregate_curves (drawn)" in third
    assert "scaling (drawn)" in third
    assert "performance_profiles (unchanged, from the cache)" in third
    assert len(list(cache.glob("learning_curves_gym.*.png"))) == 1  # the earlier version is gone
