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
    names = {"learning_curves_gym", "aggregate_curves", "scaling", "data_efficiency", "performance_profiles"}
    assert {path.stem for path in (tmp_path / "first").glob("*.png")} == names
    assert {path.stem for path in (tmp_path / "first").glob("*.pdf")} == names
    drawn = capsys.readouterr().err
    assert drawn.count("(drawn)") == 5 and "plots: 5/5 figures" in drawn

    plots.plot_all(curves, aggregates, profiles, tmp_path / "second", reps=50, workers=1, cache_dir=cache)
    assert capsys.readouterr().err.count("(unchanged, from the cache)") == 5
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


def ratio_sweep_curves(learn_at: dict, seeds=(0, 1), bins=10, budget=1000.0) -> pd.DataFrame:
    """Binned curves of ours: per train ratio, each seed jumps from 0 to 100 at bin learn_at[ratio] + seed."""
    rows = []
    for ratio, first in learn_at.items():
        for seed in seeds:
            for index in range(bins):
                score = 100.0 if first is not None and index >= first + seed else 0.0
                rows.append(dict(suite="gym", task="gym_CartPole-v1", method="m", size="1m", train_ratio=ratio,
                                 label=f"m 1m ratio {ratio}", seed=seed, source="ours", bin=index,
                                 x=budget * (index + 1) / bins, score=score, score_norm=float("nan")))
    return pd.DataFrame(rows)


def test_data_efficiency_counts_steps_to_the_threshold_and_the_score_at_the_budget():
    table = plots.efficiency_table(ratio_sweep_curves({32: 6, 64: 3, 128: 1}), reps=200).set_index("x_value")
    assert table.threshold.iloc[0] == 50.0  # halfway between the lowest and highest seed-mean bin
    # Seeds reach 100 at bins first and first + 1: x = 100 * (bin + 1).
    assert table.steps.to_dict() == {32: 750.0, 64: 450.0, 128: 250.0}
    assert table.steps_low[128] == 200.0 and table.steps_high[128] == 300.0
    assert (table.score == 100.0).all() and (table.reached == 2).all()
    summary = plots.efficiency_summary(table.reset_index())
    assert "steps fall monotonically, score rises monotonically" in summary
    assert "are separated by their 95 % intervals" in summary


def test_data_efficiency_says_when_the_trend_does_not_hold_and_counts_unreached_runs_at_their_budget():
    table = plots.efficiency_table(ratio_sweep_curves({32: 2, 64: None, 128: 5}), reps=200).set_index("x_value")
    assert table.steps[64] == 1000.0 and table.reached[64] == 0 and table.score[64] == 0.0
    summary = plots.efficiency_summary(table.reset_index())
    assert "steps do not fall monotonically" in summary and "score does not rise" in summary


def test_data_efficiency_needs_two_variants_of_a_task():
    assert plots.efficiency_table(ratio_sweep_curves({32: 2}), reps=50).empty
    assert "No task of ours" in plots.efficiency_summary(plots.efficiency_table(ratio_sweep_curves({32: 2}), 50))
