"""Are a trained run's two-hot heads still mirror-equal in the bins that no target reaches?

The reward and critic heads start with zero output layers, and their 255 bins mirror each other
(b_{254-i} = -b_i, up to 4.85e8). Bins beyond every target only ever get the gradient p_i * feature,
the same for a bin and its mirror, so they stay exactly mirror-equal unless the arithmetic rounds a bin
and its mirror differently; and since those bins are so large, one ulp of difference moves the two-hot
mean by about 0.06 per bin pair (agent/networks.py `AddBias`). Prints, per run folder (ours: the last
checkpoint; official: its last checkpoint, read by official_functions.py in the official venv) and
head, the largest |w_i - w_{254-i}| over the output weights and bias of the bins beyond --beyond (raw
units) and how many of those bins differ at all:

    .venv/bin/python -m benchmarks.twohot_symmetry benchmarks/out/parity/catch_ratio32_symmetric/ours-* \\
        benchmarks/out/parity/catch_ratio32_head_actor/official-*

Choose --beyond above every reward and return of the task (catch: rewards +-1, so the default 10).
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from agent.distributions import twohot_bins
from benchmarks.official_crosscheck import official_name
from training.checkpoint import Checkpoints

HEADS = ("rew", "val")  # our module names of the two-hot heads; their output layer is `<head>.out`


def our_heads(run: Path) -> dict:
    """head -> (weight (K, units), bias (K,)) from our run's last checkpoint."""
    state, _ = Checkpoints(run / "checkpoints").load_latest()
    if state is None:
        sys.exit(f"{run} has neither a checkpoint in checkpoints/ (ours) nor ckpt/ (official)")
    params = state["agent"]["nets"]
    return {head: (params[f"{head}.out.weight"].numpy(), params[f"{head}.out.bias"].numpy()) for head in HEADS}


def official_heads(run: Path, official: str, python: str) -> dict:
    """The same from an official run's last checkpoint (its kernels are (units, K): transposed)."""
    worker = Path(__file__).with_name("official_functions.py")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([python, str(worker), "--official", official, "--run", str(run.resolve()), "--params",
                        f"{tmp}/params.npz"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        params = {k.replace(":", "/"): v for k, v in np.load(f"{tmp}/params.npz").items()}
    name = lambda ours: official_name(ours, {})  # noqa: E731
    return {head: (params[name(f"{head}.out.weight")].T, params[name(f"{head}.out.bias")]) for head in HEADS}


def far_asymmetry(weight: np.ndarray, bias: np.ndarray, far: np.ndarray) -> tuple[float, int]:
    """(largest |p_i - p_mirror(i)|, number of bins i that differ) over the bins i with far[i] (one side)."""
    rows = np.concatenate([weight, bias[:, None]], 1)  # (K, units + 1)
    difference = np.abs(rows - rows[::-1])[far]
    return float(difference.max()), int((difference.max(1) > 0).sum())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="run folders: ours (checkpoints/) or official (ckpt/)")
    parser.add_argument("--beyond", type=float, default=10.0, help="bins with raw value below -this (and mirrors)")
    parser.add_argument("--official", default=os.environ.get("DREAMERV3_OFFICIAL"))
    parser.add_argument("--official-python", default=os.environ.get("DREAMERV3_OFFICIAL_PYTHON"))
    args = parser.parse_args(argv)
    print(f"bin pairs beyond {args.beyond:g}: largest |w_i - w_mirror| over weights and bias, and how many "
          "pairs differ")
    for run in args.runs:
        if not run.is_dir():  # a shell pattern such as ours-* also matches the runs' .log files
            continue
        if (run / "ckpt").exists():
            if not (args.official and args.official_python):
                sys.exit("official runs need --official and --official-python (or $DREAMERV3_OFFICIAL[_PYTHON])")
            heads = official_heads(run, args.official, args.official_python)
        else:
            heads = our_heads(run)
        cells = []
        for head, (weight, bias) in heads.items():
            far = twohot_bins(len(bias)).numpy() < -args.beyond  # (K,): one side; the other is its mirror
            largest, count = far_asymmetry(weight, bias, far)
            cells.append(f"{head} {largest:.2e} ({count} of {far.sum()})")
        print(f"{run}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
