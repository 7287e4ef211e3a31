"""Print the per-module parameter counts of a size preset for an observation and action space.

    python -m agent.params --size 12m --obs image:64x64x3 --act discrete:17
    python -m agent.params --size 1m --obs vector:24 --act continuous:6 --json

Counts are exact and need no memory: the networks are built on PyTorch's meta device.
"""
import argparse
import json
import re

import numpy as np
import torch

from agent.agent import make_networks, parameter_counts
from agent.config import SIZES, make_config
from spaces import Space

# Named set-ups of the spec's table 2.7.
SETUPS = {
    "atari": ("image:96x96x1", "discrete:18"),
    "crafter": ("image:64x64x3", "discrete:17"),
    "dmc_vision": ("image:64x64x3", "continuous:6"),
    "dmc_proprio": ("vector:24", "continuous:6"),
}


def parse_obs(text: str) -> dict[str, Space]:
    """'image:64x64x3' or 'vector:24', several separated by commas."""
    spaces = {}
    for part in text.split(","):
        match = re.fullmatch(r"(image|vector):(\d+(?:x\d+)*)", part.strip())
        if not match:
            raise ValueError(f"cannot read observation {part!r}: use image:HxWxC or vector:N")
        kind, dims = match.group(1), tuple(int(d) for d in match.group(2).split("x"))
        if kind == "image" and len(dims) != 3:
            raise ValueError(f"an image needs HxWxC, got {part!r}")
        name = kind if kind not in spaces else f"{kind}{len(spaces)}"
        spaces[name] = Space(np.uint8, dims) if kind == "image" else Space(np.float32, dims)
    return spaces


def parse_act(text: str) -> dict[str, Space]:
    match = re.fullmatch(r"(discrete|continuous):(\d+)", text.strip())
    if not match:
        raise ValueError(f"cannot read action {text!r}: use discrete:N or continuous:N")
    n = int(match.group(2))
    if match.group(1) == "discrete":
        return {"action": Space(np.int32, (), 0, n)}
    return {"action": Space(np.float32, (n,), -1.0, 1.0)}


def counts_for_spaces(obs_space: dict[str, Space], act_space: dict[str, Space], config) -> dict[str, int]:
    """Per-module counts and `total` of the networks `config` builds for these spaces, on the meta device."""
    with torch.device("meta"):
        return parameter_counts(make_networks(obs_space, act_space, config))


def count(size: str, obs: str, act: str) -> dict:
    counts = counts_for_spaces(parse_obs(obs), parse_act(act), make_config(size, device="cpu"))
    return {"total": counts.pop("total"), "modules": counts}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="12m", help=f"preset: {', '.join(SIZES)}")
    parser.add_argument("--setup", choices=sorted(SETUPS), help="a named set-up instead of --obs/--act")
    parser.add_argument("--obs", default="image:64x64x3", help="image:HxWxC and/or vector:N, comma separated")
    parser.add_argument("--act", default="discrete:17", help="discrete:N or continuous:N")
    parser.add_argument("--json", action="store_true", help='print {"total": N, "modules": {...}}')
    args = parser.parse_args(argv)
    obs, act = SETUPS[args.setup] if args.setup else (args.obs, args.act)
    try:
        result = count(args.size, obs, act)
    except ValueError as error:
        parser.error(str(error))
    if args.json:
        print(json.dumps(result))
        return
    print(f"size {args.size}, observations {obs}, actions {act}")
    print(f"{'module':<10}{'parameters':>16}")
    for name, value in result["modules"].items():
        note = "  (EMA copy, not trained)" if name == "slowval" else ""
        print(f"{name:<10}{value:>16,}{note}")
    print(f"{'total':<10}{result['total']:>16,}")


if __name__ == "__main__":
    main()
