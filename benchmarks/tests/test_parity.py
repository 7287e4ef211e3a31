"""The paired-run driver: its verdict statistics on synthetic curves, the report, the two commands."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import parity

SETTINGS = parity.Settings(suite="gym", task="CartPole-v1", steps=3000, train_ratio=128, batch_size=8,
                           batch_length=32, lr=1e-4, warmup=0)  # fmt: skip


def learning_curves(rng, seeds: int, bins: int, final: float, noise: float) -> np.ndarray:
    """(seeds, bins): from 20 up to `final`, plus per-seed noise."""
    ramp = np.linspace(20.0, final, bins)
    return ramp + noise * rng.standard_normal((seeds, bins))


def test_same_learning_gives_a_consistent_verdict():
    rng = np.random.default_rng(0)
    a, b = learning_curves(rng, 5, 10, 400, 30), learning_curves(rng, 5, 10, 400, 30)
    result = parity.verdict(a[:, -1], b[:, -1], a, b)
    assert result["interval_contains_zero"] and result["consistent"]
    assert result["ci_low"] < result["difference"] < result["ci_high"]


def test_a_clearly_worse_implementation_is_flagged():
    rng = np.random.default_rng(0)
    a, b = learning_curves(rng, 3, 10, 100, 10), learning_curves(rng, 3, 10, 400, 10)
    result = parity.verdict(a[:, -1], b[:, -1], a, b)
    assert result["ci_high"] < 0 and not result["interval_contains_zero"] and not result["consistent"]
    assert result["a_inside_b"] < parity.INSIDE  # the weak curve leaves the strong seeds' range


def test_one_seed_a_side_gives_no_verdict_only_the_difference():
    rng = np.random.default_rng(0)
    a, b = learning_curves(rng, 1, 10, 400, 30), learning_curves(rng, 3, 10, 400, 30)
    result = parity.verdict(a[:, -1], b[:, -1], a, b)
    assert result["consistent"] is None and result["interval_contains_zero"] is None
    assert np.isnan(result["ci_low"]) and np.isnan(result["a_inside_b"]) and result["seeds"] == [1, 3]
    assert result["difference"] == pytest.approx(a[0, -1] - b[:, -1].mean())
    table = parity.markdown({"settings": vars(SETTINGS), "window_fraction": 0.2,
                             "random_policy": None, "implementations": {}, "verdicts": {"ours vs official": result}})
    assert "no interval: 1 + 3 seeds, needs 2+ per implementation" in table and "| n/a |" in table


def test_bootstrap_band_holds_the_mean_and_narrows_with_less_spread():
    rng = np.random.default_rng(1)
    wide, narrow = learning_curves(rng, 8, 6, 300, 50), learning_curves(rng, 8, 6, 300, 5)
    for curves in (wide, narrow):
        low, high = parity.bootstrap_mean_interval(curves, 2000, np.random.default_rng(0))
        assert np.all(low <= curves.mean(0)) and np.all(curves.mean(0) <= high)
    assert np.all(np.subtract(*parity.bootstrap_mean_interval(narrow, 2000, np.random.default_rng(0))[::-1])
                  < np.subtract(*parity.bootstrap_mean_interval(wide, 2000, np.random.default_rng(0))[::-1]))


def test_fraction_inside_ignores_bins_without_data():
    seeds = np.array([[0.0, 1.0, np.nan, 10.0], [2.0, 3.0, 5.0, 12.0]])
    assert parity.fraction_inside(np.array([1.0, 5.0, 4.0, 11.0]), seeds) == pytest.approx(2 / 3)


def write_run(folder: Path, episodes: list[tuple[int, float]], finished: bool = True):
    folder.mkdir(parents=True)
    folder.joinpath("scores.jsonl").write_text(
        "".join(json.dumps({"step": step, "episode/score": score}) + "\n" for step, score in episodes))
    if finished:
        folder.joinpath("parity.json").write_text(json.dumps({"command": "x", "returncode": 0, "wall_seconds": 600}))


def write_learning_runs(out: Path, impls, seeds, rng, final_loss: float = 0.5):
    """Run folders of the same learning (seeds differ by an offset), with a reward-loss metric that is
    1 + seed before step 2400 and `final_loss` from there on."""
    for impl in impls:
        for seed in seeds:
            steps = np.sort(rng.integers(1, 3001, 60))
            final = 300 + 40 * rng.standard_normal()
            scores = 20 + (final - 20) * steps / 3000 + 20 * rng.standard_normal(60)
            folder = out / f"{impl}-{seed}"
            write_run(folder, list(zip(steps.tolist(), scores.tolist())))
            key = "train/loss/rew" if impl == "official" else "loss/rew"  # each code's own metric names
            folder.joinpath("metrics.jsonl").write_text(
                "".join(json.dumps({"step": step, key: 1.0 + seed if step < 2400 else final_loss}) + "\n"
                        for step in range(100, 3001, 100)))


def test_report_writes_curves_verdict_and_figure(tmp_path):
    write_learning_runs(tmp_path / "runs", ("ours", "official"), range(3), np.random.default_rng(0))
    write_run(tmp_path / "runs" / "notes-0", [(1, 1.0)])  # not an implementation: ignored
    parity.report(tmp_path / "runs", tmp_path / "out" / "parity_cartpole", SETTINGS, bins=10, window=0.2,
                  random_score=22.0)
    data = json.loads((tmp_path / "out" / "parity_cartpole.json").read_text())
    assert set(data["implementations"]) == {"ours", "official"}
    assert len(data["implementations"]["ours"]["mean"]) == 10
    seed_curves = np.array(data["implementations"]["ours"]["seed_curves"], dtype=float)  # (seeds, bins)
    assert seed_curves.shape == (3, 10)
    assert np.allclose(np.nanmean(seed_curves, 0), data["implementations"]["ours"]["mean"], equal_nan=True)
    assert [run["seed"] for run in data["implementations"]["official"]["runs"]] == [0, 1, 2]
    assert data["verdicts"]["ours vs official"]["interval_contains_zero"]
    # Only lines of the final window (step >= 2400) count: 0.5 on both sides.
    assert data["implementations"]["official"]["final_metrics"] == {"loss/rew": 0.5}
    assert data["implementations"]["ours"]["final_metrics"] == {"loss/rew": 0.5}
    # Metric curves: binned like the scores (300 steps a bin here), then averaged over the seeds.
    for impl in ("ours", "official"):
        curve = data["implementations"][impl]["metric_curves"]["loss/rew"]
        assert len(curve) == 10 and curve[0] == 2.0 and curve[-1] == 0.5  # seeds 0-2 log 1-3 early
        assert curve[7] == (2 * 2.0 + 0.5) / 3  # steps 2200, 2300 (before the change) and 2400 (after)
    text = (tmp_path / "out" / "parity_cartpole.md").read_text()
    assert "| ours vs official |" in text and "Random policy: 22.00" in text
    assert (tmp_path / "out" / "parity_cartpole.png").stat().st_size > 1000
    assert (tmp_path / "out" / "parity_cartpole_metrics.png").stat().st_size > 1000


def test_both_commands_carry_the_same_settings(tmp_path):
    ours = parity.our_command(SETTINGS, 2, tmp_path / "ours-2", "ours")
    official = parity.official_command(SETTINGS, 2, tmp_path / "official-2", "official", Path("/official"), "py")
    joined = " ".join(ours)
    for text in ("--steps 3000", "--train-ratio 128", "--seed 2", "batch_size=8", "batch_length=32",
                 "train_fill=256", "lr=0.0001", "warmup=0", "precision=float32", "twohot_mean=mirrored",
                 "log_every=30", "save_every=60", "resume_stateful_env=true"):
        assert text in joined, text
    joined = " ".join(official)
    for text in ("--run.steps 3000", "--run.train_ratio 128", "--seed 2", "--batch_size 8", "--batch_length 32",
                 "--agent.opt.lr 0.0001", "--agent.opt.warmup 0", "--jax.compute_dtype float32",
                 "--task gym_CartPole-v1", "size1m", "--twohot-mean official", "--run.log_every 30",
                 "--run.save_every 60"):
        assert text in joined, text
    assert "twohot_mean=official" in " ".join(parity.our_command(SETTINGS, 0, tmp_path, "ours-official-mean"))


def test_interrupted_runs_continue_in_their_folders_and_add_up_their_wall_time(tmp_path, monkeypatch):
    """A run whose process ended without success (here: exit 1, as after a kill) is started again in the same
    folder, not wiped, and its log and attempts file keep both starts; an official folder without a complete
    checkpoint starts from scratch. The command is a stand-in that appends a line to the run folder."""
    script = "import os, sys, pathlib; f = pathlib.Path(sys.argv[1]) / 'lines'; f.parent.mkdir(exist_ok=True); " \
             "n = len(f.read_text().splitlines()) if f.exists() else 0; f.write_text('x\\n' * (n + 1)); " \
             "print('start', n + 1, os.environ['TORCHINDUCTOR_CACHE_DIR']); sys.exit(0 if n else 1)"
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    ours, official = tmp_path / "ours-0", tmp_path / "official-0"
    job_list = [(folder, [sys.executable, "-c", script, str(folder)]) for folder in (ours, official)]
    parity.run_jobs(job_list, cores=[0], log=lambda line: None)
    assert not (ours / "parity.json").exists() and not (official / "parity.json").exists()  # both failed once
    parity.run_jobs(job_list, cores=[0], log=lambda line: None)
    assert (ours / "lines").read_text() == "x\n" * 2  # continued
    record = json.loads((ours / "parity.json").read_text())
    attempts = json.loads((tmp_path / "ours-0.attempts.json").read_text())
    assert record["attempts"] == 2 and [a["returncode"] for a in attempts] == [1, 0]
    assert record["wall_seconds"] == sum(a["wall_seconds"] for a in attempts)
    cache = str(tmp_path / "compile_cache")  # compiled graphs kept beside the runs, for later starts
    assert (tmp_path / "ours-0.log").read_text().split() == ["start", "1", cache, "start", "2", cache]
    assert (official / "lines").read_text() == "x\n"  # no checkpoint: wiped and started again, failed again
    assert len(json.loads((tmp_path / "official-0.attempts.json").read_text())) == 1


def test_an_official_run_resumes_from_its_checkpoint_with_its_logs_cut_back_to_it(tmp_path):
    """The official loop appends to its jsonl logs; lines after its newest complete checkpoint (and a line
    cut off by the kill) go, so that the resumed run writes no step twice. Layout as elements writes it."""
    import pickle

    logdir = tmp_path / "official-0"
    for name, step in (("20261205T000000F000000", 300), ("20261205T000100F000000", 600)):
        (logdir / "ckpt" / name).mkdir(parents=True)
        (logdir / "ckpt" / name / "step.pkl").write_bytes(pickle.dumps(step))
    (logdir / "ckpt" / "20261205T000000F000000" / "done").write_text("")
    (logdir / "ckpt" / "latest").write_text("20261205T000000F000000\n")
    lines = [json.dumps({"step": step, "episode/score": 1.0}) + "\n" for step in (100, 200, 300, 400)]
    (logdir / "scores.jsonl").write_text("".join(lines) + '{"step": 5')
    (logdir / "metrics.jsonl").write_text(json.dumps({"step": 350, "train/loss/rew": 1.0}) + "\n")
    assert parity.official_checkpoint_step(logdir) == 300
    assert parity.prepare_resume(logdir)
    assert (logdir / "scores.jsonl").read_text() == "".join(lines[:3])
    assert (logdir / "metrics.jsonl").read_text() == ""
    (logdir / "ckpt" / "latest").write_text("20261205T000100F000000")  # newest, but without its done marker
    assert parity.official_checkpoint_step(logdir) is None and not parity.prepare_resume(logdir)


def test_run_folders_are_absolute_for_a_relative_out(tmp_path, monkeypatch):
    # The official launcher changes into the official checkout: a relative --logdir landed there.
    monkeypatch.chdir(tmp_path)
    for logdir, command in parity.jobs(SETTINGS, ["ours", "official"], [0], Path("runs"), Path("/official"), "py"):
        assert logdir == tmp_path / "runs" / logdir.name
        assert command[command.index("--logdir") + 1] == str(logdir)


def test_jobs_alternate_implementations_seed_by_seed_and_blank_only_dmc_log_images(tmp_path):
    """Seed by seed, so that the first finished runs already form a pair; the official DMC adapter's
    log-only camera image is made black (not rendered) for the DMC proprio pairs only."""
    dmc = parity.Settings(suite="dmc_proprio", task="cartpole_balance", steps=8000, train_ratio=128)
    listed = parity.jobs(dmc, ["official", "ours"], [0, 1], tmp_path, Path("/official"), "py")
    assert [logdir.name for logdir, _ in listed] == ["official-0", "ours-0", "official-1", "ours-1"]
    official = listed[0][1]
    assert "--blank-log-image" in official[: official.index("--")] and "dmc_cartpole_balance" in official
    gym = parity.jobs(SETTINGS, ["official"], [0], tmp_path, Path("/official"), "py")[0][1]
    assert "--blank-log-image" not in gym


def test_run_refuses_a_missing_official_checkout(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parity.main(["run", "--suite", "gym", "--task", "CartPole-v1", "--steps", "10", "--train-ratio", "1",
                     "--impls", "official", "--out", str(tmp_path), "--official", str(tmp_path)])
    assert exit_info.value.code == 2 and "danijar/dreamerv3 checkout" in capsys.readouterr().err


def test_official_launcher_refuses_a_folder_that_is_not_the_official_code(tmp_path):
    launcher = Path(parity.__file__).with_name("official_launcher.py")
    result = subprocess.run([sys.executable, str(launcher), "--official", str(tmp_path), "--", "--task", "x"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "not a danijar/dreamerv3 checkout" in result.stderr


def test_report_reuses_official_runs_from_earlier_reports_of_the_same_settings(tmp_path):
    """Only our side reran: the official runs of two earlier reports join the new one, seed by seed."""
    rng = np.random.default_rng(1)
    write_learning_runs(tmp_path / "a", ("official",), range(3), rng, final_loss=0.5)
    write_learning_runs(tmp_path / "b", ("official",), (3, 4), rng, final_loss=1.0)
    write_learning_runs(tmp_path / "new", ("ours",), range(4), rng)
    for name in ("a", "b"):
        parity.report(tmp_path / name, tmp_path / name / "report", SETTINGS, bins=10, window=0.2, random_score=None)
    earlier = [tmp_path / "a" / "report.json", tmp_path / "b" / "report.json"]
    parity.report(tmp_path / "new", tmp_path / "out", SETTINGS, bins=10, window=0.2, random_score=None,
                  reuse=earlier)
    data = json.loads((tmp_path / "out.json").read_text())
    official = data["implementations"]["official"]
    assert [run["seed"] for run in official["runs"]] == [0, 1, 2, 3, 4]
    assert official["runs"][3]["results_file"] == str(earlier[1])
    parts = [json.loads(path.read_text())["implementations"]["official"] for path in earlier]
    assert official["seed_curves"] == parts[0]["seed_curves"] + parts[1]["seed_curves"]
    assert official["final_metrics"]["loss/rew"] == pytest.approx((3 * 0.5 + 2 * 1.0) / 5)  # weighted by seeds
    assert set(data["verdicts"]) == {"ours vs official"} and data["verdicts"]["ours vs official"]["seeds"] == [4, 5]
    assert "reused from earlier reports of the same settings" in (tmp_path / "out.md").read_text()
    other = parity.Settings(**{**vars(SETTINGS), "train_ratio": 64})
    with pytest.raises(SystemExit, match="reuse only runs of the same settings"):
        parity.report(tmp_path / "new", tmp_path / "out", other, bins=10, window=0.2, random_score=None,
                      reuse=earlier)
    old = json.loads(earlier[0].read_text())
    del old["implementations"]["official"]["seed_curves"]  # as the first reports wrote them
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(SystemExit, match="before reports kept per-seed curves"):
        parity.report(tmp_path / "new", tmp_path / "out", SETTINGS, bins=10, window=0.2, random_score=None,
                      reuse=[tmp_path / "old.json"])
    with pytest.raises(SystemExit, match="repeat a seed"):
        parity.report(tmp_path / "new", tmp_path / "out", SETTINGS, bins=10, window=0.2, random_score=None,
                      reuse=[earlier[0], earlier[0]])


def test_report_joins_reused_seeds_of_both_codes_to_run_folders_of_a_new_seed(tmp_path):
    """Seed 2 of both codes ran again after its folders were lost: seeds 0 and 1 come from the earlier report,
    seed 2 from the run folders, for each code; a seed in both is refused."""
    rng = np.random.default_rng(2)
    write_learning_runs(tmp_path / "old", ("official", "ours"), range(2), rng, final_loss=0.5)
    write_learning_runs(tmp_path / "new", ("official", "ours"), (2,), rng, final_loss=2.0)
    earlier = tmp_path / "old" / "report.json"
    parity.report(tmp_path / "old", earlier.with_suffix(""), SETTINGS, bins=10, window=0.2, random_score=None)
    parity.main(["report", "--suite", "gym", "--task", "CartPole-v1", "--steps", "3000", "--train-ratio", "128",
                 "--batch-size", "8", "--batch-length", "32", "--lr", "1e-4", "--warmup", "0",
                 "--out", str(tmp_path / "new"), "--results", str(tmp_path / "joined"),
                 "--reuse", str(earlier), "--reuse-impl", "official", "ours"])
    data = json.loads((tmp_path / "joined.json").read_text())
    old = json.loads(earlier.read_text())["implementations"]
    for impl in ("official", "ours"):
        entry = data["implementations"][impl]
        assert [run["seed"] for run in entry["runs"]] == [0, 1, 2]
        assert [run.get("results_file") for run in entry["runs"]] == [str(earlier), str(earlier), None]
        assert entry["seed_curves"][:2] == old[impl]["seed_curves"]
        assert entry["final_metrics"]["loss/rew"] == pytest.approx((2 * 0.5 + 1 * 2.0) / 3)  # weighted by seeds
    assert data["verdicts"]["ours vs official"]["seeds"] == [3, 3]
    assert "The ours runs of seeds 0, 1 are reused from earlier reports" in (tmp_path / "joined.md").read_text()
    write_learning_runs(tmp_path / "again", ("ours",), (1,), rng)
    with pytest.raises(SystemExit, match=r"joined ours runs repeat a seed \(\[0, 1, 1\]\)"):
        parity.report(tmp_path / "again", tmp_path / "x", SETTINGS, bins=10, window=0.2, random_score=None,
                      reuse=[earlier], reuse_impls=["ours"])
    only_official = tmp_path / "a" / "report.json"
    write_learning_runs(only_official.parent, ("official",), (5,), rng)
    parity.report(only_official.parent, only_official.with_suffix(""), SETTINGS, bins=10, window=0.2,
                  random_score=None)
    with pytest.raises(SystemExit, match="has ours runs"):
        parity.report(tmp_path / "new", tmp_path / "x", SETTINGS, bins=10, window=0.2, random_score=None,
                      reuse=[only_official], reuse_impls=["ours"])


def test_report_leaves_out_unfinished_runs_and_keeps_only_the_named_seeds(tmp_path):
    """While seed 2 still runs, the report covers the finished seeds 0 and 1 and names the unfinished ones,
    instead of a verdict of NaN; --seeds narrows it further."""
    runs = tmp_path / "runs"
    write_learning_runs(runs, ("ours", "official"), range(2), np.random.default_rng(0))
    write_run(runs / "official-2", [(10, 20.0), (500, 30.0)], finished=False)  # no final window yet
    parity.report(runs, tmp_path / "all", SETTINGS, bins=10, window=0.2, random_score=None)
    data = json.loads((tmp_path / "all.json").read_text())
    assert [run["seed"] for run in data["implementations"]["official"]["runs"]] == [0, 1]
    assert np.isfinite(data["verdicts"]["ours vs official"]["difference"])
    assert data["unfinished"] == ["official-2 (500 of 3,000 steps)"]
    assert "Unfinished, left out of the curves and the verdict: official-2 (500 of 3,000 steps)." in (
        tmp_path / "all.md").read_text()
    parity.main(["report", "--suite", "gym", "--task", "CartPole-v1", "--steps", "3000", "--train-ratio", "128",
                 "--batch-size", "8", "--batch-length", "32", "--lr", "1e-4", "--warmup", "0", "--seeds", "1",
                 "--out", str(runs), "--results", str(tmp_path / "seed1")])
    data = json.loads((tmp_path / "seed1.json").read_text())
    assert {impl: [run["seed"] for run in entry["runs"]] for impl, entry in data["implementations"].items()} == {
        "official": [1], "ours": [1]}
    assert data["unfinished"] == []
    with pytest.raises(SystemExit, match="unfinished: official-2"):
        parity.report(runs, tmp_path / "none", SETTINGS, bins=10, window=0.2, random_score=None, seeds=[2])
