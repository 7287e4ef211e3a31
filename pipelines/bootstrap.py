"""Stratified-bootstrap interval estimates, every replicate at once.

The method of rliable (Agarwal et al., 2021): a replicate redraws, with replacement, each task's
runs from that task's own runs (tasks may have different numbers of runs), and the 95 % interval
is the 2.5th and 97.5th percentile of the statistic over the replicates. rliable calls the
statistic once per replicate in Python; here a statistic takes a whole batch of replicates, so
thousands of replicates cost a few numpy calls. rliable is the reference in the tests.
"""
import numpy as np


def resample(per_task: list[np.ndarray], reps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Each task's runs drawn with replacement from its own runs: (runs, ...) -> (reps, runs, ...)."""
    return [values[rng.integers(0, len(values), size=(reps, len(values)))] for values in per_task]


def interval_estimates(per_task: list[np.ndarray], statistic, reps: int, seed: int = 0, size: float = 0.95):
    """Point estimate of `statistic` and its stratified-bootstrap interval (percentile method).

    per_task: one (runs, ...) array per task. statistic: one (batch, runs, ...) array per task ->
    (batch, k) values. Returns point (k,), low (k,), high (k,).
    """
    point = statistic([values[None] for values in per_task])[0]  # the data itself: a batch of one
    replicates = statistic(resample(per_task, reps, np.random.default_rng(seed)))  # (reps, k)
    tail = 100 * (1 - size) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail], axis=0)
    return point, low, high
