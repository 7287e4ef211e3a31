"""Plots rule: learning curves per task (reference methods beside ours), aggregate curves
with bootstrap bands, scaling curves and performance profiles, as PNG and PDF."""
import argparse
import math
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on cluster nodes

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rliable import library as rly  # noqa: E402

from pipelines.tables import PAPER_METRICS, benchmark_name  # noqa: E402

PANELS_PER_PAGE = 30


def save(figure, out_dir: Path, name: str):
    figure.tight_layout()
    for suffix in ("png", "pdf"):
        figure.savefig(out_dir / f"{name}.{suffix}", dpi=120, bbox_inches="tight")  # keep the legend
    plt.close(figure)


def panel_grid(count: int, columns: int = 5, size: float = 2.6):
    rows = max(1, math.ceil(count / columns))
    columns = min(columns, max(count, 1))
    figure, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows), squeeze=False)
    for axis in axes.flat[count:]:
        axis.axis("off")
    return figure, axes.flat


def colours(labels) -> dict:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {label: cycle[index % len(cycle)] for index, label in enumerate(sorted(labels))}


def learning_curves(curves: pd.DataFrame, out_dir: Path):
    """Mean over seeds of every task's binned curve, band = one standard deviation."""
    curves = curves[curves.suite != "bsuite"]  # bsuite is judged by its own analysis, per experiment
    for benchmark, frame in curves.groupby("benchmark"):
        palette = colours(frame.label.unique())
        tasks = sorted(frame.task.unique())
        for page, start in enumerate(range(0, len(tasks), PANELS_PER_PAGE)):
            chunk = tasks[start:start + PANELS_PER_PAGE]
            figure, axes = panel_grid(len(chunk))
            for axis, task in zip(axes, chunk):
                for label, run_curves in frame[frame.task == task].groupby("label"):
                    stats = run_curves.groupby("bin").agg(x=("x", "median"), mean=("score", "mean"),
                                                          std=("score", "std")).dropna(subset=["mean"])
                    axis.plot(stats.x, stats["mean"], color=palette[label], marker=".", markersize=3)
                    axis.fill_between(stats.x, stats["mean"] - stats["std"].fillna(0),
                                      stats["mean"] + stats["std"].fillna(0), color=palette[label], alpha=0.2)
                axis.set_title(task.split("_", 1)[-1].replace("_", " "), fontsize="small")
                axis.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
                axis.tick_params(labelsize="x-small")
            legend_from(figure, palette)
            suffix = f"_{page + 1}" if len(tasks) > PANELS_PER_PAGE else ""
            save(figure, out_dir, f"learning_curves_{benchmark}{suffix}")


def legend_from(figure, palette: dict):
    handles = [plt.Line2D([], [], color=colour, label=label) for label, colour in palette.items()]
    figure.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize="small",
                  bbox_to_anchor=(0.5, 1.0))


def aggregate_curves(curves: pd.DataFrame, reps: int, out_dir: Path):
    """Per bin: seeds averaged per task, then the mean over tasks (normalised where a baseline
    exists, raw return elsewhere), with a stratified-bootstrap 95 % band."""
    curves = curves[curves.suite != "bsuite"]
    benchmarks = sorted(curves.benchmark.unique())
    figure, axes = panel_grid(len(benchmarks), columns=4, size=3.2)
    palette = colours(curves.label.unique())
    for axis, benchmark in zip(axes, benchmarks):
        frame = curves[curves.benchmark == benchmark]
        column = "score_norm" if frame.score_norm.notna().any() else "score"
        for label, group in frame.groupby("label"):
            wide = group.pivot_table(index=["task", "seed"], columns="bin", values=column, dropna=False)
            per_task = [part.to_numpy(float)[:, None, :] for _, part in wide.groupby(level="task")]

            def mean_over_tasks(*arrays):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # empty bins are all-NaN slices
                    return np.mean([np.nanmean(values, axis=0)[0] for values in arrays], axis=0)

            point, interval = rly.get_interval_estimates({"curve": per_task}, mean_over_tasks, reps=reps,
                                                         random_state=np.random.RandomState(0))
            xs = group.groupby("bin").x.median().to_numpy()
            axis.plot(xs, point["curve"], color=palette[label], marker=".", markersize=3)  # lone bins show
            axis.fill_between(xs, interval["curve"][0], interval["curve"][1], color=palette[label], alpha=0.2)
        axis.set_title(benchmark, fontsize="small")
        axis.set_ylabel("normalised score" if column == "score_norm" else "return", fontsize="small")
        axis.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    legend_from(figure, palette)
    save(figure, out_dir, "aggregate_curves")


def headline(aggregates: pd.DataFrame, benchmark: str) -> pd.DataFrame:
    """The benchmark's first paper metric, the rows a scaling curve is drawn from."""
    quantity, protocol, metric = PAPER_METRICS.get(benchmark, [("return", "window", "mean")])[0]
    chosen = aggregates[(aggregates.benchmark == benchmark) & (aggregates.quantity == quantity)
                        & (aggregates.protocol == protocol) & (aggregates.metric == metric)]
    return chosen.assign(ylabel=f"{quantity} ({protocol}, {metric})")


def scaling_curves(aggregates: pd.DataFrame, out_dir: Path):
    """Our runs only: score against model size (one line per ratio) and against train ratio."""
    ours = aggregates[aggregates.source == "ours"]
    benchmarks = sorted(ours.benchmark.unique())
    figure, axes = plt.subplots(max(1, len(benchmarks)), 2, figsize=(8, 3 * max(1, len(benchmarks))),
                                squeeze=False)
    if not benchmarks:
        axes[0, 0].text(0.5, 0.5, "no runs of our own yet", ha="center")
    for row, benchmark in zip(axes, benchmarks):
        frame = headline(ours, benchmark)
        sizes = sorted(frame["size"].unique(), key=lambda size: float(size.removesuffix("m")))  # 1m < 12m < ...
        frame = frame.assign(size_index=frame["size"].map(sizes.index))
        for (by, x_column, axis) in (("train_ratio", "size_index", row[0]), ("size", "train_ratio", row[1])):
            for value, line in frame.sort_values(x_column).groupby(by):
                errors = [line.value - line.ci_low, line.ci_high - line.value]
                axis.errorbar(line[x_column], line.value, yerr=errors, marker="o", capsize=3, label=f"{by} {value}")
            axis.set_title(benchmark, fontsize="small")
            axis.set_ylabel(frame.ylabel.iloc[0] if len(frame) else "", fontsize="x-small")
            axis.legend(fontsize="x-small")
        row[0].set_xticks(range(len(sizes)), sizes)
        row[0].set_xlabel("model size")
        row[1].set_xscale("log", base=2)
        row[1].set_xlabel("train ratio")
    save(figure, out_dir, "scaling")


def performance_profiles(profiles: pd.DataFrame, out_dir: Path):
    benchmarks = sorted(profiles.benchmark.unique())
    figure, axes = panel_grid(max(1, len(benchmarks)), columns=4, size=3.2)
    palette = colours(profiles.label.unique())
    for axis, benchmark in zip(axes, benchmarks):
        frame = profiles[profiles.benchmark == benchmark]
        for (label, quantity), line in frame.groupby(["label", "quantity"]):
            axis.plot(line.tau, line.fraction, color=palette[label])
            axis.fill_between(line.tau, line.ci_low, line.ci_high, color=palette[label], alpha=0.2)
            axis.set_xlabel(f"{quantity} τ", fontsize="small")
        axis.set_title(benchmark, fontsize="small")
        axis.set_ylabel("fraction of runs > τ", fontsize="small")
    legend_from(figure, palette)
    save(figure, out_dir, "performance_profiles")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--curves", required=True)
    parser.add_argument("--aggregates", required=True)
    parser.add_argument("--profiles", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--bootstrap-reps", type=int, default=500)
    args = parser.parse_args()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    curves = pd.read_csv(args.curves, dtype={"size": str})
    curves["benchmark"] = [benchmark_name(suite, task) for suite, task in zip(curves.suite, curves.task)]
    aggregates = pd.read_csv(args.aggregates, dtype={"size": str})
    learning_curves(curves, out_dir)
    aggregate_curves(curves, args.bootstrap_reps, out_dir)
    scaling_curves(aggregates, out_dir)
    performance_profiles(pd.read_csv(args.profiles), out_dir)


if __name__ == "__main__":
    main()
