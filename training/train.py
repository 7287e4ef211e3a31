"""Train one DreamerV3 run (spec 5): `python -m training.train --suite gym --task CartPole-v1 --logdir DIR`.

Per agent step, in the official order: step counter +1, replay insert, then as many updates as the
train ratio grants (once the replay holds `train_fill` items), then the episode's log line if it ended.
The driver calls these as callbacks (training/driver.py); the run folder (training/run_folder.py) says
what is written where; the checkpoint saves and restores the parts registered with it.

Resume: run the same command again. A finished run (done.json) exits at once. A folder made with a
different config is refused. Episodes in progress restart; the log files are cut back to the
checkpoint, so scores.jsonl has each episode up to the checkpoint exactly once. A suite whose env
keeps state a checkpoint cannot hold (bsuite: `resumable` in its registry row) starts again instead,
unless `resume_stateful_env` is set.

Exit codes: 0 done (or already done), 1 disk full or the file system turned read-only during the run
(resumable once there is space or it is writable again) or a crash, 2 bad arguments, a different config,
a folder that cannot be written (a read-only file system) or one in use by another run (its lock,
training/run_folder.py), 3 the suite's engine is not installed here, 128 + signal number (143 for SIGTERM,
138 for SIGUSR1, 130 for Ctrl-C) after checkpointing on that signal, so that a scheduler sees a failure and
requeues the job, which then resumes.
"""
import argparse
import dataclasses
import errno
import os
import random
import resource
import signal
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

import envs
from agent.agent import DETER_DTYPE
from agent.config import SIZES, make_config, parse_overrides, parse_value
from agent.hardware import compile_cache_dir, resolve_compile, resolve_device, resolve_precision
from agent.params import counts_for_spaces
from envs.parallel import BatchEnv
from training.checkpoint import Checkpoint, warn
from training.driver import Driver
from training.host import keep_freed_memory
from training.logger import Logger
from training.phases import Phases
from training.provenance import collect as collect_provenance
from training.ratio import Ratio, planned_updates
from training.replay import Replay
from training.run_folder import RunFolder
from training.trackers import FRAMES_TAG, check_trackers, episode_frames, open_trackers

FLAGS = ("seed", "size", "train_ratio", "steps", "envs", "device")  # --train-ratio sets train_ratio


# --- Command line ---


def build_parser() -> argparse.ArgumentParser:
    defaults = "\n".join(
        f"  {name:12s} train_ratio {info.train_ratio:<5} "
        f"steps {info.steps if info.steps < envs.NO_STEP_LIMIT else 'episode budget':<14} "
        f"envs {info.envs:<3} size {info.size:<5} repeat {info.repeat}"
        for name, info in envs.SUITES.items()
    )
    parser = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train one DreamerV3 agent on one task; rerun the same command to resume.",
        epilog=f"Defaults per suite (used when the flag is not given):\n{defaults}\n\n"
        "Any config value: --set key=value, e.g. --set batch_size=8 save_every=60 --set 'env_args={length: 100}'. "
        "Precedence: suite defaults < flags < --set. Keys and documentation: agent/config.py.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--suite", required=True, choices=sorted(envs.SUITES), help="benchmark suite")
    parser.add_argument("--task", required=True, help="task of the suite, e.g. pong, walker_walk, CartPole-v1")
    parser.add_argument("--logdir", required=True, type=Path, help="run folder; reused to resume")
    parser.add_argument("--seed", default="0", help="seed of torch, numpy, envs and replay (default 0)")
    parser.add_argument("--size", help=f"model size, one of {', '.join(SIZES)} (default: suite's)")
    parser.add_argument("--train-ratio", help="replayed steps per agent step (default: suite's)")
    parser.add_argument("--steps", help="agent-step budget, e.g. 1e6 (default: suite's)")
    parser.add_argument("--envs", help="environments stepped together (default: suite's)")
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, ...")
    parser.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="any config value; repeatable, and one --set may take several")
    return parser


def suite_config(suite: str, task: str, flags: dict, overrides: list[str]):
    """The run's config: the suite's defaults < flags (config key -> command-line text; None: not given) <
    `key=value` overrides; a bad value raises KeyError or ValueError saying what is wrong."""
    info = envs.SUITES[suite]
    values = dict(suite=suite, task=task, train_ratio=float(info.train_ratio), envs=info.envs, steps=info.steps,
                  size=info.size, repeat=info.repeat)  # fmt: skip
    for key, text in flags.items():
        if text is not None:
            values[key] = parse_value(key, text)
    values.update(parse_overrides(overrides))
    config = make_config(**values)
    envs.check_env_args(config.suite, config.env_args)  # from the adapter's signature; imports no engine
    return config


def parse_args(argv):
    """Returns (config, logdir); a bad value exits with status 2 and a message before anything runs."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = suite_config(args.suite, args.task, {key: getattr(args, key) for key in FLAGS}, args.set)
        resolve_device(config.device)  # e.g. cuda asked for on a machine without a GPU
        check_trackers(config.trackers)  # e.g. wandb chosen but not installed
    except (KeyError, ValueError) as error:  # one line, without the usage: the value, not the syntax, is wrong
        parser.exit(2, f"error: {error.args[0] if error.args else error}\n")
    return config, args.logdir


# --- Seeds and RNG states ---


def prepare_process(config) -> str:
    """Device, seeds, threads and malloc policy of this process; returns the resolved device."""
    device = resolve_device(config.device)
    seed_everything(config, device)
    if config.threads:
        torch.set_num_threads(config.threads)
    keep_freed_memory()  # no page faults on each update's fresh activations (training/host.py)
    return device


def seed_everything(config, device: str):
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    if device == "cpu":
        # Free on CPU; on CUDA it would need CUBLAS_WORKSPACE_CONFIG and slower kernels.
        torch.use_deterministic_algorithms(True, warn_only=True)


def replay_memory_estimate(config, obs_space: dict, act_space: dict) -> tuple[int, int]:
    """Bytes per stored step (observations, actions, flags, the latent: float16 deter and uint8
    class indices) and the replay's size when full: its capacity or the whole run, if shorter."""
    spaces = [*obs_space.values(), *act_space.values()]
    per_step = sum(space.dtype.itemsize * int(np.prod(space.shape)) for space in spaces)
    per_step += DETER_DTYPE.itemsize * config.deter + config.stoch
    return per_step, per_step * min(config.replay_size, config.steps)


def available_memory() -> int:
    """MemAvailable of the machine (Linux), else the physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def env_seed(seed: int, index: int, start_step: int) -> int:
    """Distinct per env and per (re)start, so a resumed run does not replay the same episodes."""
    return int(np.random.SeedSequence([seed, index, start_step]).generate_state(1)[0])


def rng_states() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def restore_rng_states(states: dict):
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])


class CannotRun(Exception):
    """A run that cannot start here; nothing is written yet. Carries the exit code and what to do."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def check_replay_fits(config, batch_env: BatchEnv):
    """Prints the replay's memory estimate; refuses (with what to do, envs closed) a replay that would not fit."""
    per_step, replay_bytes = replay_memory_estimate(config, *agent_spaces(batch_env))
    available = available_memory()
    print(f"Replay memory: {per_step:,} bytes per step x {min(config.replay_size, config.steps):,} steps = "
          f"{replay_bytes / 1e9:.2f} GB when full ({available / 1e9:.1f} GB available)", file=sys.stderr)
    if replay_bytes > 0.9 * available:
        batch_env.close()
        raise CannotRun(2, f"the replay would need {replay_bytes / 1e9:.1f} GB but only {available / 1e9:.1f} GB "
                        "of memory are available. Lower --set replay_size=N (steps), or use a smaller --size (the "
                        "stored latent is 2 x deter bytes per step).")


# --- Training ---


class Clock:
    """True once every `seconds` of wall-clock time; never at the start; never if seconds <= 0."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.last = time.monotonic()

    def __call__(self) -> bool:
        if self.seconds <= 0 or time.monotonic() - self.last < self.seconds:
            return False
        self.last = time.monotonic()
        return True


class StopSignal:
    """Remembers SIGTERM / SIGUSR1 (SLURM preemption, time limit) and SIGINT (Ctrl-C) so the loop can
    checkpoint and exit; a second Ctrl-C exits at once (the files stay consistent: every write is atomic
    or an appended line that the next resume cuts back to the checkpoint)."""

    NUMBERS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)

    def __init__(self):
        self.received = None
        self.previous = {number: signal.signal(number, self.handle) for number in self.NUMBERS}

    def handle(self, number, frame):
        if number == signal.SIGINT and self.received == signal.SIGINT:
            print("\nsecond Ctrl-C: exiting at once, without a new checkpoint.", file=sys.stderr, flush=True)
            os._exit(128 + signal.SIGINT)
        self.received = number

    def restore(self):
        for number, handler in self.previous.items():
            signal.signal(number, handler)


class Counters:
    """Agent steps (over all envs), episodes, updates and wall-clock seconds of the run so far."""

    def __init__(self):
        self.step, self.episodes, self.updates = 0, 0, 0
        self.wall_before, self.started = 0.0, time.monotonic()  # seconds of earlier starts; this start

    def count_step(self, transition, index):
        self.step += 1

    def count_episode(self, episode, index):
        self.episodes += 1

    def wall(self) -> float:
        return self.wall_before + time.monotonic() - self.started

    def state_dict(self) -> dict:
        return dict(step=self.step, episodes=self.episodes, updates=self.updates, wall=self.wall())

    def load_state_dict(self, state: dict):
        self.step, self.episodes, self.updates = state["step"], state["episodes"], state["updates"]
        self.wall_before = state["wall"]


class Learner:
    """Per agent step (a driver callback): insert the step into the replay, then run the updates the train
    ratio grants once the replay holds `train_fill` items. Each update's outputs (metrics, refreshed
    latents) are fetched one update late, after the next batch is sampled (as in the official loop), so
    sampling never waits for the GPU; at fixed points only (never on a clock), so a seed gives one run."""

    def __init__(self, agent, replay: Replay, ratio: Ratio, logger: Logger, counters: Counters, config,
                 phases: Phases):
        self.agent, self.replay, self.ratio, self.logger, self.counters = agent, replay, ratio, logger, counters
        self.phases = phases
        self.fill, self.batch_size = config.train_fill, config.batch_size
        self.pending = None  # (stepid (B, T), outputs) of the update whose outputs are not fetched yet

    def __call__(self, transition: dict, index: int):
        with self.phases("replay_write"):
            self.replay.add(transition, stream=index)
        if len(self.replay) < self.fill:
            return
        for _ in range(self.ratio(self.counters.step)):
            with self.phases("replay_sample"):
                batch = self.replay.sample(self.batch_size)  # on a GPU: while the last update still runs
                stepid = batch.pop("stepid")  # (B, T+1)
            # On CPU start_train computes the whole update. On CUDA it returns once the kernels are queued and
            # fetch (one update late, after the next batch is sampled) waits for what is left: `time/update` is
            # then the time the host waits on updates, not the GPU's compute time; the overlapped part shows
            # under replay_sample, and the policy's copies to the host wait behind queued update kernels too.
            with self.phases("update"):
                outputs = self.agent.start_train(batch)
            self.finish_update()
            self.pending = (stepid[:, 1:], outputs)
            self.counters.updates += 1

    def finish_update(self):
        """Write the last update's latents back and log its metrics."""
        if self.pending is not None:
            stepid, outputs = self.pending
            with self.phases("update"):
                metrics, latents = outputs.fetch()
            with self.phases("replay_write"):
                self.replay.update_latents(stepid, latents)
            with self.phases("logging"):
                self.logger.add(metrics)
            self.pending = None


class MetricsWriter:
    """One metrics.jsonl line per call: replay statistics, the train ratio measured since the last line
    (to compare with the configured one), memory use and each phase's share of the wall time since the
    last line (`time/...`, training/phases.py)."""

    def __init__(self, logger: Logger, replay: Replay, counters: Counters, config, device: str, phases: Phases):
        self.logger, self.replay, self.counters, self.device = logger, replay, counters, device
        self.phases = phases
        self.ratio_setting = config.train_ratio
        self.replayed_per_update = config.batch_size * config.batch_length
        self.last_step, self.last_updates = counters.step, counters.updates

    def __call__(self):
        step, updates = self.counters.step, self.counters.updates
        measured = (updates - self.last_updates) * self.replayed_per_update / max(step - self.last_step, 1)
        usage = {"usage/max_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9}  # Linux: KiB
        if self.device.startswith("cuda"):
            usage["usage/cuda_max_gb"] = torch.cuda.max_memory_allocated(self.device) / 1e9
        self.logger.write(step, {**self.replay.stats(), "train/updates": updates, "train/ratio": measured,
                                 "train/ratio_setting": self.ratio_setting, **usage,
                                 **self.phases.fractions()})  # fmt: skip
        self.last_step, self.last_updates = step, updates

    def pending(self) -> bool:
        return self.counters.step > self.last_step


class ReplayFiles:
    """The replay's checkpoint part: its sampler state and the manifest of its chunks (which files, how
    many steps each) go into the checkpoint, its steps into chunk files beside it (only new chunks are
    written). A chunk file stays while the previous checkpoint (the fallback) still lists it."""

    def __init__(self, replay: Replay, folder: Path):
        self.replay, self.folder, self.loaded = replay, folder, 0
        self.previous = []  # manifest of the last save or load

    def save(self) -> dict:
        manifest = self.replay.save(self.folder, keep=[entry[0] for entry in self.previous])
        self.previous = manifest
        return {**self.replay.state_dict(), "chunks": manifest}

    def load(self, state: dict):
        self.replay.load_state_dict(state)
        if "chunks" not in state:
            warn("this checkpoint predates replay manifests; the replay starts empty")
            return
        self.previous = state["chunks"]
        self.loaded, problems = self.replay.load(self.folder, state["chunks"])
        for problem in problems:
            warn(problem)


def make_envs(config, start_step: int) -> BatchEnv:
    try:
        return BatchEnv([partial(envs.make, config.suite, config.task, env_seed(config.seed, index, start_step),
                                 config.repeat, **config.env_args) for index in range(config.envs)],
                        parallel=config.parallel_envs)  # fmt: skip
    except ValueError as error:  # e.g. an unknown task
        raise CannotRun(2, str(error)) from error
    except TypeError as error:  # an env_args key the engine does not take (gym passes any key on to Gymnasium)
        raise CannotRun(2, f"env_args {config.env_args} do not fit the {config.suite} adapter: {error}. "
                        "Leave out or rename the key.") from error
    except ImportError as error:  # the suite's engine is not installed (DMLab, Minecraft outside their containers)
        raise CannotRun(3, f"{config.suite} cannot run here: {error}") from error


def agent_spaces(batch_env: BatchEnv) -> tuple[dict, dict]:
    """What the agent sees and does: no `log/` observations, no `reset` action."""
    obs_space = {key: space for key, space in batch_env.obs_space.items() if not key.startswith("log/")}
    act_space = {key: space for key, space in batch_env.act_space.items() if key != "reset"}
    return obs_space, act_space


def resumable_state(checkpoint: Checkpoint, config, folder: RunFolder) -> tuple[dict | None, Path | None]:
    """The newest good checkpoint, unless the suite's env keeps state that a checkpoint cannot hold."""
    state, path = checkpoint.files.load_latest()
    if state is not None and not envs.SUITES[config.suite].resumable:
        if config.resume_stateful_env:
            print(f"Resuming a {config.suite} run with resume_stateful_env=true: the environment's own accounting "
                  "(e.g. bsuite's episode count and regret) starts again from zero.", file=sys.stderr)
            return state, path
        print(f"{config.suite} runs cannot be resumed: the environment keeps state (e.g. bsuite's episode "
              f"accounting) that a checkpoint does not hold. Starting {folder.path} again from scratch "
              "(--set resume_stateful_env=true resumes it anyway, for learning curves).", file=sys.stderr)
        return None, None
    return state, path


def episode_budget(config) -> float:
    """Episodes after which the run ends: the suite's own budget (bsuite, spec 6.9), else none."""
    budget = envs.SUITES[config.suite].episode_budget
    return budget(config.task) if budget else float("inf")


def compile_note(config) -> str:
    return (f"compile={config.compile}: the first update waits for torch.compile (compile=update: about 17 "
            f"minutes on 2 CPU cores) unless its cache {compile_cache_dir()} already holds this run's graphs "
            "(then about a minute). To keep them, set TORCHINDUCTOR_CACHE_DIR to a folder that outlives the job; "
            "the workflow uses results/compile_cache.")


def main(argv=None, agent_class=None) -> int:
    """agent_class: the Agent to train (tests pass a fake); default agent.agent.Agent."""
    config, logdir = parse_args(argv)
    if agent_class is None:
        from agent.agent import Agent as agent_class
    folder = RunFolder(logdir, config)
    argv = argv if argv is not None else sys.argv[1:]
    return run_in_folder(folder, lambda: train(config, folder, agent_class, argv),
                         "Interrupted before training started; nothing was trained.")


def run_in_folder(folder: RunFolder, work, interrupted: str) -> int:
    """The run folder's life around `work()` (which returns the exit status), for every command that writes a
    run folder: the lock, a folder of another run refused, a finished run left alone, and one line and an exit
    status for what stops a run (CannotRun, a full or read-only disk, Ctrl-C before `work` handles it)."""
    error = folder.lock()
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        error = folder.config_error()
        if error:
            print(error, file=sys.stderr)
            return 2
        if folder.finished():
            print(f"{folder.path} is already finished: {folder.finished()}", file=sys.stderr)
            return 0
        return work()
    except CannotRun as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            problem, remedy = "no space left to write", "free some space"
        elif error.errno == errno.EROFS:  # e.g. a file system remounted read-only after disk errors
            problem, remedy = "read-only file system while writing", "make it writable"
        else:
            raise
        print(f"error: {problem} {error.filename or folder.path} ({error.strerror}). The checkpoints and logs up "
              f"to the last checkpoint are intact; {remedy} and rerun the same command to resume.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        return 128 + signal.SIGINT
    finally:
        folder.unlock()


def train(config, folder: RunFolder, agent_class, argv: list[str]) -> int:
    checkpoint = Checkpoint(folder.checkpoints)
    state, checkpoint_path = resumable_state(checkpoint, config, folder)
    start_step = state["counters"]["step"] if state else 0
    batch_env = make_envs(config, start_step)
    check_replay_fits(config, batch_env)
    device = prepare_process(config)
    obs_space, act_space = agent_spaces(batch_env)
    compile_mode, compile_reason = resolve_compile(config.compile, device, planned_updates(config, config.steps),
                                                   obs_space)
    if compile_mode != config.compile:  # auto: the agent gets the mode it resolved to
        torch._dynamo.config.suppress_errors = True  # a graph that fails to compile runs eagerly, not fails
        config = dataclasses.replace(config, compile=compile_mode)
    agent = agent_class(obs_space, act_space, config)
    replay = Replay(config.replay_size, config.batch_length + config.replay_context, config.replay_chunksize,
                    config.replay_online, seed=config.seed)  # fmt: skip
    ratio, counters = Ratio.from_config(config), Counters()
    folder.start(resumed=state is not None)
    precision = resolve_precision(config.precision, torch.device(device)) or torch.float32
    folder.write_provenance(collect_provenance(device, argv, str(precision).removeprefix("torch.")),
                            start_step if state else None)
    logger = Logger(folder.path, config.repeat, config.steps, start_step,
                    trackers=open_trackers(config, folder.path, start_step * config.repeat if state else None))
    # The model's size first: a suite default such as bsuite's 200m is slow on a CPU, and this says so at once.
    parameters = counts_for_spaces(obs_space, act_space, config)["total"]
    logger.message(f"Agent: size {config.size}, {parameters / 1e6:.2f}M parameters, "
                   f"batch {config.batch_size} x {config.batch_length}, train ratio {config.train_ratio:g}, "
                   f"{device}, {str(precision).removeprefix('torch.')}")
    if compile_reason != "set":
        logger.message(f"compile={config.compile} ({compile_reason})")
    if config.compile != "off":
        logger.message(compile_note(config))

    replay_files = ReplayFiles(replay, folder.replay)
    checkpoint.register("agent", agent.state_dict, agent.load_state_dict)
    checkpoint.register("ratio", ratio.state_dict, ratio.load_state_dict)
    checkpoint.register("replay", replay_files.save, replay_files.load)
    checkpoint.register("rng", rng_states, restore_rng_states)
    checkpoint.register("log_sizes", logger.sizes, logger.truncate)
    checkpoint.register("counters", counters.state_dict, counters.load_state_dict)
    if state is not None:
        checkpoint.restore(state)
        logger.message(f"Resuming {folder.path} from {checkpoint_path.name}: agent step {counters.step:,}, "
                       f"{counters.episodes} episodes, {replay_files.loaded:,} replay steps loaded; episodes in "
                       "progress restart.")

    phases = Phases()
    learner = Learner(agent, replay, ratio, logger, counters, config, phases)
    write_metrics = MetricsWriter(logger, replay, counters, config, device, phases)
    driver = Driver(batch_env, agent, phases)
    driver.on_step(counters.count_step)
    driver.on_step(learner)
    driver.on_episode(phases.timed("logging", lambda episode, index: logger.episode(counters.step, episode)))
    # After count_step, so that an episode's frames get the step of its scores.jsonl line.
    frames = episode_frames(config, agent_spaces(batch_env)[0],
                            lambda images: logger.images(counters.step, FRAMES_TAG, images))
    if frames is not None:
        driver.on_step(phases.timed("logging", frames))
    driver.on_episode(counters.count_episode)
    episode_limit = episode_budget(config)
    stop, log_clock, save_clock = StopSignal(), Clock(config.log_every), Clock(config.save_every)
    try:
        while counters.step < config.steps and counters.episodes < episode_limit:
            if stop.received is not None:
                learner.finish_update()
                checkpoint.save(counters.step)
                logger.message(f"Got signal {stop.received}: saved a checkpoint at agent step {counters.step:,}; "
                               "exiting so that the job is requeued. Rerun the same command to resume.")
                return 128 + stop.received
            driver.step()
            with phases("logging"):
                logger.print_progress(counters.step)
                if log_clock():
                    write_metrics()
            if save_clock():
                with phases("checkpoint"):
                    checkpoint.save(counters.step)
        learner.finish_update()
        if write_metrics.pending():
            with phases("logging"):
                write_metrics()
        checkpoint.save(counters.step)
    finally:
        stop.restore()
        driver.close()
        logger.close()
    done = {"step": counters.step * config.repeat, "agent_steps": counters.step, "episodes": counters.episodes,
            "wall_seconds": round(counters.wall(), 1)}
    folder.write_done(done)
    logger.message(f"Finished {folder.path}: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
