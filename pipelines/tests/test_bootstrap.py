"""The vectorised stratified bootstrap against rliable, the reference implementation."""
import numpy as np
import pytest
from rliable import library as rly
from scipy import stats

from pipelines import plots, tables
from pipelines.bootstrap import interval_estimates

REPS = 4000
SEEDS = 8  # independent runs of ours, to measure the Monte-Carlo error of one


def small_scores(trailing=()) -> list[np.ndarray]:
    """Four tasks with 3, 5, 4 and 6 runs on different scales, as normalised scores look."""
    rng = np.random.default_rng(7)
    return [rng.normal(centre, spread, size=(runs, *trailing))
            for runs, centre, spread in [(3, 0.2, 0.1), (5, 0.9, 0.4), (4, 1.4, 0.3), (6, 0.5, 0.2)]]


def rliable_interval(per_task, statistic, reps):
    """rliable's stratified bootstrap of the same statistic, called one replicate at a time."""
    np.random.seed(0)  # rliable draws from numpy's global generator
    arrays = [values[:, None] for values in per_task]  # rliable's (runs, 1, ...) per task
    points, intervals = rly.get_interval_estimates(
        {"scores": arrays}, lambda *drawn: statistic([values[:, 0][None] for values in drawn])[0], reps=reps)
    return points["scores"], intervals["scores"]


def curves_with_empty_bins() -> list[np.ndarray]:
    per_task = small_scores(trailing=(6,))  # (runs, bins)
    per_task[0][0, 2] = np.nan  # one seed without an episode in a bin
    per_task[3][:, 5] = np.nan  # a bin no seed of a task reached
    return per_task


CASES = {
    "aggregates": (small_scores(), tables.metric_values("normalised")),
    "profile": (small_scores(), tables.fraction_above(np.linspace(0.0, 2.0, 9))),
    "aggregate curve": (curves_with_empty_bins(), plots.mean_over_tasks),
}


@pytest.mark.parametrize("case", CASES)
def test_intervals_agree_with_rliable_within_monte_carlo_error(case):
    per_task, statistic = CASES[case]
    ours = np.array([interval_estimates(per_task, statistic, REPS, seed=seed) for seed in range(SEEDS)])
    point, low, high = ours[0]
    reference_point, (reference_low, reference_high) = rliable_interval(per_task, statistic, REPS)
    np.testing.assert_array_equal(point, reference_point)
    for bound, reference in ((ours[:, 1], reference_low), (ours[:, 2], reference_high)):
        finite = np.isfinite(reference)
        assert np.array_equal(finite, np.isfinite(bound[0])), "NaN where rliable has none, or the reverse"
        # Two independent estimates: ours averaged over SEEDS runs, rliable's one run, each with
        # the same Monte-Carlo spread per run.
        spread = bound[:, finite].std(axis=0, ddof=1)
        tolerance = 4 * spread * np.sqrt(1 + 1 / SEEDS) + 1e-9
        assert np.all(np.abs(bound[:, finite].mean(axis=0) - reference[finite]) <= tolerance)
    assert np.all(low[np.isfinite(low)] < high[np.isfinite(high)] + 1e-12)


def test_point_estimates_are_the_plain_formulas_exactly():
    per_task = small_scores()
    point, _, _ = interval_estimates(per_task, tables.metric_values("normalised"), reps=10)
    task_means = np.array([values.mean() for values in per_task])
    everything = np.concatenate(per_task)
    plain = [task_means.mean(), np.median(task_means), stats.trim_mean(everything, 0.25),
             np.minimum(task_means, 1.0).mean(), np.maximum(1.0 - everything, 0.0).mean()]
    assert point.tolist() == plain


def test_same_seed_same_interval():
    # rliable draws from numpy's global generator, so its tables changed from one run to the next.
    per_task, statistic = CASES["aggregates"]
    first, second = (interval_estimates(per_task, statistic, reps=100, seed=3) for _ in range(2))
    np.testing.assert_array_equal(np.array(first), np.array(second))
