"""Train on a short real task and print the return curve against the budget, next to a random policy.

    python -m benchmarks.learn --suite bsuite --task catch/0 --steps 3000 --logdir /tmp/learn-catch \
        -- --train-ratio 64 --set batch_size=8 --set batch_length=32 --set train_fill=256

Arguments after `--` go to `python -m training.train` unchanged. The table bins scores.jsonl
into `--bins` equal step ranges and shows the mean episode score per bin; the random row is
the mean score of uniformly random actions over 100 episodes of the same task.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import envs
from training import train
from training.random_policy import random_policy_score


def curve(scores_path: Path, steps: int, bins: int) -> list[tuple[int, float, int]]:
    """(end step of the bin, mean score, episodes) per bin of the step budget."""
    lines = [json.loads(line) for line in scores_path.read_text().splitlines()]
    edges = np.linspace(0, steps, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = [line["episode/score"] for line in lines if low < line["step"] <= high]
        rows.append((int(high), float(np.mean(inside)) if inside else float("nan"), len(inside)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="bsuite")
    parser.add_argument("--task", default="catch/0")
    parser.add_argument("--steps", type=int, default=3000, help="agent steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logdir", type=Path, required=True)
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("train_args", nargs="*", help="more training.train arguments, after --")
    args = parser.parse_args()
    train_argv = ["--suite", args.suite, "--task", args.task, "--steps", str(args.steps), "--seed", str(args.seed),
                  "--logdir", str(args.logdir), *args.train_args]  # fmt: skip
    start = time.monotonic()
    status = train.main(train_argv)
    if status != 0:
        sys.exit(status)
    minutes = (time.monotonic() - start) / 60
    repeat = envs.SUITES[args.suite].repeat
    print(f"\n{args.suite} {args.task}, seed {args.seed}, {args.steps} agent steps, {minutes:.1f} min")
    print(f"random policy: {random_policy_score(args.suite, args.task, seed=args.seed):.2f}")
    print("| step | mean score | episodes |\n|---:|---:|---:|")
    for step, score, count in curve(args.logdir / "scores.jsonl", args.steps * repeat, args.bins):
        print(f"| {step} | {score:.2f} | {count} |")


if __name__ == "__main__":
    main()
