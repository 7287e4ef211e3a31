"""Tables rule: per-run scores -> the paper's aggregates, IQM and optimality gap with
stratified-bootstrap 95 % intervals (rliable's method), performance profiles, per-task scores.

Every aggregate is computed from one "score set": for one benchmark, method variant
(label), protocol and quantity, the per-run values grouped by task.
"""
import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from pipelines.bootstrap import interval_estimates
from pipelines.progress import progress

# Quantities bounded by 0 (no skill) and 1 (the reference level), where capping, the
# optimality gap and performance profiles are meaningful.
NORMALISED = ("normalised", "crafter score / 100", "diamond rate", "bsuite score")
# The numbers the paper reports per benchmark: (quantity, protocol, metric).
PAPER_METRICS = {
    "atari100k": [("normalised", "window", "mean"), ("normalised", "window", "median")],
    "atari200m": [("normalised", "bins", "median"), ("normalised", "bins", "mean")],
    "dmc_proprio": [("return", "bins", "mean")],
    "dmc_vision": [("return", "bins", "mean")],
    "dmlab": [("normalised", "bins", "mean"), ("normalised", "bins", "capped mean")],
    "procgen": [("normalised", "bins", "mean")],
    "crafter_reward": [("crafter score / 100", "all episodes", "mean"), ("return", "window", "mean")],
    "crafter_noreward": [("crafter score / 100", "all episodes", "mean")],
    "minecraft": [("diamond rate", "all episodes", "mean"), ("return", "window", "mean")],
    "bsuite": [("bsuite score", "all episodes", "mean")],
    "gym": [("return", "window", "mean")],
}
GROUP = ["benchmark", "label", "method", "size", "train_ratio", "source", "protocol", "quantity"]


def benchmark_name(suite: str, task: str) -> str:
    """Crafter's reward and no-reward tasks are separate benchmarks; elsewhere the suite is one."""
    return task if suite == "crafter" else suite


def score_sets(runs: pd.DataFrame, bsuite: pd.DataFrame) -> pd.DataFrame:
    """Long frame of per-run values: GROUP columns + task, seed, value."""
    runs = runs.assign(benchmark=[benchmark_name(s, t) for s, t in zip(runs.suite, runs.task)])
    keep = ["benchmark", "label", "method", "size", "train_ratio", "source", "task", "seed"]
    parts = []
    for protocol in ("window", "bins"):
        parts.append(runs[keep].assign(protocol=protocol, quantity="return", value=runs[protocol]))
        normalised = runs[f"{protocol}_norm"]
        parts.append(runs[keep].assign(protocol=protocol, quantity="normalised", value=normalised))
    own = runs[keep].assign(protocol="all episodes", value=runs["suite_score"])
    parts.append(own[runs.suite == "crafter"].assign(quantity="crafter score / 100",
                                                     value=lambda f: f.value / 100))
    parts.append(own[runs.suite == "minecraft"].assign(quantity="diamond rate"))
    if len(bsuite):
        bsuite = bsuite.assign(benchmark="bsuite", protocol="all episodes",
                               quantity="bsuite score", value=bsuite.score)
        parts.append(bsuite[GROUP + ["task", "seed", "value"]])
    frame = pd.concat(parts, ignore_index=True)
    frame["size"] = frame["size"].fillna("")
    return frame[np.isfinite(frame.value.astype(float))]


def metric_names(quantity: str) -> list[str]:
    extra = ["capped mean", "optimality gap"] if quantity in NORMALISED else []
    return ["mean", "median", "IQM"] + extra


def metric_values(quantity: str):
    """The statistic the bootstrap takes: one (batch, runs) array per task -> (batch, metrics)."""
    def compute(per_task):
        task_means = np.stack([values.mean(axis=1) for values in per_task], axis=1)  # (batch, tasks)
        everything = np.concatenate(per_task, axis=1)  # (batch, all runs)
        result = [task_means.mean(axis=1), np.median(task_means, axis=1),
                  stats.trim_mean(everything, 0.25, axis=1)]
        if quantity in NORMALISED:
            result += [np.minimum(task_means, 1.0).mean(axis=1), np.maximum(1.0 - everything, 0.0).mean(axis=1)]
        return np.stack(result, axis=1)
    return compute


def fraction_above(taus: np.ndarray):
    """Performance profile statistic: one (batch, runs) array per task -> (batch, taus), task-weighted."""
    def compute(per_task):
        per_task_fractions = [(values[:, :, None] > taus).mean(axis=1) for values in per_task]  # (batch, taus)
        return np.stack(per_task_fractions, axis=2).mean(axis=2)
    return compute


def per_task_arrays(group: pd.DataFrame) -> list[np.ndarray]:
    # One (runs,) array per task, as tasks may have different seed counts.
    return [part.value.to_numpy(float) for _, part in group.groupby("task")]


def aggregate_table(sets: pd.DataFrame, reps: int) -> pd.DataFrame:
    rows = []
    groups = sets.groupby(GROUP, dropna=False)
    for number, (key, group) in enumerate(groups, 1):
        progress("tables", f"aggregates {number}/{groups.ngroups}: {key[0]} {key[1]} ({key[-2]}, {key[-1]})")
        arrays = per_task_arrays(group)
        points, lows, highs = interval_estimates(arrays, metric_values(key[-1]), reps)
        for index, metric in enumerate(metric_names(key[-1])):
            rows.append(dict(zip(GROUP, key), metric=metric, value=points[index], ci_low=lows[index],
                             ci_high=highs[index], tasks=len(arrays), runs=len(group)))
    columns = GROUP + ["metric", "value", "ci_low", "ci_high", "tasks", "runs"]
    return pd.DataFrame(rows, columns=columns)


def profile_table(sets: pd.DataFrame, reps: int, points: int = 41) -> pd.DataFrame:
    """Performance profiles (fraction of runs above tau, task-weighted) of normalised window scores."""
    rows = []
    chosen = sets[(sets.protocol.isin(["window", "all episodes"])) & sets.quantity.isin(NORMALISED)]
    groups = chosen.groupby(GROUP, dropna=False)
    for number, (key, group) in enumerate(groups, 1):
        progress("tables", f"profiles {number}/{groups.ngroups}: {key[0]} {key[1]} ({key[-2]}, {key[-1]})")
        taus = np.linspace(0.0, max(1.0, float(group.value.max())), points)
        estimates, lows, highs = interval_estimates(per_task_arrays(group), fraction_above(taus), reps)
        for index, tau in enumerate(taus):
            rows.append(dict(zip(GROUP, key), tau=tau, fraction=estimates[index], ci_low=lows[index],
                             ci_high=highs[index]))
    return pd.DataFrame(rows, columns=GROUP + ["tau", "fraction", "ci_low", "ci_high"])


def task_table(sets: pd.DataFrame) -> pd.DataFrame:
    keys = GROUP + ["task"]
    return sets.groupby(keys, dropna=False).value.agg(["mean", "std", "count"]).reset_index().rename(
        columns={"count": "seeds"})


def paper_table(aggregates: pd.DataFrame) -> pd.DataFrame:
    """The rows of `aggregates` that are the numbers the paper reports."""
    wanted = [(benchmark, *spec) for benchmark, specs in PAPER_METRICS.items() for spec in specs]
    wanted = pd.DataFrame(wanted, columns=["benchmark", "quantity", "protocol", "metric"])
    return aggregates.merge(wanted, on=["benchmark", "quantity", "protocol", "metric"])


def with_interval(frame: pd.DataFrame, all_tasks: int) -> pd.Series:
    """`value [low, high]`, and how many of the benchmark's tasks it covers when not all of them: a mean
    over fewer tasks is not comparable with the other columns (e.g. a ratio run on one gym task only)."""
    def text(row):
        if math.isnan(row.value):
            return "–"
        coverage = f" · {row.tasks} of {all_tasks} tasks" if row.tasks < all_tasks else ""
        return f"{row.value:.3g} [{row.ci_low:.3g}, {row.ci_high:.3g}]{coverage}"
    return frame.apply(text, axis=1)


def markdown(aggregates: pd.DataFrame) -> str:
    """One section per benchmark: rows = quantity/protocol/metric, columns = method variants."""
    sections = []
    for benchmark, frame in aggregates.groupby("benchmark"):
        frame = frame.assign(cell=with_interval(frame, int(frame.tasks.max())),
                             row=frame.quantity + " · " + frame.protocol + " · " + frame.metric)
        table = frame.pivot_table(index="row", columns="label", values="cell", aggfunc="first")
        sections.append(f"## {benchmark}\n\n{table.to_markdown()}\n")
    header = ("Point estimates with stratified-bootstrap 95 % intervals (rliable's method); a cell over fewer "
              "of the benchmark's tasks than the others says so (`· 1 of 2 tasks`).\n\n")
    return header + "\n".join(sections)


def write_tables(runs_csv, bsuite_csv, out_dir, reps: int):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = pd.read_csv(runs_csv, keep_default_na=False, na_values=[""], dtype={"size": str})
    bsuite = pd.read_csv(bsuite_csv, dtype={"size": str})
    sets = score_sets(runs, bsuite)
    aggregates = aggregate_table(sets, reps)
    paper = paper_table(aggregates)
    aggregates.to_csv(out_dir / "aggregates.csv", index=False)
    paper.to_csv(out_dir / "paper.csv", index=False)
    task_table(sets).to_csv(out_dir / "tasks.csv", index=False)
    profile_table(sets, reps).to_csv(out_dir / "profiles.csv", index=False)
    (out_dir / "aggregates.md").write_text("# All aggregates\n\n" + markdown(aggregates))
    (out_dir / "paper.md").write_text("# The paper's aggregates\n\n" + markdown(paper))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", required=True, help="runs.csv from the aggregate rule")
    parser.add_argument("--bsuite", required=True, help="bsuite.csv from the aggregate rule")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--bootstrap-reps", type=int, default=2000)
    args = parser.parse_args()
    write_tables(args.runs, args.bsuite, args.out_dir, args.bootstrap_reps)


if __name__ == "__main__":
    main()
