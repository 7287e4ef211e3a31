"""A random-policy baseline as a run folder: `python -m training.random_policy --suite gym --task CartPole-v1
--seed 0 --steps 3000 --logdir DIR`.

Uniformly random actions (each action key sampled from its space) through the training loop's own parts:
the same env adapters and env seeds (training.train.make_envs), driver, step and episode counters and
logger, with the same stopping rule (the agent-step budget, or a suite's episode budget). So its
scores.jsonl has training.train's schema (step = agent steps x repeat, counting reset steps;
episode/score, episode/length, the adapter's `log/` values) and its x axis lines up with a training
run's. config.yaml names `method: random` (and has no model size or train ratio); the workflow's
aggregation reads the folder like any run and shows it as its own method (pipelines/runs.py).

A start in a folder of an unfinished random run plays again from the start (the same seeded episodes);
a finished one (done.json) exits at once; a folder of another run is refused. Exit codes as
training.train's: 0 done, 2 bad arguments or a folder of another run, 3 the suite's engine is not
installed here, 130 on Ctrl-C.
"""
import argparse
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import envs
from training.driver import Driver
from training.logger import Logger
from training.provenance import collect as collect_provenance
from training.run_folder import RunFolder
from training.train import (
    Clock,
    Counters,
    agent_spaces,
    episode_budget,
    make_envs,
    run_in_folder,
    suite_config,
)

METHOD = "random"
FLAGS = ("seed", "steps", "envs")
PROGRESS_SECONDS = 30  # a progress line this often: runs take seconds to minutes


class RandomPolicy:
    """The driver's agent interface (init_policy, policy) with uniformly random actions."""

    def __init__(self, act_space: dict, seed: int):
        self.act_space = act_space  # without `reset`
        self.rng = np.random.default_rng(seed)

    def init_policy(self, size: int):
        return None

    def policy(self, carry, obs: dict):
        size = len(obs["is_first"])
        actions = {key: np.stack([space.sample(self.rng) for _ in range(size)])  # (N, *shape)
                   for key, space in self.act_space.items()}  # fmt: skip
        return carry, actions, {}


def play(batch_env, config, episode_limit: float, on_episode) -> Counters:
    """Steps the envs (training.train.make_envs(config, 0)) with random actions until config.steps agent
    steps or `episode_limit` episodes, as training.train's loop does; on_episode(agent step, episode) per
    episode. Closes the envs."""
    counters = Counters()
    driver = Driver(batch_env, RandomPolicy(agent_spaces(batch_env)[1], config.seed))
    driver.on_step(counters.count_step)
    driver.on_episode(lambda episode, index: on_episode(counters.step, episode))
    driver.on_episode(counters.count_episode)
    try:
        while counters.step < config.steps and counters.episodes < episode_limit:
            driver.step()
    finally:
        driver.close()
    return counters


def random_policy_score(suite: str, task: str, episodes: int = 100, seed: int = 0) -> float:
    """Mean return of `episodes` random-policy episodes of the task at the suite's official settings."""
    config = suite_config(suite, task, {"seed": str(seed), "envs": "1", "steps": str(envs.NO_STEP_LIMIT)}, [])
    scores = []
    play(make_envs(config, 0), config, episodes, lambda step, episode: scores.append(episode["episode/score"]))
    return float(np.mean(scores))


@dataclass
class RandomRun:
    """What config.yaml of a random run holds: which run it is, and what changes its episodes."""
    suite: str
    task: str
    seed: int
    steps: int
    envs: int
    repeat: int
    env_args: dict = field(default_factory=dict)
    method: str = METHOD

    def to_dict(self) -> dict:
        return asdict(self)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.random_policy",
        description="Play uniformly random actions on one task and write a run folder that the workflow "
                    "aggregates beside training runs (method `random`).",
        epilog="Budgets, envs and action repeat default to the suite's, as for python -m training.train; "
               "--set takes the same keys (of which env_args, repeat and parallel_envs change what is played).")
    parser.add_argument("--suite", required=True, choices=sorted(envs.SUITES), help="benchmark suite")
    parser.add_argument("--task", required=True, help="task of the suite, e.g. pong, walker_walk, CartPole-v1")
    parser.add_argument("--logdir", required=True, type=Path, help="run folder")
    parser.add_argument("--seed", default="0", help="seed of the envs and the action sampling (default 0)")
    parser.add_argument("--steps", help="agent-step budget, counted as training.train counts it (default: suite's)")
    parser.add_argument("--envs", help="environments stepped together (default: suite's)")
    parser.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="any training config value, e.g. --set 'env_args={length: 100}' repeat=2")
    return parser


def parse_args(argv):
    """Returns (config, logdir); a bad value exits with status 2 and a message before anything runs."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = suite_config(args.suite, args.task, {key: getattr(args, key) for key in FLAGS}, args.set)
    except (KeyError, ValueError) as error:  # one line, as training.train: the value, not the syntax, is wrong
        parser.exit(2, f"error: {error.args[0] if error.args else error}\n")
    return config, args.logdir


def main(argv=None) -> int:
    config, logdir = parse_args(argv)
    run = RandomRun(suite=config.suite, task=config.task, seed=config.seed, steps=config.steps, envs=config.envs,
                    repeat=config.repeat, env_args=dict(config.env_args))  # fmt: skip
    folder = RunFolder(logdir, run)
    argv = argv if argv is not None else sys.argv[1:]
    return run_in_folder(folder, lambda: write_run(config, folder, argv),
                         "Interrupted; rerun the same command to play the run again.")


def write_run(config, folder: RunFolder, argv: list[str]) -> int:
    batch_env = make_envs(config, 0)  # first: an unknown task or a missing engine leaves nothing written
    # Nothing to resume: a new start plays the same seeded episodes again, so the old lines go.
    (folder.path / "scores.jsonl").unlink(missing_ok=True)
    folder.start(resumed=True)  # writes config.yaml
    folder.write_provenance(collect_provenance("cpu", argv, "none (random actions)"), None)
    logger = Logger(folder.path, config.repeat, config.steps)
    progress = Clock(PROGRESS_SECONDS)

    def on_episode(step: int, episode: dict):
        logger.episode(step, episode)
        if progress():
            logger.print_progress(step, force=True)

    counters = play(batch_env, config, episode_budget(config), on_episode)
    done = {"step": counters.step * config.repeat, "agent_steps": counters.step, "episodes": counters.episodes,
            "wall_seconds": round(counters.wall(), 1)}
    folder.write_done(done)
    logger.message(f"Finished {folder.path}: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
