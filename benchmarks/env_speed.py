"""Env steps per second with random actions, single process, for the suites that run here.

    .venv/bin/python -m benchmarks.env_speed [--seconds 5] [--suite NAME ...]   (from the repository root)

Counts agent steps (one `step` call) and env steps (agent steps x the suite's action repeat),
resets included, and prints a Markdown table.
"""
import argparse
import time

import numpy as np

import envs

CASES = [
    ("atari100k", "pong", {}),
    ("atari200m", "pong", {}),
    ("dmc_proprio", "walker_walk", {}),
    ("dmc_vision", "walker_walk", {}),
    ("bsuite", "catch/0", {}),
    ("crafter", "reward", {}),
    ("procgen", "coinrun", {}),
    ("gym", "CartPole-v1", {}),
]


def measure(suite, task, overrides, seconds):
    env = envs.make(suite, task, **overrides)
    rng = np.random.default_rng(0)
    spaces = {key: space for key, space in env.act_space.items() if key != "reset"}
    obs = env.step({**{key: space.sample(rng) for key, space in spaces.items()}, "reset": True})
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        action = {key: space.sample(rng) for key, space in spaces.items()}
        obs = env.step({**action, "reset": bool(obs["is_last"])})
        steps += 1
    env.close()
    return steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0, help="time per suite")
    parser.add_argument("--suite", nargs="+", help="only these suites (default: all of the table)")
    args = parser.parse_args()
    print("| suite | task | agent steps/s | env steps/s (x repeat) |")
    print("|---|---|---|---|")
    for suite, task, overrides in CASES:
        if args.suite and suite not in args.suite:
            continue
        rate = measure(suite, task, overrides, args.seconds)
        repeat = envs.SUITES[suite].repeat
        print(f"| {suite} | {task} | {rate:,.0f} | {rate * repeat:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
