"""Train one DreamerV3 run (spec 5): `python -m agent.train --suite gym --task CartPole-v1 --logdir DIR`.

Per agent step, in the official order: step counter +1, replay insert, episode logging,
then as many updates as the train ratio grants (once the replay holds `train_fill` items).

Run folder (--logdir):
  config.yaml      the resolved config
  provenance.json  code version, packages, host, device, container, command line (and each resume)
  metrics.jsonl    averaged train metrics, episode averages, replay statistics, fps; every log_every s
  scores.jsonl     one line per finished episode: episode/score, episode/length, log/... values
  events.out.tfevents.*  the same lines for TensorBoard (agent/trackers.py; config key trackers)
  checkpoints/     the last two good checkpoints (agent, RNG states, counters, scheduler, log sizes)
  replay/          the replay as chunk files, saved with each checkpoint
  done.json        written last: {"step", "agent_steps", "episodes", "wall_seconds"}

Resume: run the same command again. A finished run (done.json) exits at once. A folder made
with a different config is refused, except for the keys in MAY_DIFFER_ON_RESUME (they change
speed or cadence, not results). Episodes in progress restart; the log files are cut back to
the checkpoint, so scores.jsonl has each episode up to the checkpoint exactly once.

Exit codes: 0 done (or already done), 2 bad arguments or a different config, 128 + signal
number (143 for SIGTERM, 138 for SIGUSR1) after checkpointing on that signal, so that a
scheduler sees a failure and requeues the job, which then resumes.
"""
import argparse
import json
import os
import random
import resource
import shutil
import signal
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import yaml

import envs
from agent.agent import DETER_DTYPE, compile_cache_dir, resolve_compile, resolve_device, resolve_precision
from agent.checkpoint import Checkpoints, write_atomic
from agent.config import SIZES, make_config, parse_value
from agent.driver import Driver
from agent.logger import FILES as LOG_FILES
from agent.logger import Logger
from agent.provenance import collect as collect_provenance
from agent.ratio import Ratio
from agent.replay import Replay
from agent.trackers import EVENT_FILES, check_trackers, open_trackers
from envs.bsuite import episode_budget
from envs.parallel import BatchEnv

MAY_DIFFER_ON_RESUME = ("device", "compile", "threads", "parallel_envs", "log_every", "save_every", "trackers")
NO_STEP_LIMIT = 10**15  # bsuite runs until its episode budget instead
FLAGS = {"seed": "seed", "size": "size", "train_ratio": "train_ratio", "steps": "steps", "envs": "envs",
         "device": "device"}  # fmt: skip


# --- Command line ---


def build_parser() -> argparse.ArgumentParser:
    defaults = "\n".join(
        f"  {name:12s} train_ratio {info.train_ratio:<5} steps {info.steps or 'episode budget':<14} "
        f"envs {info.envs:<3} size {info.size}"
        for name, info in envs.SUITES.items()
    )
    parser = argparse.ArgumentParser(
        prog="python -m agent.train",
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


def parse_args(argv):
    """Returns (config, logdir); a bad value exits with status 2 and a message before anything runs."""
    parser = build_parser()
    args = parser.parse_args(argv)
    info = envs.SUITES[args.suite]
    values = dict(suite=args.suite, task=args.task, train_ratio=float(info.train_ratio), envs=info.envs,
                  steps=info.steps or NO_STEP_LIMIT, size=info.size)  # fmt: skip
    try:
        for flag, key in FLAGS.items():
            text = getattr(args, flag)
            if text is not None:
                values[key] = parse_value(key, text)
        for item in args.set:
            key, equals, text = item.partition("=")
            if not equals:
                raise ValueError(f"--set needs key=value, got {item!r}")
            values[key.strip()] = parse_value(key.strip(), text.strip())
        config = make_config(**values)
        resolve_device(config.device)  # e.g. cuda asked for on a machine without a GPU
        resolve_compile(config.compile)
        check_trackers(config.trackers)  # e.g. wandb chosen but not installed
    except (KeyError, ValueError) as error:
        parser.error(error.args[0] if error.args else str(error))
    if config.envs < 1 or config.steps < 1:
        parser.error("--envs and --steps must be at least 1")
    return config, args.logdir


# --- Run folder ---


def config_as_dict(config) -> dict:
    return json.loads(json.dumps(config.to_dict()))  # tuples become lists, as YAML reads them back


def check_same_config(logdir: Path, config) -> str | None:
    """An error message if logdir was made with a config that differs in a key that matters."""
    path = logdir / "config.yaml"
    if not path.exists():
        return None
    old, new = yaml.safe_load(path.read_text()), config_as_dict(config)
    keys = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
    differing = [key for key in keys if key not in MAY_DIFFER_ON_RESUME]
    if not differing:
        return None
    changes = "\n".join(f"  {key}: {old.get(key)!r} in the folder, {new.get(key)!r} now" for key in differing)
    return (f"{logdir} holds a run with a different config:\n{changes}\n"
            f"Use another --logdir for a new run, or the original values (see {path}) to resume it. "
            f"Only {', '.join(MAY_DIFFER_ON_RESUME)} may change on resume.")


def clear_run_state(logdir: Path):
    """Delete what an earlier, unfinished start of this run left behind."""
    for name in ("checkpoints", "replay"):
        shutil.rmtree(logdir / name, ignore_errors=True)
    for path in [*(logdir / name for name in LOG_FILES), *logdir.glob(EVENT_FILES)]:
        path.unlink(missing_ok=True)


def write_provenance(logdir: Path, entry: dict, resumed_from: int | None):
    path = logdir / "provenance.json"
    if resumed_from is None or not path.exists():
        provenance = {**entry, "resumes": []}
    else:
        provenance = json.loads(path.read_text())
        provenance["resumes"].append({**entry, "resumed_from_step": resumed_from})
    write_atomic(path, json.dumps(provenance, indent=2).encode())


# --- Seeds and RNG states ---


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
    """Remembers SIGTERM / SIGUSR1 (SLURM preemption, time limit) so the loop can checkpoint and exit."""

    NUMBERS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self):
        self.received = None
        self.previous = {number: signal.signal(number, self.handle) for number in self.NUMBERS}

    def handle(self, number, frame):
        self.received = number

    def restore(self):
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def main(argv=None, agent_class=None) -> int:
    """agent_class: the Agent to train (tests pass a fake); default agent.agent.Agent."""
    config, logdir = parse_args(argv)
    if agent_class is None:
        from agent.agent import Agent as agent_class
    error = check_same_config(logdir, config)
    if error:
        print(error, file=sys.stderr)
        return 2
    if (logdir / "done.json").exists():
        print(f"{logdir} is already finished: {(logdir / 'done.json').read_text().strip()}", file=sys.stderr)
        return 0
    return train(config, logdir, agent_class, argv if argv is not None else sys.argv[1:])


def train(config, logdir: Path, agent_class, argv: list[str]) -> int:
    suite = envs.SUITES[config.suite]
    started = time.monotonic()
    checkpoints = Checkpoints(logdir / "checkpoints")
    state, checkpoint_path = checkpoints.load_latest()
    if state is not None and not suite.resumable:
        print(f"{config.suite} runs cannot be resumed: the environment keeps state (e.g. bsuite's "
              f"episode accounting) that a checkpoint does not hold. Starting {logdir} again from "
              "scratch.", file=sys.stderr)  # fmt: skip
        state = None
    start_step = state["step"] if state else 0

    try:
        batch_env = BatchEnv(
            [partial(envs.make, config.suite, config.task, env_seed(config.seed, i, start_step), **config.env_args)
             for i in range(config.envs)],
            parallel=config.parallel_envs,
        )  # fmt: skip
    except ValueError as error:  # e.g. an unknown task; nothing is written yet
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:  # the suite's engine is not installed (DMLab, Minecraft outside their containers)
        print(f"error: {config.suite} cannot run here: {error}", file=sys.stderr)
        return 3
    obs_space = {key: space for key, space in batch_env.obs_space.items() if not key.startswith("log/")}
    act_space = {key: space for key, space in batch_env.act_space.items() if key != "reset"}
    per_step, replay_bytes = replay_memory_estimate(config, obs_space, act_space)
    available = available_memory()
    print(f"Replay memory: {per_step:,} bytes per step x {min(config.replay_size, config.steps):,} steps = "
          f"{replay_bytes / 1e9:.2f} GB when full ({available / 1e9:.1f} GB available)", file=sys.stderr)
    if replay_bytes > 0.9 * available:
        print(f"error: the replay would need {replay_bytes / 1e9:.1f} GB but only {available / 1e9:.1f} GB of memory "
              "are available. Lower --set replay_size=N (steps), or use a smaller --size (the stored latent is "
              "2 x deter bytes per step).", file=sys.stderr)
        batch_env.close()
        return 2
    device = resolve_device(config.device)
    seed_everything(config, device)
    if config.threads:
        torch.set_num_threads(config.threads)
    agent = agent_class(obs_space, act_space, config)
    replay = Replay(config.replay_size, config.batch_length + config.replay_context, config.replay_chunksize,
                    config.replay_online, seed=config.seed)  # fmt: skip
    ratio = Ratio.from_config(config)

    if state is None and (logdir / "config.yaml").exists():
        clear_run_state(logdir)  # left by an unfinished start without a usable checkpoint
    logdir.mkdir(parents=True, exist_ok=True)
    write_atomic(logdir / "config.yaml", yaml.safe_dump(config_as_dict(config), sort_keys=False).encode())
    precision = resolve_precision(config.precision, torch.device(device)) or torch.float32
    write_provenance(logdir, collect_provenance(device, argv, str(precision).removeprefix("torch.")),
                     start_step if state else None)
    logger = Logger(logdir, suite.repeat, config.steps, start_step,
                    trackers=open_trackers(config, logdir, start_step * suite.repeat if state else None))
    if config.compile != "off":
        logger.message(f"compile={config.compile}: the first update waits for torch.compile (compile=update: "
                       f"about 17 minutes on 2 CPU cores) unless its cache {compile_cache_dir()} already holds "
                       "this run's graphs (then about a minute). To keep them, set TORCHINDUCTOR_CACHE_DIR to a "
                       "folder that outlives the job; the workflow uses results/compile_cache.")
    step, episodes, updates, wall_before = 0, 0, 0, 0.0
    if state is not None:
        agent.load_state_dict(state["agent"])
        ratio.load_state_dict(state["ratio"])
        replay.load_state_dict(state["replay"])
        loaded = replay.load(logdir / "replay")
        restore_rng_states(state["rng"])
        logger.truncate(state["log_sizes"])
        step, episodes, updates, wall_before = state["step"], state["episodes"], state["updates"], state["wall"]
        logger.message(f"Resuming {logdir} from {checkpoint_path.name}: agent step {step:,}, "
                       f"{episodes} episodes, {loaded:,} replay steps loaded; episodes in progress restart.")

    def finish_update():
        """Write the last update's latents back and log its metrics. This runs one update late, after
        the next batch is sampled (as in the official loop), so sampling never waits for the GPU; it
        runs at fixed points only (never on a clock), so a seed still gives the same run."""
        nonlocal pending
        if pending is not None:
            stepid, outputs = pending
            metrics, latents = outputs.fetch()
            replay.update_latents(stepid, latents)
            logger.add(metrics)
            pending = None

    def save():
        replay.save(logdir / "replay")
        wall = wall_before + time.monotonic() - started
        checkpoints.save(dict(step=step, episodes=episodes, updates=updates, wall=wall, agent=agent.state_dict(),
                              ratio=ratio.state_dict(), replay=replay.state_dict(), rng=rng_states(),
                              log_sizes=logger.sizes()), step)  # fmt: skip

    def write_metrics():
        nonlocal logged_step, logged_updates
        # Measured train ratio over the interval, to compare with the configured one.
        measured = (updates - logged_updates) * replayed_per_update / max(step - logged_step, 1)
        usage = {"usage/max_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9}  # Linux: KiB
        if device.startswith("cuda"):
            usage["usage/cuda_max_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
        logger.write(step, {**replay.stats(), "train/updates": updates, "train/ratio": measured,
                            "train/ratio_setting": config.train_ratio, **usage})  # fmt: skip
        logged_step, logged_updates = step, updates

    # bsuite ends after its own episode budget (spec 6.9).
    episode_limit = episode_budget(config.task) if config.suite == "bsuite" else None
    replayed_per_update = config.batch_size * config.batch_length
    driver = Driver(batch_env, agent)
    stop = StopSignal()
    log_clock, save_clock = Clock(config.log_every), Clock(config.save_every)
    logged_step, logged_updates = step, updates
    pending = None  # (stepid (B, T), outputs) of the update whose outputs are not fetched yet
    try:
        while step < config.steps and (episode_limit is None or episodes < episode_limit):
            if stop.received is not None:
                finish_update()
                save()
                logger.message(f"Got signal {stop.received}: saved a checkpoint at agent step {step:,}; exiting "
                               "so that the job is requeued. Rerun the same command to resume.")
                return 128 + stop.received
            transition, finished = driver.step()
            for index in range(driver.size):
                step += 1
                replay.add({key: value[index] for key, value in transition.items()}, stream=index)
                for episode in finished:
                    if episode["env"] == index:
                        logger.episode(step, episode)
                        episodes += 1
                if len(replay) < config.train_fill:
                    continue
                for _ in range(ratio(step)):
                    batch = replay.sample(config.batch_size)  # on a GPU: while the last update still runs
                    stepid = batch.pop("stepid")  # (B, T+1)
                    outputs = agent.start_train(batch)
                    finish_update()
                    pending = (stepid[:, 1:], outputs)
                    updates += 1
            logger.print_progress(step)
            if log_clock():
                write_metrics()
            if save_clock():
                save()
        finish_update()
        if step > logged_step:
            write_metrics()
        save()
    finally:
        stop.restore()
        driver.close()
        logger.close()
    wall = wall_before + time.monotonic() - started
    done = {"step": step * suite.repeat, "agent_steps": step, "episodes": episodes, "wall_seconds": round(wall, 1)}
    write_atomic(logdir / "done.json", json.dumps(done).encode())
    logger.message(f"Finished {logdir}: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
