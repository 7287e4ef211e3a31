"""Aggregation against hand computations written from the protocol text (spec 6.5, 7.3, 7.4)."""
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines import scoring, tables
from pipelines.aggregate import aggregate
from pipelines.reference import load_baselines, load_reference
from pipelines.runs import Run, load_run_folder
from pipelines.tests.conftest import REPO, catch_episodes, write_run


def paper_values(reference_dir: Path, files: list[str]) -> pd.DataFrame:
    runs = [run for name in files for run in load_reference(reference_dir / name)]
    scoring.fill_budgets(runs)
    run_scores = scoring.run_table(runs, load_baselines(reference_dir / "baselines.yaml"), 30, 0.025)
    empty_bsuite = pd.DataFrame(columns=scoring.VARIANT + ["seed", "score"])
    return tables.aggregate_table(tables.score_sets(run_scores, empty_bsuite), reps=10)


def pick(frame, benchmark, quantity, protocol, metric, label):
    row = frame[(frame.benchmark == benchmark) & (frame.quantity == quantity) & (frame.protocol == protocol)
                & (frame.metric == metric) & (frame.label == label)]
    assert len(row) == 1
    return float(row.value.iloc[0])


def test_atari100k_window_protocol_matches_hand_computation(reference_dir):
    # Spec 7.4: per game and seed, mean of ys with xs in [390k, 400k]; mean over seeds;
    # human-normalise; then mean and median over the 26 games.
    with gzip.open(reference_dir / "dreamerv3-scores/atari100k-dreamerv3.json.gz", "rt") as stream:
        records = json.load(stream)
    human = yaml.safe_load((reference_dir / "baselines.yaml").read_text())["atari57_gamer"]
    per_game = {}
    for record in records:
        window = [y for x, y in zip(record["xs"], record["ys"]) if 390_000 <= x <= 400_000 and y is not None]
        if window:
            per_game.setdefault(record["task"], []).append(sum(window) / len(window))
    normalised = []
    for game, seed_scores in per_game.items():
        low, high = human[game]
        normalised.append((sum(seed_scores) / len(seed_scores) - low) / (high - low))
    assert len(normalised) == 26
    values = paper_values(reference_dir, ["dreamerv3-scores/atari100k-dreamerv3.json.gz"])
    assert pick(values, "atari100k", "normalised", "window", "mean", "dreamerv3") == pytest.approx(
        np.mean(normalised))
    assert pick(values, "atari100k", "normalised", "window", "median", "dreamerv3") == pytest.approx(
        np.median(normalised))


def test_dmc_proprio_mean_with_30_bins_matches_hand_computation(reference_dir):
    # Spec 7.3: per task, xlim = largest x of its runs, 30 bins of width xlim/30; a bin is the
    # mean of the points in (left, right]; seeds averaged ignoring empty bins; mean over tasks.
    with gzip.open(reference_dir / "dreamerv3-scores/dmc_proprio-dreamerv3.json.gz", "rt") as stream:
        records = json.load(stream)
    task_finals = []
    for task in sorted({record["task"] for record in records}):
        runs = [record for record in records if record["task"] == task]
        xlim = max(max(record["xs"]) for record in runs)
        left = xlim - xlim / 30
        seed_finals = []
        for record in runs:
            last_bin = [y for x, y in zip(record["xs"], record["ys"]) if left < x <= xlim and y is not None]
            if last_bin:
                seed_finals.append(sum(last_bin) / len(last_bin))
        task_finals.append(sum(seed_finals) / len(seed_finals))
    values = paper_values(reference_dir, ["dreamerv3-scores/dmc_proprio-dreamerv3.json.gz"])
    assert pick(values, "dmc_proprio", "return", "bins", "mean", "dreamerv3") == pytest.approx(
        np.mean(task_finals))


def test_binned_curve_takes_episodes_in_any_logged_order():
    # Spec 7.3: a bin is the mean of the episodes in (left, right], whatever order they were logged in.
    rng = np.random.default_rng(0)
    steps = rng.permutation(np.concatenate([rng.uniform(0, 300, 40), [0.0, 100.0, 200.0, 300.0, 301.0]]))
    run = Run(suite="gym", task="gym_x", method="m", seed=0, steps=steps, scores=rng.normal(size=len(steps)),
              budget=300.0)
    xs, values = scoring.binned_curve(run, 3)
    assert xs.tolist() == [100.0, 200.0, 300.0]
    for value, (left, right) in zip(values, [(0, 100), (100, 200), (200, 300)]):
        assert value == run.scores[(steps > left) & (steps <= right)].mean()


def test_reference_cache_gives_the_parsed_runs_and_follows_a_changed_source(tmp_path):
    source = tmp_path / "procgen-somemethod.json.gz"

    def write_source(first_y):
        records = [{"task": "procgen_coinrun", "method": "somemethod", "seed": seed, "xs": [1, 2, 3],
                    "ys": [first_y, None, 3.5]} for seed in (0, 1)]
        with gzip.open(source, "wt") as stream:
            json.dump(records, stream)

    def loaded():
        return [(run.task, run.method, run.seed, run.steps.tolist(), run.scores.tolist())
                for run in load_reference(source, tmp_path / "cache")]

    write_source(1.25)
    fresh = [(run.task, run.method, run.seed, run.steps.tolist(), run.scores.tolist())
             for run in load_reference(source)]
    assert fresh == [("procgen_coinrun", "somemethod", seed, [1.0, 3.0], [1.25, 3.5]) for seed in (0, 1)]
    assert loaded() == fresh  # parsed, then written to the cache
    assert loaded() == fresh  # read back from the cache
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    write_source(7.0)
    assert [scores[0] for *_, scores in loaded()] == [7.0, 7.0]


def test_crafter_reference_runs_score_as_published(reference_dir):
    # Crafter paper: human experts 50.5 %, random policy 1.6 % (score per run, mean over runs).
    files = ["crafter/crafter_reward-human.json", "crafter/crafter_noreward-random.json"]
    values = paper_values(reference_dir, files)
    human = pick(values, "crafter_reward", "crafter score / 100", "all episodes", "mean", "human")
    random = pick(values, "crafter_noreward", "crafter score / 100", "all episodes", "mean", "random")
    assert round(100 * human, 1) == 50.5
    assert round(100 * random, 1) == 1.6


def test_crafter_score_formula_on_a_small_run(tmp_path, reference_dir):
    # Two achievements, four episodes: success rates 50 % and 25 % -> exp(mean ln(1+s)) - 1.
    episodes = [{"step": 10 * i, "episode/score": 1.0, "log/achievement_collect_wood": wood,
                 "log/achievement_place_table": table}
                for i, (wood, table) in enumerate([(1, 0), (3, 2), (0, 0), (0, 0)], 1)]
    folder = write_run(tmp_path / "run", "crafter", "reward", 0, episodes, steps=40)
    out = tmp_path / "out"
    aggregate(workflow_config(), [folder], [], reference_dir / "baselines.yaml", out)
    score = pd.read_csv(out / "runs.csv").suite_score.iloc[0]
    assert score == pytest.approx(math.exp((math.log(51) + math.log(26)) / 2) - 1)


def test_bsuite_score_comes_from_bsuite_analysis(tmp_path, reference_dir):
    # catch: score = clip((1.6 - mean regret per episode) / 1.6, 0, 1) at the last episode.
    folder = write_run(tmp_path / "run", "bsuite", "catch/0", 3, catch_episodes(50, 0.5), steps=500)
    out = tmp_path / "out"
    aggregate(workflow_config(), [folder], [], reference_dir / "baselines.yaml", out)
    bsuite = pd.read_csv(out / "bsuite.csv")
    assert bsuite.task.tolist() == ["bsuite_catch"]
    assert bsuite.score.iloc[0] == pytest.approx((1.6 - 0.5) / 1.6)


def test_malformed_and_truncated_lines_are_reported_and_skipped(tmp_path, reference_dir):
    good = {"step": 100, "episode/score": 3.0}
    lines = (json.dumps(good) + "\n" + "not json\n" + json.dumps({"step": 200}) + "\n"
             + json.dumps({"step": 300, "episode/score": 5.0}) + "\n" + '{"step": 400, "episode/sc')
    folder = write_run(tmp_path / "run", "gym", "CartPole-v1", 0, [], steps=400, lines=lines)
    broken = tmp_path / "no_config"
    broken.mkdir()
    out = tmp_path / "out"
    aggregate(workflow_config(), [folder, broken], [], reference_dir / "baselines.yaml", out)
    problems = (out / "problems.txt").read_text().splitlines()
    scores_path = folder / "scores.jsonl"
    assert [line.split(": ")[0] for line in problems] == [
        f"{scores_path}:2", f"{scores_path}:3", f"{scores_path}:5", str(broken / "config.yaml")]
    runs = pd.read_csv(out / "runs.csv")
    assert runs.episodes.tolist() == [2]


def workflow_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_procgen_run_is_normalised_beside_the_published_runs(tmp_path, reference_dir):
    # procgen_hard min-max for coinrun is [5, 10]: the final return 9 is (9 - 5) / 5 = 0.8 normalised.
    episodes = [{"step": 100, "episode/score": 6.0}, {"step": 200, "episode/score": 9.0}]
    folder = write_run(tmp_path / "run", "procgen", "coinrun", 0, episodes, steps=200)
    out = tmp_path / "out"
    reference = [reference_dir / "dreamerv3-scores/procgen-dreamerv3.json.gz"]
    aggregate(workflow_config(), [folder], reference, reference_dir / "baselines.yaml", out)
    runs = pd.read_csv(out / "runs.csv")
    coinrun = runs[runs.task == "procgen_coinrun"].set_index("source")
    assert (coinrun.loc["ours", "window"], coinrun.loc["ours", "window_norm"]) == (9.0, pytest.approx(0.8))
    assert coinrun.loc["reference", "budget"] == 50_000_000  # the published runs are scored at 5e7
    assert len(runs[(runs.suite == "procgen") & (runs.source == "reference")]) == 16
    curves = pd.read_csv(out / "curves.csv")
    ours = curves[(curves.task == "procgen_coinrun") & (curves.source == "ours")]
    assert ours.score_norm.iloc[-1] == pytest.approx(0.8)
    assert set(curves[curves.task == "procgen_coinrun"].source) == {"ours", "reference"}


def test_a_short_run_is_labelled_with_its_budget_and_scored_on_its_last_episode(tmp_path):
    # DMC episodes are 1,001 logged steps: a 3k-step run's last 2.5 % and last bin hold no episode, and
    # the episode ending at 3,003 is past the budget. It used to vanish from the tables.
    episodes = [{"step": 1001 * k, "episode/score": 100.0 * k} for k in (1, 2, 3)]
    short = write_run(tmp_path / "short", "dmc_proprio", "cartpole_balance", 0, episodes, steps=3000)
    full_steps = int(scoring.suite_budget("dmc_proprio"))
    full_episodes = [{"step": full_steps // 2, "episode/score": 900.0}, {"step": full_steps, "episode/score": 950.0}]
    full = write_run(tmp_path / "full", "dmc_proprio", "cartpole_balance", 1, full_episodes, steps=full_steps)
    runs = [load_run_folder(short, "m", []), load_run_folder(full, "m", [])]
    scoring.fill_budgets(runs)
    table = scoring.run_table(runs, {}, bins=30, window_fraction=0.025).set_index("seed")
    assert table.loc[0, "label"] == "m 1m ratio 32 · 3k steps"
    assert (table.loc[0, "window"], table.loc[0, "bins"]) == (200.0, 200.0)  # the episode ending at 2,002
    assert table.loc[1, "label"] == "m 1m ratio 32"  # a run at the suite's budget keeps the protocol
    assert (table.loc[1, "window"], table.loc[1, "bins"]) == (950.0, 950.0)


def test_a_short_run_with_no_episode_at_all_stays_unscored():
    run = Run(suite="gym", task="gym_CartPole-v1", method="m", seed=0, steps=np.array([]), scores=np.array([]),
              size="1m", train_ratio=32, budget=3000, source="ours")
    assert math.isnan(scoring.window_score(run, 0.025)) and math.isnan(scoring.final_bin(run, 30))


def test_a_method_over_fewer_of_a_benchmarks_tasks_is_labelled_in_the_table():
    """A train ratio run on one of two gym tasks gets a mean over that task only; the table says so,
    and says nothing where a method covers every task."""
    rows = []
    for label, task_values in (("ratio 64", {"CartPole-v1": [100.0, 120.0]}),
                               ("ratio 128", {"CartPole-v1": [200.0, 220.0], "IDP": [300.0, 320.0]})):
        for task, values in task_values.items():
            rows += [dict(benchmark="gym", label=label, method="m", size="1m", train_ratio=0, source="ours",
                          protocol="window", quantity="return", task=task, seed=seed, value=value)
                     for seed, value in enumerate(values)]
    text = tables.markdown(tables.aggregate_table(pd.DataFrame(rows), reps=200))
    lines = text.splitlines()
    header = [cell.strip() for cell in next(line for line in lines if "ratio 64" in line).split("|")]
    row = [cell.strip() for cell in next(line for line in lines if "window · mean" in line).split("|")]
    ratio_64, ratio_128 = row[header.index("ratio 64")], row[header.index("ratio 128")]
    assert ratio_128.startswith("260 [") and "tasks" not in ratio_128  # both tasks: mean of 210 and 310
    assert ratio_64.startswith("110 [") and ratio_64.endswith("· 1 of 2 tasks")
