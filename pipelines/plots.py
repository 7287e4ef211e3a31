"""Plots rule: learning curves per task (reference methods beside ours), aggregate curves
with bootstrap bands, scaling curves, data efficiency and performance profiles, as PNG and PDF.

Drawing is most of the time (seconds per 30-panel page), so the figures are drawn side by side in
worker processes, and a figure whose inputs and drawing code are unchanged is copied from a cache.
"""
import argparse
import hashlib
import math
import shutil
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on cluster nodes

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipelines.bootstrap import interval_estimates  # noqa: E402
from pipelines.progress import progress  # noqa: E402
from pipelines.tables import PAPER_METRICS, benchmark_name  # noqa: E402

PANELS_PER_PAGE = 30
# The code a figure depends on: a change to any of these draws every figure afresh.
DRAWING_CODE = [Path(__file__).with_name(name) for name in ("plots.py", "bootstrap.py", "tables.py")]


def save(figure, out_dir: Path, name: str):
    fixed_layout(figure)
    # The figure's extent with the legend above it, measured once for both files (as "tight" would).
    bounds = figure.get_tightbbox().padded(plt.rcParams["savefig.pad_inches"])
    for suffix in ("png", "pdf"):
        figure.savefig(out_dir / f"{name}.{suffix}", dpi=120, bbox_inches=bounds)
    plt.close(figure)


def fixed_layout(figure):
    """Margins and gaps in inches, enough for titles, tick and axis labels: tight_layout measures
    every text first, about a sixth of a page's drawing time. The files are cropped to the content."""
    width, height = figure.get_size_inches()
    figure.subplots_adjust(left=0.6 / width, right=1 - 0.2 / width, bottom=0.5 / height, top=1 - 0.3 / height,
                           wspace=0.45, hspace=0.5)


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


def learning_curves(frame: pd.DataFrame, tasks: list, labels: list):
    """One page of a benchmark: per task the mean over seeds of the binned curves, band = one
    standard deviation. `labels` are all of the benchmark's, so colours agree across pages."""
    palette = colours(labels)
    figure, axes = panel_grid(len(tasks))
    per_bin = frame.groupby(["task", "label", "bin"]).agg(x=("x", "median"), mean=("score", "mean"),
                                                          std=("score", "std"))
    for axis, task in zip(axes, tasks):
        for label, stats in per_bin.loc[task].groupby(level="label"):
            stats = stats.dropna(subset=["mean"])
            axis.plot(stats.x, stats["mean"], color=palette[label], marker=".", markersize=3)
            axis.fill_between(stats.x, stats["mean"] - stats["std"].fillna(0),
                              stats["mean"] + stats["std"].fillna(0), color=palette[label], alpha=0.2)
        axis.set_title(task.split("_", 1)[-1].replace("_", " "), fontsize="small")
        axis.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
        axis.tick_params(labelsize="x-small")
    legend_from(figure, palette)
    return figure


def legend_from(figure, palette: dict):
    handles = [plt.Line2D([], [], color=colour, label=label) for label, colour in palette.items()]
    figure.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize="small",
                  bbox_to_anchor=(0.5, 1.0))


def mean_over_tasks(per_task):
    """Aggregate-curve statistic: one (batch, seeds, bins) array per task -> (batch, bins); seeds
    averaged per task ignoring empty bins, then the mean over tasks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # empty bins are all-NaN slices
        return np.stack([np.nanmean(values, axis=1) for values in per_task], axis=1).mean(axis=1)


def aggregate_curves(curves: pd.DataFrame, reps: int):
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
            per_task = [part.to_numpy(float) for _, part in wide.groupby(level="task")]  # (seeds, bins) each
            point, low, high = interval_estimates(per_task, mean_over_tasks, reps)
            xs = group.groupby("bin").x.median().to_numpy()
            axis.plot(xs, point, color=palette[label], marker=".", markersize=3)  # lone bins show
            axis.fill_between(xs, low, high, color=palette[label], alpha=0.2)
        axis.set_title(benchmark, fontsize="small")
        axis.set_ylabel("normalised score" if column == "score_norm" else "return", fontsize="small")
        axis.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    legend_from(figure, palette)
    return figure


def headline(aggregates: pd.DataFrame, benchmark: str) -> pd.DataFrame:
    """The benchmark's first paper metric, the rows a scaling curve is drawn from."""
    quantity, protocol, metric = PAPER_METRICS.get(benchmark, [("return", "window", "mean")])[0]
    chosen = aggregates[(aggregates.benchmark == benchmark) & (aggregates.quantity == quantity)
                        & (aggregates.protocol == protocol) & (aggregates.metric == metric)]
    return chosen.assign(ylabel=f"{quantity} ({protocol}, {metric})")


def scaling_curves(aggregates: pd.DataFrame):
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
                # (2, points) array: a list of one-point Series trips pandas' float() deprecation in matplotlib
                errors = np.stack([line.value - line.ci_low, line.ci_high - line.value]).astype(float)
                axis.errorbar(line[x_column], line.value, yerr=errors, marker="o", capsize=3, label=f"{by} {value}")
            axis.set_title(benchmark, fontsize="small")
            axis.set_ylabel(frame.ylabel.iloc[0] if len(frame) else "", fontsize="x-small")
            axis.legend(fontsize="x-small")
        row[0].set_xticks(range(len(sizes)), sizes)
        row[0].set_xlabel("model size")
        row[1].set_xscale("log", base=2)
        row[1].set_xlabel("train ratio")
    return figure


def seed_mean(per_task):
    """Bootstrap statistic: the mean over one task's seeds, (batch, seeds) -> (batch, 1)."""
    return per_task[0].mean(axis=1)[:, None]


def efficiency_of_seed(run: pd.DataFrame, column: str, threshold: float) -> tuple[float, float, bool]:
    """One run's binned curve -> (first bin end at or above the threshold, else the run's last bin end;
    its last score with an episode; whether it reached the threshold)."""
    run = run.sort_values("bin")
    reached = (run[column] >= threshold).to_numpy()
    steps = run.x.to_numpy()[reached.argmax()] if reached.any() else run.x.max()
    finite = run[column].dropna()
    return float(steps), float(finite.iloc[-1]) if len(finite) else math.nan, bool(reached.any())


def efficiency_table(curves: pd.DataFrame, reps: int) -> pd.DataFrame:
    """The paper's scaling claim, per task of ours run at two or more sizes or train ratios: env steps to
    reach a threshold and the score at the step budget, per (size, ratio), as seed means with 95 %
    bootstrap intervals over seeds. x is the train ratio (one line per size), or the size where one
    ratio was run (one line per ratio).

    The threshold is halfway between the lowest and highest seed-mean bin of the task's runs, so it
    needs no tuning per task; a run that never reaches it counts with its budget (a lower bound), and
    `reached` says how many seeds did."""
    ours = curves[(curves.source == "ours") & (curves.suite != "bsuite")]
    rows = []
    for task, frame in ours.groupby("task"):
        if len(frame[["size", "train_ratio"]].drop_duplicates()) < 2:
            continue
        column = "score_norm" if frame.score_norm.notna().any() else "score"
        seed_means = frame.groupby(["label", "bin"])[column].mean()
        threshold = (seed_means.min() + seed_means.max()) / 2
        by_ratio = frame.train_ratio.nunique() > 1
        line_key, x_key = ("size", "train_ratio") if by_ratio else ("train_ratio", "size")
        for (line_value, x_value), variant in frame.groupby([line_key, x_key]):
            seeds = [efficiency_of_seed(run, column, threshold) for _, run in variant.groupby("seed")]
            steps, scores, reached = (np.array(values) for values in zip(*seeds))
            step_point, step_low, step_high = (value[0] for value in interval_estimates([steps], seed_mean, reps))
            score_point, score_low, score_high = (value[0] for value in interval_estimates([scores], seed_mean, reps))
            rows.append(dict(task=task, quantity="normalised score" if column == "score_norm" else "return",
                             threshold=threshold, line_key=line_key, line_value=line_value, x_key=x_key,
                             x_value=x_value, steps=step_point, steps_low=step_low, steps_high=step_high,
                             score=score_point, score_low=score_low, score_high=score_high,
                             reached=int(reached.sum()), seeds=len(seeds)))
    return pd.DataFrame(rows)


def in_order(values: np.ndarray, rising: bool) -> bool:
    steps = np.diff(values)
    return bool(np.all(steps >= 0) if rising else np.all(steps <= 0))


def efficiency_summary(table: pd.DataFrame) -> str:
    """Markdown: per task and line, the numbers of `efficiency_table` and a plain answer whether the
    paper's trend (more replay or parameters: fewer steps to the threshold, higher score) holds here."""
    if not len(table):
        return "No task of ours was run at two or more sizes or train ratios.\n"
    lines = []
    for (task, line_value), line in table.groupby(["task", "line_value"], sort=False):
        first = line.iloc[0]
        if first.x_key == "size":
            line = line.iloc[np.argsort([float(size.removesuffix("m")) for size in line.x_value])]
        name = f"size {line_value}" if first.x_key == "train_ratio" else f"train ratio {line_value:g}"
        x_name = "train ratio" if first.x_key == "train_ratio" else "size"
        lines += [f"**{task}, {name}**: threshold {first.quantity} {first.threshold:.3g}.", "",
                  f"| {x_name} | env steps to threshold [95 % CI] | seeds reached | {first.quantity} at budget "
                  "[95 % CI] |", "|---|---:|---:|---:|"]
        for row in line.itertuples():
            x = f"{row.x_value:g}" if first.x_key == "train_ratio" else row.x_value
            lines.append(f"| {x} | {row.steps:,.0f} [{row.steps_low:,.0f}, {row.steps_high:,.0f}] | "
                         f"{row.reached}/{row.seeds} | {row.score:.3g} [{row.score_low:.3g}, {row.score_high:.3g}] |")
        fewer_steps = in_order(line.steps.to_numpy(), rising=False)
        higher_score = in_order(line.score.to_numpy(), rising=True)
        low, high = line.iloc[0], line.iloc[-1]
        separated = high.steps_high < low.steps_low or high.score_low > low.score_high
        lines += ["", f"Trend of the paper (more {x_name}: fewer steps to the threshold, higher score at the budget): "
                  f"steps {'fall' if fewer_steps else 'do not fall'} monotonically, score "
                  f"{'rises' if higher_score else 'does not rise'} monotonically; the smallest and largest "
                  f"{x_name} {'are' if separated else 'are not'} separated by their 95 % intervals.", ""]
    return "\n".join(lines)


def data_efficiency(curves: pd.DataFrame, reps: int):
    """`efficiency_table` drawn: steps to the threshold (left) and score at the budget (right) per task."""
    table = efficiency_table(curves, reps)
    tasks = sorted(table.task.unique()) if len(table) else []
    figure, axes = plt.subplots(max(1, len(tasks)), 2, figsize=(9, 3.2 * max(1, len(tasks))), squeeze=False)
    if not tasks:
        axes[0, 0].text(0.5, 0.5, "no task of ours with two or more sizes or train ratios", ha="center")
    for row, task in zip(axes, tasks):
        frame = table[table.task == task]
        first = frame.iloc[0]
        by_ratio = first.x_key == "train_ratio"
        sizes = sorted(frame.x_value.unique(), key=lambda size: float(size.removesuffix("m"))) if not by_ratio else []
        for line_value, line in frame.groupby("line_value"):
            xs = line.x_value.to_numpy(float) if by_ratio else line.x_value.map(sizes.index).to_numpy()
            name = f"size {line_value}" if by_ratio else f"ratio {line_value:g}"
            for axis, value in ((row[0], "steps"), (row[1], "score")):
                low, high = line[value] - line[f"{value}_low"], line[f"{value}_high"] - line[value]
                errors = np.stack([low, high]).astype(float)  # (2, points), as above
                axis.errorbar(xs, line[value], yerr=errors, marker="o", capsize=3, label=name)
            for x, steps, reached, seeds in zip(xs, line.steps, line.reached, line.seeds):
                row[0].annotate(f"{reached}/{seeds}", (x, steps), textcoords="offset points", xytext=(4, 4),
                                fontsize="x-small")
        row[0].set_title(f"{task}: env steps to {first.quantity} {first.threshold:.3g}", fontsize="small")
        row[0].set_ylabel("env steps (seeds that reached it / seeds)", fontsize="x-small")
        row[1].set_title(f"{task}: {first.quantity} at the budget (last bin)", fontsize="small")
        row[1].set_ylabel(first.quantity, fontsize="x-small")
        for axis in row:
            if by_ratio:
                axis.set_xscale("log", base=2)
                axis.set_xlabel("train ratio")
            else:
                axis.set_xticks(range(len(sizes)), sizes)
                axis.set_xlabel("model size")
            axis.legend(fontsize="x-small")
    return figure


def performance_profiles(profiles: pd.DataFrame):
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
    return figure


def figure_jobs(curves: pd.DataFrame, aggregates: pd.DataFrame, profiles: pd.DataFrame, reps: int) -> list:
    """Every figure as (name, drawing function, its arguments); each can be drawn on its own."""
    jobs = []
    by_task = curves[curves.suite != "bsuite"]  # bsuite is judged by its own analysis, per experiment
    for benchmark, frame in by_task.groupby("benchmark"):
        labels = sorted(frame.label.unique())
        tasks = sorted(frame.task.unique())
        starts = range(0, len(tasks), PANELS_PER_PAGE)
        for page, start in enumerate(starts, 1):
            chunk = tasks[start:start + PANELS_PER_PAGE]
            suffix = f"_{page}" if len(starts) > 1 else ""
            jobs.append((f"learning_curves_{benchmark}{suffix}", learning_curves,
                         (frame[frame.task.isin(chunk)], chunk, labels)))
    jobs.append(("aggregate_curves", aggregate_curves, (curves, reps)))
    jobs.append(("scaling", scaling_curves, (aggregates,)))
    jobs.append(("data_efficiency", data_efficiency, (curves, reps)))
    jobs.append(("performance_profiles", performance_profiles, (profiles,)))
    return jobs


def drawing_order(jobs: list) -> list:
    """The biggest figures first (most data points to draw), so that workers finish together."""
    return sorted(jobs, key=lambda job: -sum(len(argument) for argument in job[2]
                                             if isinstance(argument, pd.DataFrame)))


def figure_key(name: str, arguments: tuple) -> str:
    """Hash of a figure's name, inputs, drawing code and matplotlib version."""
    digest = hashlib.sha256(f"{name} {matplotlib.__version__}".encode())
    for path in DRAWING_CODE:
        digest.update(path.read_bytes())
    for argument in arguments:
        if isinstance(argument, pd.DataFrame):
            digest.update(repr(list(argument.columns)).encode())
            digest.update(pd.util.hash_pandas_object(argument, index=False).to_numpy().tobytes())
        else:
            digest.update(repr(argument).encode())
    return digest.hexdigest()[:16]


def render(name: str, draw, arguments: tuple, out_dir: Path, cache_dir) -> bool:
    """The figure as PNG and PDF in out_dir: copied from the cache when an unchanged one is there,
    else drawn (and cached). Returns whether it was drawn."""
    suffixes = (".png", ".pdf")
    cached = {}
    if cache_dir:
        key = figure_key(name, arguments)
        cached = {suffix: Path(cache_dir) / f"{name}.{key}{suffix}" for suffix in suffixes}
    if cached and all(path.exists() for path in cached.values()):
        for suffix, path in cached.items():
            shutil.copyfile(path, out_dir / f"{name}{suffix}")
        return False
    save(draw(*arguments), out_dir, name)
    if cached:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        for old in Path(cache_dir).glob(f"{name}.*"):  # earlier versions of this figure
            old.unlink()
        for suffix, path in cached.items():
            partial = path.with_name(path.name + ".part")
            shutil.copyfile(out_dir / f"{name}{suffix}", partial)
            partial.rename(path)  # a crash never leaves a half-written figure in the cache
    return True


def plot_all(curves: pd.DataFrame, aggregates: pd.DataFrame, profiles: pd.DataFrame, out_dir: Path, reps: int,
             workers: int = 1, cache_dir=None):
    out_dir.mkdir(parents=True, exist_ok=True)
    # The data-efficiency numbers beside their figure, read by the report.
    (out_dir / "data_efficiency.md").write_text(efficiency_summary(efficiency_table(curves, reps)))
    jobs = drawing_order(figure_jobs(curves, aggregates, profiles, reps))
    progress("plots", f"{len(jobs)} figures, {workers} worker(s)")
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
        running = {pool.submit(render, name, draw, arguments, out_dir, cache_dir): name
                   for name, draw, arguments in jobs}
        for number, done in enumerate(as_completed(running), 1):
            how = "drawn" if done.result() else "unchanged, from the cache"
            progress("plots", f"{number}/{len(jobs)} figures: {running[done]} ({how})")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--curves", required=True)
    parser.add_argument("--aggregates", required=True)
    parser.add_argument("--profiles", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--bootstrap-reps", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1, help="figures drawn at the same time")
    parser.add_argument("--cache-dir", help="folder of figures drawn before, reused while their inputs are unchanged")
    args = parser.parse_args()
    curves = pd.read_csv(args.curves, dtype={"size": str})
    curves["benchmark"] = [benchmark_name(suite, task) for suite, task in zip(curves.suite, curves.task)]
    aggregates = pd.read_csv(args.aggregates, dtype={"size": str})
    plot_all(curves, aggregates, pd.read_csv(args.profiles), Path(args.out_dir), args.bootstrap_reps, args.workers,
             args.cache_dir)


if __name__ == "__main__":
    main()
