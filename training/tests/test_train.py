"""The training CLI end to end: arguments, run folder, resume, kill and restart, determinism, learning."""
import errno
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from training.checkpoint import Checkpoints
from training.logger import Logger
from training.tests.fakes import FakeAgent
from training.train import build_parser, main

REPO = Path(__file__).resolve().parents[2]
CARTPOLE = ["--suite", "gym", "--task", "CartPole-v1", "--size", "1m", "--device", "cpu"]
# A tiny real run: short sequences and one update per 16 agent steps, for seconds-long runs on 2 cores.
TINY = ["--set", "batch_size=4", "--set", "batch_length=16", "--set", "train_fill=64", "--train-ratio", "4"]


@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch):
    """Tiny models on a shared 2-core machine run far faster on one thread than on two that contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for the subprocesses
    yield
    torch.set_num_threads(threads)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--steps", "many"], "steps"),
        (["--set", "batch_sise=8"], "Did you mean batch_size"),
        (["--set", "batch_size=eight"], "batch_size"),
        (["--set", "batch_size"], "key=value"),
        (["--size", "3m"], "valid presets"),
        (["--device", "cuda:7"], "--device cpu"),
        (["--set", "compile=true"], "compile must be one of auto, off, steps, update"),
        (["--envs", "0"], "envs must be at least 1"),
        (["--set", "env_args={repeat: 2}"], "--set repeat=N"),
        (["--train-ratio", "-1"], "train_ratio must be a number above 0"),
        (["--train-ratio", "0"], "train_ratio must be a number above 0"),
        (["--set", "batch_size=0"], "batch_size must be at least 1"),
        (["--set", "precision=float16"], "precision must be one of auto, float32, bfloat16"),
        (["--set", "image_every=-1"], "image_every must be 0 (no episode frames in TensorBoard) or more seconds"),
        (["--set", "image_every=.nan"], "image_every must be 0"),
    ],
)
def test_bad_arguments_fail_before_anything_runs(tmp_path, capsys, extra, message):
    if extra[0] == "--device" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    logdir = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main([*CARTPOLE, "--logdir", str(logdir), *extra], agent_class=FakeAgent)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and len(error.splitlines()) == 1, error
    assert not logdir.exists()


@pytest.mark.parametrize("suite, task, env_args, message", [
    ("dmlab", "rooms_watermaze", "{sise: [64, 64]}", "env_args key 'sise' is not taken by the dmlab adapter "
     "(envs.dmlab.DMLab). Did you mean size? Accepted keys: mode, size, episodic."),  # no engine here
    ("atari100k", "pong", "{lenght: 100, gray: true}", "env_args key 'lenght' is not taken by the atari100k "
     "adapter (envs.atari.Atari). Did you mean length? Accepted keys: size, gray, sticky, all_actions, noops, length."),
    ("bsuite", "catch/0", "{length: 100}", "env_args key 'length' is not taken by the bsuite adapter "
     "(envs.bsuite.BSuite). It takes no env_args."),
])
def test_env_args_key_the_adapter_does_not_take_exits_2_before_anything(tmp_path, capsys, suite, task, env_args,
                                                                         message):
    logdir = tmp_path / "run"
    argv = ["--suite", suite, "--task", task, "--logdir", str(logdir), "--device", "cpu", "--set",
            f"env_args={env_args}"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main(argv, agent_class=FakeAgent)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not logdir.exists()


@pytest.mark.parametrize("task, extra, message", [
    ("NoSuchEnv-v0", [], "not registered"),
    ("CartPole-v1", ["--set", "repeat=2"], "gym has no action repeat"),
])
def test_env_that_cannot_be_built_fails_before_anything_is_written(tmp_path, capsys, task, extra, message):
    logdir = tmp_path / "run"
    argv = ["--suite", "gym", "--task", task, "--logdir", str(logdir), "--device", "cpu", *extra]
    assert main(argv, agent_class=FakeAgent) == 2
    assert message in capsys.readouterr().err
    assert not logdir.exists()


@pytest.mark.parametrize("logdir, extra, message", [
    ("file", [], "cannot hold a run (File exists"),
    ("/proc/no-runs-here/run", [], "cannot hold a run (No such file or directory"),  # read-only for root too
    ("run", ["--set", "env_args={foo: 1}"], "env_args {'foo': 1} do not fit the gym adapter"),
])
def test_unusable_logdir_or_env_args_exit_2_before_anything_is_written(tmp_path, capsys, logdir, extra, message):
    (tmp_path / "file").write_text("not a folder")
    logdir = tmp_path / logdir
    assert main([*CARTPOLE, "--logdir", str(logdir), *extra], agent_class=FakeAgent) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) <= 2, error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_suite_without_its_engine_fails_with_the_install_hint(tmp_path, capsys):
    try:
        import deepmind_lab  # noqa: F401
        pytest.skip("DeepMind Lab is installed here")
    except ImportError:
        pass
    logdir = tmp_path / "run"
    argv = ["--suite", "dmlab", "--task", "rooms_watermaze", "--logdir", str(logdir), "--device", "cpu",
            "--set", "env_args={size: [32, 32], mode: eval}"]  # keys the adapter takes: checked without the engine
    assert main(argv, agent_class=FakeAgent) == 3
    err = capsys.readouterr().err
    assert "dmlab cannot run here" in err and "containers/dmlab.def" in err
    assert not logdir.exists()


def test_help_lists_flags_and_suite_defaults():
    text = build_parser().format_help()
    for flag in ("--suite", "--task", "--seed", "--size", "--train-ratio", "--steps", "--envs", "--logdir",
                 "--device", "--set"):  # fmt: skip
        assert flag in text
    assert "atari100k" in text and "train_ratio 256" in text


def test_run_folder_finished_run_and_config_refusal(tmp_path, capsys):
    logdir = tmp_path / "run"
    argv = [*CARTPOLE, "--logdir", str(logdir), "--steps", "1500", "--envs", "2", "--set", "train_fill=256",
            "replay_chunksize=512"]  # fmt: skip
    assert main(argv, agent_class=FakeAgent) == 0
    names = sorted(p.name for p in logdir.iterdir())
    assert names == ["checkpoints", "config.yaml", "done.json", names[3], "metrics.jsonl", "provenance.json",
                     "replay", "run.lock", "scores.jsonl"]  # fmt: skip
    assert names[3].startswith("events.out.tfevents.")  # TensorBoard's copy of the two jsonl files
    config = yaml.safe_load((logdir / "config.yaml").read_text())
    assert config["steps"] == 1500 and config["envs"] == 2 and config["deter"] == 512
    assert config["train_fill"] == 256 and config["replay_chunksize"] == 512  # one --set, two values
    assert config["suite"] == "gym" and config["task"] == "CartPole-v1" and config["repeat"] == 1
    provenance = json.loads((logdir / "provenance.json").read_text())
    for key in ("git_commit", "git_dirty", "packages", "host", "device", "device_name", "torch_threads",
                "python", "command", "container"):  # fmt: skip
        assert key in provenance
    assert "torch" in provenance["packages"] and "gymnasium" in provenance["packages"]
    assert provenance["precision"] in ("float32", "bfloat16") and provenance["device_name"] not in ("", "x86_64")
    done = json.loads((logdir / "done.json").read_text())
    assert done["agent_steps"] == 1500 and done["episodes"] > 10
    scores = read_lines(logdir / "scores.jsonl")
    assert len(scores) == done["episodes"]
    assert all(set(line) == {"step", "episode/score", "episode/length"} for line in scores)
    assert all(line["episode/length"] == line["episode/score"] + 1 for line in scores)  # CartPole: 1 per step
    metrics = read_lines(logdir / "metrics.jsonl")[-1]
    for key in ("loss/fake", "replay/items", "replay/bytes_per_step", "replay/ram_gb", "train/ratio",
                "fps/agent_steps", "epstats/score", "usage/max_rss_gb"):  # fmt: skip
        assert key in metrics
    assert metrics["replay/bytes_per_step"] == 4 * 4 + 4 + 3 + 4 + 8 * 2 + 4  # vector, reward, flags, action, latents

    capsys.readouterr()
    before = (logdir / "scores.jsonl").read_text()
    assert main([*argv, "--set", "log_every=1"], agent_class=FakeAgent) == 0  # cadence may differ
    assert "already finished" in capsys.readouterr().err
    assert (logdir / "scores.jsonl").read_text() == before

    assert main([*argv, "--seed", "1", "--set", "batch_size=8"], agent_class=FakeAgent) == 2
    error = capsys.readouterr().err
    assert "seed: 0 in the folder, 1 now" in error and "batch_size" in error


def test_compiled_run_names_its_compile_cache(tmp_path, capsys, monkeypatch):
    """compile=update compiles for many minutes unless torch's on-disk cache holds the graphs: the run says
    which folder that is, and provenance.json records where it was put."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "compile_cache"))
    argv = [*CARTPOLE, "--logdir", str(tmp_path / "run"), "--steps", "40", "--set", "compile=update"]
    assert main(argv, agent_class=FakeAgent) == 0
    assert f"its cache {tmp_path / 'compile_cache'} already holds" in capsys.readouterr().err
    provenance = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert provenance["compile_cache"] == str(tmp_path / "compile_cache")


def test_start_banner_names_the_models_size_and_parameter_count(tmp_path, capsys):
    """A suite's default size can be far larger than meant (bsuite's is 200m); the first line says which model runs."""
    from agent.params import count

    assert main([*CARTPOLE, *TINY, "--steps", "40", "--logdir", str(tmp_path)], agent_class=FakeAgent) == 0
    total = count("1m", "vector:4", "discrete:2")["total"]  # CartPole: 4 observations, 2 actions
    assert f"Agent: size 1m, {total / 1e6:.2f}M parameters, batch 4 x 16, train ratio 4, cpu, " in (
        capsys.readouterr().err
    )


def test_auto_compile_resolves_from_the_runs_update_count(tmp_path, capsys, monkeypatch):
    """compile=auto (the default) hands the agent "off" for a short run and "update" once the run's planned
    updates reach agent.hardware.COMPILE_PAYS_OFF_UPDATES, and says which and why."""
    import agent.hardware

    seen = []

    class CompileRecordingAgent(FakeAgent):
        def __init__(self, obs_space, act_space, config):
            super().__init__(obs_space, act_space, config)
            seen.append(config.compile)

    argv = [*CARTPOLE, *TINY, "--steps", "80"]  # 80 steps at 1 update per 16 steps: 2 updates
    assert main([*argv, "--logdir", str(tmp_path / "short")], agent_class=CompileRecordingAgent) == 0
    assert "compile=off (auto: 2 updates do not repay the compile" in capsys.readouterr().err
    monkeypatch.setattr(agent.hardware, "COMPILE_PAYS_OFF_UPDATES", 2)
    assert main([*argv, "--logdir", str(tmp_path / "long")], agent_class=CompileRecordingAgent) == 0
    assert "compile=update (auto: 2 updates repay the compile (from 2))" in capsys.readouterr().err
    assert seen == ["off", "update"]


class LatentWatchingAgent(FakeAgent):
    """Records, per update, the newest update whose latents its batch holds, and which outputs were fetched."""

    newest_seen, fetched = [], []

    def start_train(self, batch):
        self.newest_seen.append(int(batch["dyn/deter"].max()))  # acting stores 0.5, update k stores k
        outputs = super().start_train(batch)
        number = self.train_calls
        return SimpleNamespace(fetch=lambda: (self.fetched.append(number), outputs.fetch())[1])


def test_latents_are_written_back_one_update_late_and_none_is_lost(tmp_path):
    """The loop fetches an update's outputs after sampling the next batch (so on a GPU sampling overlaps
    the update), as the official loop does; the last update's outputs are fetched before the run ends."""
    LatentWatchingAgent.newest_seen, LatentWatchingAgent.fetched = [], []
    argv = [*CARTPOLE, "--logdir", str(tmp_path / "run"), "--steps", "400", "--envs", "1", "--train-ratio", "256",
            "--set", "train_fill=70", "batch_size=4", "batch_length=16"]  # fmt: skip
    assert main(argv, agent_class=LatentWatchingAgent) == 0
    updates = len(LatentWatchingAgent.newest_seen)
    assert updates > 50 and LatentWatchingAgent.fetched == list(range(1, updates + 1))
    late = [number - 1 - newest for number, newest in enumerate(LatentWatchingAgent.newest_seen, 1) if newest >= 1]
    assert min(late) == 1  # update k sees update k-2's latents at the newest, never k-1's
    assert len(late) > updates // 2  # and write-backs do reach the replay
    metrics = read_lines(tmp_path / "run" / "metrics.jsonl")
    assert metrics[-1]["train/updates"] == updates


def test_logger_schema_and_progress_line(tmp_path):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream in (Terminal(), io.StringIO()):
        logger = Logger(tmp_path / type(stream).__name__, repeat=4, total_steps=100, stream=stream)
        logger.directory.mkdir()
        logger.episode(10, {"env": 0, "episode/score": 3.0, "episode/length": 5, "log/coal": np.int64(2)})
        logger.add({"loss/total": 1.0})
        logger.add({"loss/total": 3.0})
        logger.print_progress(10)
        logger.write(20, {"replay/items": 5})
        assert read_lines(logger.directory / "scores.jsonl") == [
            {"step": 40, "episode/score": 3.0, "episode/length": 5, "log/coal": 2}]  # step = agent steps x repeat
        metrics = read_lines(logger.directory / "metrics.jsonl")[0]
        assert metrics["step"] == 80 and metrics["loss/total"] == 2.0 and metrics["epstats/coal"] == 2
        text = stream.getvalue()
        if stream.isatty():
            assert text.startswith("\r") and text.count("\r") == 2  # one line, redrawn
        else:
            assert text.count("\n") == 1 and "\r" not in text  # a plain line per metrics write only


def test_metrics_lines_say_where_the_wall_time_goes(tmp_path):
    """Each metrics line holds every phase's share of the interval since the line before (time/...): each in
    [0, 1], together at most the whole; once updates run, the update's share is above 0."""
    from training.phases import PHASES

    logdir = tmp_path / "run"
    argv = [*CARTPOLE, *TINY, "--steps", "400", "--logdir", str(logdir), "--set", "log_every=0.3",
            "save_every=0.5"]  # fmt: skip
    assert main(argv) == 0
    lines = read_lines(logdir / "metrics.jsonl")
    assert len(lines) >= 3
    for before, line in zip([{"train/updates": 0}, *lines], lines):
        shares = [line[f"time/{name}"] for name in PHASES]
        assert all(0 <= share <= 1 for share in shares) and sum(shares) <= 1 + 1e-6, line
        if line["train/updates"] > before["train/updates"]:
            assert line["time/update"] > 0, line
    assert any(line["time/update"] > 0.1 for line in lines)  # a 1m update dwarfs a CartPole step
    assert any(line["time/checkpoint"] > 0 for line in lines)


def test_checkpoints_keep_two_and_skip_corrupt_or_incomplete(tmp_path, capsys):
    checkpoints = Checkpoints(tmp_path, keep=2)
    for step in (10, 20, 30):
        checkpoints.save({"step": step, "array": np.arange(step)}, step)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["step-000000000020.pt", "step-000000000030.pt"]
    with open(tmp_path / "step-000000000030.pt", "r+b") as file:
        file.seek(40)
        file.write(b"garbage")
    state, path = checkpoints.load_latest()
    assert state["step"] == 20 and "corrupt" in capsys.readouterr().err
    (tmp_path / "step-000000000020.sha256").unlink()  # as if killed before the marker was written
    assert checkpoints.load_latest() == (None, None)
    assert "incomplete" in capsys.readouterr().err


def test_bsuite_run_is_not_resumed_but_restarted(tmp_path, capsys):
    pytest.importorskip("bsuite")
    logdir = tmp_path / "run"
    argv = ["--suite", "bsuite", "--task", "catch/0", "--size", "1m", "--device", "cpu", "--steps", "300",
            "--logdir", str(logdir), "--set", "train_fill=64"]  # fmt: skip
    assert main(argv, agent_class=FakeAgent) == 0
    first_step = read_lines(logdir / "scores.jsonl")[0]["step"]
    (logdir / "done.json").unlink()  # as if it had been stopped after its last checkpoint
    assert main(argv, agent_class=FakeAgent) == 0
    assert "cannot be resumed" in capsys.readouterr().err
    again = read_lines(logdir / "scores.jsonl")
    assert again[0]["step"] == first_step  # started again from step 0
    steps = [line["step"] for line in again]
    assert steps == sorted(set(steps))
    assert "log/bsuite/total_regret" in again[-1]


class SignalsAtStep450(FakeAgent):
    """Sends its own process SIGTERM at its 450th step, as a scheduler would: the run checkpoints, exits 143."""

    def policy(self, carry, obs):
        if carry["steps"][0] == 449:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().policy(carry, obs)


def test_bsuite_run_resumes_with_resume_stateful_env(tmp_path, capsys):
    """With the option, a bsuite run continues from its checkpoint (learning curves over several sessions):
    scores go on from the checkpoint's step, while bsuite's own episode count starts again from zero."""
    pytest.importorskip("bsuite")
    logdir = tmp_path / "run"
    argv = ["--suite", "bsuite", "--task", "catch/0", "--size", "1m", "--device", "cpu", "--steps", "900",
            "--logdir", str(logdir), "--set", "train_fill=64", "resume_stateful_env=true"]  # fmt: skip
    assert main(argv, agent_class=SignalsAtStep450) == 128 + signal.SIGTERM
    stopped = read_lines(logdir / "scores.jsonl")
    assert 400 <= stopped[-1]["step"] <= 450
    capsys.readouterr()
    assert main(argv, agent_class=FakeAgent) == 0
    error = capsys.readouterr().err
    assert "cannot be resumed" not in error and "agent step 45" in error, error
    lines = read_lines(logdir / "scores.jsonl")
    steps = [line["step"] for line in lines]
    assert steps == sorted(set(steps)) and steps[-1] >= 900 - 10  # a catch episode is 10 steps, reset included
    assert lines[: len(stopped)] == stopped
    resumed = lines[len(stopped):]
    assert resumed[0]["log/bsuite/episode"] == 1 < stopped[-1]["log/bsuite/episode"]


def newest_checkpoint_step(logdir: Path) -> int:
    markers = sorted((logdir / "checkpoints").glob("*.sha256"))
    return int(markers[-1].stem.split("-")[1]) if markers else -1


def wait_for_checkpoint(process, logdir: Path, after_step: int, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while newest_checkpoint_step(logdir) <= after_step:
        assert process.poll() is None, "the run ended before the checkpoint was written"
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.2)


@pytest.mark.slow
def test_killed_and_preempted_run_resumes_without_lost_or_repeated_scores(tmp_path):
    """SIGKILL mid-run, restart, SIGTERM (exit 143 after a checkpoint), restart to the end."""
    logdir = tmp_path / "run"
    command = [sys.executable, "-m", "training.train", *CARTPOLE, *TINY, "--steps", "1000", "--logdir", str(logdir),
               "--set", "save_every=0.5", "--set", "log_every=0.5", "--set", "replay_chunksize=128"]  # fmt: skip
    run = dict(cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)

    first = subprocess.Popen(command, **run)
    wait_for_checkpoint(first, logdir, after_step=200)
    first.kill()
    first.communicate()
    state, _ = Checkpoints(logdir / "checkpoints").load_latest()
    covered = (logdir / "scores.jsonl").read_bytes()[: state["log_sizes"]["scores.jsonl"]]
    checkpoint_step = state["counters"]["step"]
    assert covered, "the checkpoint covers some episodes"

    second = subprocess.Popen(command, **run)
    wait_for_checkpoint(second, logdir, after_step=checkpoint_step + 100)
    second.send_signal(signal.SIGTERM)
    _, stderr = second.communicate(timeout=60)
    assert second.returncode == 128 + signal.SIGTERM, stderr
    assert f"from step-{checkpoint_step:012d}.pt" in stderr
    assert "replay steps loaded" in stderr and " 0 replay steps loaded" not in stderr

    third = subprocess.run(command, timeout=300, **run)
    assert third.returncode == 0, third.stderr
    done = json.loads((logdir / "done.json").read_text())
    assert done["agent_steps"] == 1000
    scores = (logdir / "scores.jsonl").read_bytes()
    assert scores.startswith(covered), "lines the checkpoint covered are kept as they were"
    steps = [line["step"] for line in read_lines(logdir / "scores.jsonl")]
    assert steps == sorted(set(steps)), "no episode line is repeated (one env: one episode end per step)"
    assert len(steps) == done["episodes"]
    metric_steps = [line["step"] for line in read_lines(logdir / "metrics.jsonl")]
    assert metric_steps == sorted(metric_steps)
    assert read_lines(logdir / "metrics.jsonl")[-1]["train/updates"] > 0
    from training.tests.test_trackers import assert_tensorboard_matches_jsonl  # (that module imports this one)

    assert len(list(logdir.glob("events.out.tfevents.*"))) == 3  # one per start; the later ones purge
    assert_tensorboard_matches_jsonl(logdir)


def test_same_seed_gives_identical_scores(tmp_path):
    runs = []
    for name in ("a", "b"):
        logdir = tmp_path / name
        argv = [*CARTPOLE, *TINY, "--steps", "400", "--logdir", str(logdir), "--seed", "3"]
        assert main(argv) == 0
        runs.append((logdir / "scores.jsonl").read_text())
    assert runs[0] == runs[1]
    assert len(runs[0].splitlines()) > 5


@pytest.mark.slow
def test_learning_beats_random_policy_on_cartpole(tmp_path):
    """CartPole-v1, seed 0, 2000 agent steps (~860 updates of 8 x 32 steps; lr 1e-4 without warm-up to learn
    fast): the episodes ending after step 1500 average at least 50 more than a random policy (~23).
    Measured: seed 0 averaged 152 after step 1500, seed 1 reached 500 (the maximum); ~3.5 min on 2 cores.
    """
    from training.random_policy import random_policy_score

    logdir = tmp_path / "run"
    argv = [*CARTPOLE, "--steps", "2000", "--train-ratio", "128", "--logdir", str(logdir), "--seed", "0",
            "--set", "batch_size=8", "batch_length=32", "train_fill=256", "lr=1e-4", "warmup=0"]  # fmt: skip
    assert main(argv) == 0
    scores = [line["episode/score"] for line in read_lines(logdir / "scores.jsonl") if line["step"] > 1500]
    random_score = random_policy_score("gym", "CartPole-v1", seed=0)
    assert scores and np.mean(scores) > random_score + 50, (scores, random_score)


def test_replay_that_cannot_fit_is_refused_before_the_run(tmp_path, capsys):
    logdir = tmp_path / "run"
    argv = [*CARTPOLE, "--steps", "10000000000", "--logdir", str(logdir), "--set", "replay_size=100000000000"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Replay memory:" in err and "Lower --set replay_size" in err
    assert not (logdir / "config.yaml").exists()


def test_ctrl_c_saves_a_checkpoint_and_exits_130_and_a_second_one_exits_at_once(tmp_path):
    """Ctrl-C reaches the whole process group (the env workers too), as from a terminal."""
    logdir = tmp_path / "run"
    command = [sys.executable, "-m", "training.train", *CARTPOLE, *TINY, "--steps", "5000", "--logdir", str(logdir),
               "--set", "save_every=0.5", "--set", "parallel_envs=true"]  # fmt: skip
    run = dict(cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ,
               start_new_session=True)
    first = subprocess.Popen(command, **run)
    wait_for_checkpoint(first, logdir, after_step=100)
    os.killpg(first.pid, signal.SIGINT)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 130, stderr
    assert "Traceback" not in stderr and "Got signal 2: saved a checkpoint" in stderr
    assert newest_checkpoint_step(logdir) > 100

    # A second Ctrl-C, here while the first is pending (in a run: while the checkpoint is written).
    second = subprocess.run([sys.executable, "-c", SECOND_CTRL_C], **run)
    assert second.returncode == 130, second.stderr
    assert second.stdout == "first Ctrl-C remembered\n" and "second Ctrl-C: exiting at once" in second.stderr


SECOND_CTRL_C = ("import os, signal; from training.train import StopSignal; stop = StopSignal(); "
                 "os.kill(os.getpid(), signal.SIGINT); assert stop.received == signal.SIGINT; "
                 "print('first Ctrl-C remembered', flush=True); os.kill(os.getpid(), signal.SIGINT); "
                 "print('not reached')")


def test_resume_loads_exactly_the_checkpoints_replay_steps_and_survives_bad_chunks(tmp_path, capsys):
    """The newest checkpoint is left incomplete (as by a kill while it was written, after the replay was
    saved): the resume falls back to the older one and its replay holds exactly that checkpoint's steps.
    Then chunk files are cut, corrupted and deleted: the resume names each and goes on."""
    logdir = tmp_path / "run"
    argv = [*CARTPOLE, "--logdir", str(logdir), "--steps", "3000", "--set", "train_fill=64", "replay_chunksize=128",
            "save_every=0.05"]  # fmt: skip
    assert main(argv, agent_class=FakeAgent) == 0
    checkpoints = sorted((logdir / "checkpoints").glob("*.sha256"))
    assert len(checkpoints) == 2
    checkpoints[-1].unlink()
    (logdir / "done.json").unlink()
    older = int(checkpoints[0].stem.split("-")[1])
    assert older < 3000
    capsys.readouterr()
    assert main(argv, agent_class=FakeAgent) == 0
    error = capsys.readouterr().err
    assert f"agent step {older:,}, " in error and f"{older:,} replay steps loaded" in error, error

    (logdir / "done.json").unlink()
    chunks = sorted((logdir / "replay").glob("*.npz"))
    chunks[0].unlink()
    chunks[1].write_bytes(chunks[1].read_bytes()[:200])
    chunks[2].write_bytes(b"\0" * 50)
    assert main(argv, agent_class=FakeAgent) == 0
    error = capsys.readouterr().err
    for path in chunks[:3]:
        assert f"replay chunk {path} is missing or unreadable" in error
    assert error.count("128 steps of env 0 lost") == 3
    assert "3,000 replay steps loaded" not in error and "replay steps loaded" in error


def test_fresh_start_over_an_unloadable_run_moves_its_files_aside(tmp_path, capsys):
    logdir = tmp_path / "run"
    argv = [*CARTPOLE, "--logdir", str(logdir), "--steps", "1500", "--set", "train_fill=64", "save_every=0.05"]
    assert main(argv, agent_class=FakeAgent) == 0
    scores = (logdir / "scores.jsonl").read_bytes()
    replay = sorted(p.name for p in (logdir / "replay").iterdir())
    for path in (logdir / "checkpoints").glob("*.pt"):
        path.write_bytes(b"corrupt")
    (logdir / "done.json").unlink()
    capsys.readouterr()
    assert main(argv, agent_class=FakeAgent) == 0
    error = capsys.readouterr().err
    asides = list(logdir.glob("aside-*"))
    assert len(asides) == 1 and f"starting fresh; the earlier start's logs, checkpoints and replay are moved to " \
        f"{asides[0]}" in error
    assert (asides[0] / "scores.jsonl").read_bytes() == scores
    assert sorted(p.name for p in (asides[0] / "replay").iterdir()) == replay
    assert len(list((asides[0] / "checkpoints").glob("*.pt"))) == 2
    assert {"config.yaml", "metrics.jsonl", "provenance.json"} <= {p.name for p in asides[0].iterdir()}
    assert read_lines(logdir / "scores.jsonl")[0]["step"] < 100, "the new start begins at step 0"


def test_logs_cut_by_hand_are_reported_on_resume_and_never_padded(tmp_path, capsys):
    logdir = tmp_path / "run"
    argv = [*CARTPOLE, "--logdir", str(logdir), "--steps", "1500", "--set", "train_fill=64"]
    assert main(argv, agent_class=FakeAgent) == 0
    scores = (logdir / "scores.jsonl").read_bytes()
    (logdir / "scores.jsonl").write_bytes(scores[: len(scores) // 2])  # mid-line, most likely
    (logdir / "metrics.jsonl").unlink()
    (logdir / "done.json").unlink()
    capsys.readouterr()
    assert main(argv, agent_class=FakeAgent) == 0
    error = capsys.readouterr().err
    assert f"{logdir / 'scores.jsonl'} holds {len(scores) // 2:,} bytes, fewer than the {len(scores):,}" in error
    assert f"{logdir / 'metrics.jsonl'} holds 0 bytes" in error
    text = (logdir / "scores.jsonl").read_bytes()
    assert b"\0" not in text and text.endswith(b"\n")
    assert text == scores[: scores[: len(scores) // 2].rfind(b"\n") + 1], "cut to its last whole line"
    read_lines(logdir / "scores.jsonl")  # every line parses


def test_unreadable_config_yaml_is_one_clear_line_and_changes_nothing(tmp_path, capsys):
    logdir = tmp_path / "run"
    argv = [*CARTPOLE, "--logdir", str(logdir), "--steps", "300", "--set", "train_fill=64"]
    assert main(argv, agent_class=FakeAgent) == 0
    (logdir / "done.json").unlink()
    (logdir / "config.yaml").write_bytes(b"suite: gym\n  task: [unclosed\n\xff")
    before = {path: path.read_bytes() for path in logdir.rglob("*") if path.is_file() and path.name != "run.lock"}
    capsys.readouterr()
    assert main(argv, agent_class=FakeAgent) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"{logdir / 'config.yaml'} cannot be read (") and len(error.strip().splitlines()) == 1
    after = {path: path.read_bytes() for path in logdir.rglob("*") if path.is_file() and path.name != "run.lock"}
    assert after == before


@pytest.fixture
def tmpfs(tmp_path):
    """A small tmpfs at tmp_path/disk (remount it to change its size or make it read-only); root only."""
    if os.geteuid() != 0:
        pytest.skip("mounts a tmpfs (root only)")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield disk
    subprocess.run(["umount", str(disk)])


def remount(disk: Path, options: str):
    subprocess.run(["mount", "-o", f"remount,{options}", str(disk)], check=True)


def test_disk_full_is_one_clear_line_keeps_the_checkpoints_and_resumes_once_there_is_space(tmpfs, capsys):
    logdir = tmpfs / "run"
    argv = [*CARTPOLE, "--logdir", str(logdir), "--steps", "20000", "--set", "train_fill=64",
            "replay_chunksize=128", "save_every=0.05"]  # fmt: skip
    assert main(argv, agent_class=FakeAgent) == 1
    error = capsys.readouterr().err
    lines = [line for line in error.splitlines() if line.startswith(("error", "Traceback"))]
    assert len(lines) == 1 and lines[0].startswith("error: no space left to write "), error
    state, _ = Checkpoints(logdir / "checkpoints").load_latest()
    assert state is not None and 0 < state["counters"]["step"] < 20000
    remount(tmpfs, "size=64m")
    assert main(argv, agent_class=FakeAgent) == 0
    assert f"agent step {state['counters']['step']:,}" in capsys.readouterr().err
    steps = [line["step"] for line in read_lines(logdir / "scores.jsonl")]
    assert steps == sorted(set(steps)) and json.loads((logdir / "done.json").read_text())["agent_steps"] == 20000


def test_file_system_turning_read_only_during_a_run_is_one_clear_line(tmp_path, capsys, monkeypatch):
    """As when the kernel remounts a disk read-only after errors (a tmpfs cannot be remounted read-only while
    the run holds files open for writing, so here the third checkpoint save fails the way it then would)."""
    original, saves = Checkpoints.save, []

    def save(self, state, step):
        saves.append(step)
        if len(saves) == 3:
            raise OSError(errno.EROFS, "Read-only file system", str(self.directory / "step.pt.tmp"))
        return original(self, state, step)

    monkeypatch.setattr(Checkpoints, "save", save)
    logdir = tmp_path / "run"
    argv = [*CARTPOLE, "--logdir", str(logdir), "--steps", "3000", "--set", "train_fill=64", "save_every=0.05"]
    assert main(argv, agent_class=FakeAgent) == 1
    error = capsys.readouterr().err
    assert f"error: read-only file system while writing {logdir / 'checkpoints' / 'step.pt.tmp'} (Read-only file " \
        "system). The checkpoints and logs up to the last checkpoint are intact; make it writable and rerun the " \
        "same command to resume.\n" in error and "Traceback" not in error
    state, _ = Checkpoints(logdir / "checkpoints").load_latest()
    assert state["counters"]["step"] == saves[1]
    monkeypatch.undo()
    assert main(argv, agent_class=FakeAgent) == 0
    assert f"agent step {saves[1]:,}" in capsys.readouterr().err


def file_digests(folder: Path) -> dict:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def test_fresh_run_on_a_read_only_mount_is_one_clear_line_before_any_work(tmpfs, capsys):
    remount(tmpfs, "ro")
    logdir = tmpfs / "runs" / "run"
    assert main([*CARTPOLE, "--logdir", str(logdir)], agent_class=FakeAgent) == 2
    error = capsys.readouterr().err
    assert error == f"error: --logdir {logdir} cannot hold a run (Read-only file system: {logdir.parent}); give " \
        "a writable folder path.\n"
    assert list(tmpfs.iterdir()) == []


def test_resuming_a_run_folder_that_became_read_only_is_one_clear_line_and_changes_nothing(tmpfs, capsys):
    remount(tmpfs, "size=64m")
    logdir = tmpfs / "run"
    argv = [*CARTPOLE, "--logdir", str(logdir), "--steps", "1500", "--set", "train_fill=64", "save_every=0.05",
            "replay_chunksize=128"]  # fmt: skip
    assert main(argv, agent_class=FakeAgent) == 0
    (logdir / "done.json").unlink()  # as if stopped after its last checkpoint
    before = file_digests(logdir)
    assert len(before) > 10 and any(name.startswith("replay/") for name in before)
    remount(tmpfs, "ro")
    capsys.readouterr()
    assert main(argv, agent_class=FakeAgent) == 2
    error = capsys.readouterr().err
    assert error == f"error: {logdir} cannot be written (Read-only file system: {logdir / 'run.lock'}); nothing " \
        "was changed. Rerun the same command once it is writable to resume the run.\n"
    assert file_digests(logdir) == before
    remount(tmpfs, "rw")
    assert main(argv, agent_class=FakeAgent) == 0
    assert "Resuming" in capsys.readouterr().err and (logdir / "done.json").exists()


@pytest.mark.slow
def test_random_sigkills_lose_and_repeat_nothing(tmp_path):
    """Six SIGKILLs at random moments of one run (some land while a checkpoint or the replay is written),
    each followed by a restart of the same command, then a run to the end."""
    import random

    rng = random.Random(os.getpid())
    logdir = tmp_path / "run"
    command = [sys.executable, "-m", "training.train", *CARTPOLE, *TINY, "--steps", "1500", "--logdir", str(logdir),
               "--set", "save_every=0.3", "--set", "log_every=0.3", "--set", "replay_chunksize=128"]  # fmt: skip
    run = dict(cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
    resumes = []
    for _ in range(6):
        process = subprocess.Popen(command, **run)
        wait_for_checkpoint(process, logdir, after_step=newest_checkpoint_step(logdir))
        time.sleep(rng.uniform(0, 0.6))
        process.kill()
        _, stderr = process.communicate()
        assert process.returncode == -signal.SIGKILL, "killed before the end"
        resumes += [line for line in stderr.splitlines() if line.startswith("Resuming")]
    final = subprocess.run(command, timeout=600, **run)
    assert final.returncode == 0, final.stderr
    resumes += [line for line in final.stderr.splitlines() if line.startswith("Resuming")]

    assert len(resumes) == 6 and "WARNING: replay chunk" not in final.stderr
    for line in resumes:  # "... agent step 1,234, 56 episodes, 1,234 replay steps loaded; ..."
        agent_steps = line.split("agent step ")[1].split(", ")[0]
        assert line.split("episodes, ")[1].split(" replay steps")[0] == agent_steps, line
    done = json.loads((logdir / "done.json").read_text())
    assert done["agent_steps"] == 1500
    steps = [line["step"] for line in read_lines(logdir / "scores.jsonl")]
    assert steps == sorted(set(steps)), "no episode line repeated, none going back (one env: one end per step)"
    assert len(steps) == done["episodes"], "no episode line lost"
    metric_steps = [line["step"] for line in read_lines(logdir / "metrics.jsonl")]
    assert metric_steps == sorted(metric_steps)
    state, _ = Checkpoints(logdir / "checkpoints").load_latest()
    assert sum(entry[3] for entry in state["replay"]["chunks"]) == state["counters"]["step"] == 1500


def test_a_checkpoint_is_written_only_after_everything_it_counts_is_on_disk(tmp_path, monkeypatch):
    """So that a power loss, not only a killed process, leaves a checkpoint whose replay chunks and log lines
    are there: each save fsyncs the new chunk files, the replay folder and the logs, then the checkpoint file
    and its marker, each followed by its folder."""
    synced, real_fsync = [], os.fsync

    def fsync(descriptor):
        synced.append(Path(os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    logdir = tmp_path / "run"
    argv = [*CARTPOLE, "--logdir", str(logdir), "--steps", "600", "--set", "train_fill=64", "replay_chunksize=256"]
    assert main(argv, agent_class=FakeAgent) == 0  # one checkpoint, at the end
    last_save = synced[[path.name for path in synced].index("chunk-000000000.tmp"):]
    checkpoints, replay = logdir / "checkpoints", logdir / "replay"
    assert last_save[:-2] == [
        replay / "chunk-000000000.tmp", replay / "chunk-000000001.tmp", replay / "chunk-000000002.tmp", replay,
        logdir / "metrics.jsonl", logdir / "scores.jsonl", checkpoints / "step-000000000600.pt.tmp", checkpoints,
        checkpoints / "step-000000000600.sha256.tmp", checkpoints]
    assert last_save[-2:] == [logdir / "done.json.tmp", logdir]
