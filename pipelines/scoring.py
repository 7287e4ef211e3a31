"""Per-run scores under both protocols of spec 7, and the suite-specific scores.

Window protocol (spec 7.4): the mean of the episode scores logged in the last
`window_fraction` of the budget, e.g. [390k, 400k] frames for Atari100k.
Binned protocol (spec 7.3): 30 equal bins over [0, budget], each bin the mean of the run's
episodes in (left, right]; a run's final score is its last bin.

Short runs: a run of ours whose budget is below its suite's own (a CPU-sized demo, e.g. 3k steps
of a 100k-step suite) is labelled with its budget, so it never mixes with full runs, and its
window and final bin are widened back to its last episode when they hold none (DMC's 1,000-step
episodes leave a 3k-step run's last 2.5 % empty). Runs at the suite's budget and the published
runs are scored exactly by the protocols above.
"""
import importlib
import math

import numpy as np
import pandas as pd

from envs import NO_STEP_LIMIT, SUITES
from pipelines.runs import Run

# Minecraft: an episode return above 11.5 means the diamond was collected (spec 6.7).
DIAMOND_RETURN = 11.5
VARIANT = ["suite", "task", "method", "size", "train_ratio", "label"]


def suite_budget(suite: str) -> float:
    """The logged step at which the suite's runs are scored: its report budget, else its step budget."""
    row = SUITES[suite]
    if row.report_budget:
        return float(row.report_budget)
    return math.inf if row.steps >= NO_STEP_LIMIT else float(row.steps * row.repeat)


def is_short(run: Run) -> bool:
    """Our run (or our random-policy baseline) stopped before its suite's budget (see the module docstring)."""
    # A suite without a step budget (bsuite: an episode budget) has no short runs.
    full = suite_budget(run.suite)
    return run.source != "reference" and math.isfinite(full) and run.budget < full


def steps_text(steps: float) -> str:
    """3000 -> '3k', 2500000 -> '2.5M'."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if steps >= scale:
            return f"{steps / scale:g}{suffix}"
    return f"{steps:g}"


def run_label(run: Run) -> str:
    """Legend name: the method, plus model size and train ratio for our own runs, and the budget of a
    short run."""
    if run.source != "ours":
        return run.method
    label = f"{run.method} {run.size} ratio {run.train_ratio:g}"
    return f"{label} · {steps_text(run.budget)} steps" if is_short(run) else label


def fill_budgets(runs: list[Run]) -> None:
    """A run without a fixed budget counts up to the largest x of its (task, method, variant) group."""
    largest = {}
    for run in runs:
        key = (run.suite, run.task, run.method, run.size, run.train_ratio)
        top = run.steps.max() if len(run.steps) else 0.0
        largest[key] = max(largest.get(key, 0.0), top)
    for run in runs:
        if math.isnan(run.budget):
            run.budget = largest[(run.suite, run.task, run.method, run.size, run.train_ratio)]


def within_budget(run: Run) -> np.ndarray:
    return run.steps <= run.budget


def window_score(run: Run, fraction: float) -> float:
    inside = (run.steps >= run.budget * (1 - fraction)) & within_budget(run)
    if not inside.any() and is_short(run) and within_budget(run).any():
        inside = run.steps == run.steps[within_budget(run)].max()  # widened to the last episode
    return float(run.scores[inside].mean()) if inside.any() else math.nan


def binned_curve(run: Run, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Right bin edges and the mean score per bin (NaN where no episode ended)."""
    edges = np.linspace(0.0, run.budget, bins + 1)
    bin_of = np.searchsorted(edges, run.steps, side="left") - 1  # (episodes,) edges[i] < step <= edges[i + 1]
    order = np.argsort(bin_of, kind="stable")  # grouped by bin, each bin's episodes in logged order
    grouped = run.scores[order]
    starts = np.searchsorted(bin_of[order], np.arange(bins + 1))  # bin i: grouped[starts[i]:starts[i + 1]]
    values = np.full(bins, math.nan)
    for index in np.flatnonzero(np.diff(starts)):
        # The same pairwise sum as ndarray.mean, without its per-call overhead (~200k bins in the paper).
        values[index] = np.add.reduce(grouped[starts[index]:starts[index + 1]]) / (starts[index + 1] - starts[index])
    return edges[1:], values


def final_bin(run: Run, bins: int) -> float:
    """The binned protocol's score: the last bin (for a short run, the last bin with an episode)."""
    values = binned_curve(run, bins)[1]
    finite = values[np.isfinite(values)]
    if math.isnan(values[-1]) and is_short(run) and len(finite):
        return float(finite[-1])
    return float(values[-1])


def crafter_score(run: Run) -> float:
    """Spec 6.5: exp(mean_i ln(1 + s_i)) - 1, s_i = % of the run's episodes that unlocked achievement i."""
    counts = [values[within_budget(run)] for name, values in run.episode_logs.items()
              if name.startswith("achievement_")]
    if not counts or not len(counts[0]):
        return math.nan
    rates = np.array([100.0 * np.mean(values > 0) for values in counts])
    return float(np.exp(np.mean(np.log1p(rates))) - 1)


def diamond_found(run: Run) -> float:
    scores = run.scores[within_budget(run)]
    return float((scores > DIAMOND_RETURN).any()) if len(scores) else math.nan


def normaliser(suite: str, task: str, baselines: dict):
    """(low, high) for min-max normalisation, or None where the suite reports raw returns."""
    row = SUITES[suite]
    if row.normaliser:
        return tuple(baselines[row.normaliser][task])
    return row.score_range  # e.g. DMC returns lie in [0, 1000]; used for IQM and optimality gap


def run_table(runs: list[Run], baselines: dict, bins: int, window_fraction: float) -> pd.DataFrame:
    """One row per run: raw and normalised scores under both protocols plus the suite's own score."""
    rows = []
    for run in runs:
        window = window_score(run, window_fraction)
        final = final_bin(run, bins)
        bounds = normaliser(run.suite, run.task, baselines)
        low, high = bounds if bounds else (math.nan, math.nan)
        own_score = {"crafter": crafter_score, "minecraft": diamond_found}.get(run.suite)
        rows.append({
            "suite": run.suite, "task": run.task, "method": run.method, "size": run.size,
            "train_ratio": run.train_ratio, "label": run_label(run), "seed": run.seed,
            "source": run.source, "budget": run.budget, "episodes": int(within_budget(run).sum()),
            "window": window, "bins": final,
            "window_norm": (window - low) / (high - low), "bins_norm": (final - low) / (high - low),
            "suite_score": own_score(run) if own_score else math.nan,
        })
    return pd.DataFrame(rows)


def curve_table(runs: list[Run], baselines: dict, bins: int) -> pd.DataFrame:
    """Binned learning curve of every run (long format), raw and normalised."""
    if not runs:
        return pd.DataFrame(columns=VARIANT + ["seed", "source", "bin", "x", "score", "score_norm"])
    curves = [binned_curve(run, bins) for run in runs]
    bounds = [normaliser(run.suite, run.task, baselines) or (math.nan, math.nan) for run in runs]
    low, high = (np.repeat(values, bins) for values in zip(*bounds))  # (runs * bins,) each
    scores = np.concatenate([ys for _, ys in curves])
    names = pd.DataFrame([{
        "suite": run.suite, "task": run.task, "method": run.method, "size": run.size,
        "train_ratio": run.train_ratio, "label": run_label(run), "seed": run.seed, "source": run.source,
    } for run in runs])
    return names.loc[names.index.repeat(bins)].reset_index(drop=True).assign(
        bin=np.tile(np.arange(bins), len(runs)), x=np.concatenate([xs for xs, _ in curves]), score=scores,
        score_norm=(scores - low) / (high - low))


def bsuite_results_frame(run: Run) -> pd.DataFrame:
    """The one place that turns our per-episode BSuite records into bsuite's logged results.

    bsuite's CSV logger writes, per episode: `episode`, `steps`, `episode_len`,
    `episode_return`, `total_return` and the environment's `bsuite_info()` values
    (e.g. `total_regret`). The env adapter logs each of them per episode as
    `log/bsuite/<column>` in scores.jsonl. Where `episode` or the returns are missing
    they are rebuilt from the episode order and `episode/score`.
    """
    order = np.argsort(run.steps, kind="stable")
    frame = pd.DataFrame({
        "episode": np.arange(1, len(order) + 1),
        "episode_return": run.scores[order],
        "total_return": np.cumsum(run.scores[order]),
    })
    for name, values in run.episode_logs.items():
        if name.startswith("bsuite/"):
            frame[name.removeprefix("bsuite/")] = values[order]
    return frame


def bsuite_scores(runs: list[Run], problems: list) -> pd.DataFrame:
    """bsuite's own score per experiment, from all ids of that experiment run by one method and seed."""
    from bsuite import sweep

    frames = {}
    for run in runs:
        if run.suite != "bsuite" or not len(run.scores):
            continue
        bsuite_id = run.task.removeprefix("bsuite_")
        if bsuite_id not in sweep.SETTINGS:
            problems.append(f"bsuite run {run.task} (seed {run.seed}): no bsuite score, not a bsuite id")
            continue
        experiment = bsuite_id.split("/")[0]
        frame = bsuite_results_frame(run).assign(bsuite_id=bsuite_id, **sweep.SETTINGS[bsuite_id])
        key = (experiment, run.method, run.size, run.train_ratio, run_label(run), run.source, run.seed)
        frames.setdefault(key, []).append(frame)
    rows = []
    for (experiment, method, size, ratio, label, source, seed), parts in sorted(frames.items()):
        analysis = importlib.import_module(f"bsuite.experiments.{experiment}.analysis")
        try:
            score = float(analysis.score(pd.concat(parts, ignore_index=True)))
        except KeyError as error:  # a results column bsuite needs was not logged
            problems.append(f"bsuite {experiment} ({label}, seed {seed}): no score, missing column {error}")
            score = math.nan
        rows.append({"suite": "bsuite", "task": f"bsuite_{experiment}", "method": method, "size": size,
                     "train_ratio": ratio, "label": label, "source": source, "seed": seed, "score": score})
    return pd.DataFrame(rows, columns=VARIANT + ["source", "seed", "score"])
