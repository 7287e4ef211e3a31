"""A worker of benchmarks/train_step.py: the official JAX update (danijar/dreamerv3 at e3f0224), one at a time.

Runs in the official code's own virtual environment and imports nothing of our project (no torch there):

    OFFICIAL_PYTHON benchmarks/official_train_step.py --official /path/to/dreamerv3 --size 1m --obs vector \
        --precision float32 --cpus 0 --batch 16 --length 64 --warmup 2

The agent is built as the official `make_agent` builds it, from its own configs.yaml (defaults, then
size1m or size12m; --jax.platform cpu, --jax.compute_dtype as asked), on the spaces of our benchmark
(`agent/tests/conftest.py`: a float32 24-vector or a 64x64x3 uint8 image, one discrete action of 6).
The batch is random, B x (T + 1) steps: T plus the official replay context of 1, like ours, with the
stored latents the context reads. One update is the jitted train step until its new parameters and
carry are ready (the official `Agent.train`, as its training loop calls it).

Threads: this XLA's CPU client ignores --xla_cpu_multi_thread_eigen=false and has no intra-op thread
setting (a 2048^2 matmul still keeps both cores of a 2-core machine busy with them), so the parent
limits it with --cpus: the process is pinned to those CPUs before JAX starts, and XLA sizes its
thread pool from the CPUs it may use.

Protocol with the parent, one JSON line each on stdout: after the warm-up {"warmup_seconds",
"precision", "jax"}; then, for each line "1" on stdin, the seconds of one update; on "0" the peak
memory in MiB (max RSS), and the worker exits. All else the official code prints goes to stderr.
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def make_spaces(obs: str):
    """The spaces of our benchmark (agent/tests/conftest.py make_spaces, discrete actions) as official Spaces."""
    import elements
    import numpy as np

    obs_space = {"image": elements.Space(np.uint8, (64, 64, 3))} if obs == "image" else {
        "vector": elements.Space(np.float32, (24,))}
    obs_space.update(reward=elements.Space(np.float32), is_first=elements.Space(bool),
                     is_last=elements.Space(bool), is_terminal=elements.Space(bool))
    return obs_space, {"action": elements.Space(np.int32, (), 0, 6)}


def make_agent(official: Path, size: str, obs: str, precision: str, batch: int, length: int, logdir: str):
    """The official agent as dreamerv3/main.py's make_agent builds it, on our benchmark's spaces."""
    import elements
    import ruamel.yaml as yaml
    from dreamerv3.agent import Agent

    configs = yaml.YAML(typ="safe").load((official / "dreamerv3" / "configs.yaml").read_text())
    config = elements.Config(configs["defaults"]).update(configs[f"size{size}"])
    config = elements.Flags(config).parse([
        "--jax.platform", "cpu", "--jax.compute_dtype", precision, "--jax.prealloc", "False",
        "--batch_size", str(batch), "--batch_length", str(length), "--logdir", logdir])
    obs_space, act_space = make_spaces(obs)
    # The profiler would trace updates 100-120; compiling happens in the warm-up, as in training.
    jax_options = dict(config.jax, profiler=False, precompile=False)
    return Agent(obs_space, act_space, elements.Config(
        **config.agent, logdir=logdir, seed=config.seed, jax=jax_options, batch_size=batch,
        batch_length=length, replay_context=config.replay_context, report_length=config.report_length,
        replica=0, replicas=1))


def random_batch(agent, batch: int, steps: int, seed: int = 0) -> dict:
    """(B, steps, ...) random values for every key the official train step reads, like ours."""
    import numpy as np

    rng = np.random.default_rng(seed)
    data = {}
    for key, space in agent.spaces.items():
        shape = (batch, steps, *space.shape)
        if key == "dyn/stoch":  # stored one-hot latents, (stoch, classes)
            data[key] = np.eye(space.shape[-1], dtype=np.float32)[rng.integers(0, space.shape[-1], shape[:-1])]
        elif space.dtype == bool:
            data[key] = rng.random(shape) < (0.02 if key == "is_first" else 0.01)
        elif key in agent.act_space:
            data[key] = rng.integers(0, space.classes, shape).astype(space.dtype)
        elif space.dtype == np.uint8:  # image, stepid
            data[key] = rng.integers(0, 256, shape, dtype=np.uint8)
        elif np.issubdtype(space.dtype, np.integer):  # consec, the replay chunk counter, unread by train
            data[key] = np.zeros(shape, space.dtype)
        else:
            scale = 0.1 if key.startswith("dyn/") else 1.0
            data[key] = (scale * rng.normal(size=shape)).astype(space.dtype)
    data["is_last"] = data["is_terminal"].copy()
    return data


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="checkout of danijar/dreamerv3")
    parser.add_argument("--size", required=True, choices=("1m", "12m", "25m", "50m", "100m", "200m", "400m"))
    parser.add_argument("--obs", required=True, choices=("vector", "image"))
    parser.add_argument("--precision", required=True, choices=("float32", "bfloat16"))
    parser.add_argument("--cpus", type=int, nargs="*", help="pin the process to these CPUs (default: all it may use)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    if not (args.official / "dreamerv3" / "agent.py").exists():
        parser.error(f"{args.official} is not a danijar/dreamerv3 checkout (no dreamerv3/agent.py)")
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the official prints (also from C) go to stderr, the protocol keeps the old stdout
    if args.cpus:
        os.sched_setaffinity(0, args.cpus)
    sys.path[:0] = [str(args.official), str(args.official / "dreamerv3")]  # as dreamerv3/main.py does
    import jax
    from embodied.jax import internal

    with tempfile.TemporaryDirectory() as logdir:
        agent = make_agent(args.official, args.size, args.obs, args.precision, args.batch, args.length, logdir)
        # On the device before timing, as the official stream (Agent.stream) puts each batch there.
        data = internal.device_put(random_batch(agent, args.batch, args.length + agent.config.replay_context),
                                   agent.train_sharded)
        carry = agent.init_train(args.batch)
        updates = 0

        def update():
            nonlocal carry, updates
            seed = agent._seeds(updates, agent.train_mirrored)  # the stream makes it outside the update too
            updates += 1
            start = time.perf_counter()
            carry, _, _ = agent.train(carry, {**data, "seed": seed})
            jax.block_until_ready((agent.params, carry))
            return time.perf_counter() - start

        warmup = sum(update() for _ in range(args.warmup))
        protocol.write(json.dumps(dict(warmup_seconds=warmup, precision=args.precision, jax=jax.__version__)) + "\n")
        for line in sys.stdin:
            if line.strip() != "1":
                break
            protocol.write(json.dumps(update()) + "\n")
        protocol.write(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024) + "\n")


if __name__ == "__main__":
    main()
