"""Seconds per training update on a synthetic replay batch (B=16, T=64+1, H=15).

    python benchmarks/train_step.py                          # size1m and size12m, vector and image, CPU
    python benchmarks/train_step.py --sizes 1m --obs vector --precision float32 bfloat16
    python benchmarks/train_step.py --sizes 1m --against HEAD  # this working tree next to the commit HEAD
    python benchmarks/train_step.py --device cuda --sizes 12m 200m --json benchmarks/out/cuda.json

Prints one row per set-up and variant: median seconds per update, updates/s, replayed
steps/s (B*T per update), peak memory, warm-up time (includes compiling); and the machine's own dense matmul
throughput in fp32 and bf16, so numbers can be read as a fraction of what the hardware reaches.

The machines are noisy, so the variants of one set-up (code version from --against,
precision, compile) each run in their own worker process and take turns update by update;
the medians are then comparable; the minimum is printed too, as the least disturbed update.
--against REV takes the `agent` package of a git revision (git archive), so before/after needs no stash.
"""
import argparse
import itertools
import json
import multiprocessing
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_gflops(device: str, dtype, size: int = 2048, repeats: int = 5) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def worker(root, setup, conn):
    """One variant in its own process: build the agent from the code under root, then one update per request."""
    sys.path.insert(0, str(root))
    from agent.agent import Agent
    from agent.config import make_config
    from agent.tests.conftest import make_spaces, random_batch

    if setup["threads"]:
        torch.set_num_threads(setup["threads"])
    torch.manual_seed(0)
    device = setup["device"]
    obs_space, act_space = make_spaces(setup["obs"], setup["act"])
    config = make_config(setup["size"], device=device, precision=setup["precision"], compile=setup["compile"],
                         batch_size=setup["batch"], batch_length=setup["length"])
    agent = Agent(obs_space, act_space, config)
    data = random_batch(obs_space, act_space, config, batch=setup["batch"], length=setup["length"] + 1)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(setup["warmup"]):
        agent.train(data)
    sync(device)
    conn.send(time.perf_counter() - start)
    while conn.recv():
        start = time.perf_counter()
        agent.train(data)
        sync(device)
        conn.send(time.perf_counter() - start)
    conn.send(peak_memory_mb(device))


def code_root(rev: str | None, tmp: str) -> pathlib.Path:
    """The repository root for the working tree (None) or a directory holding REV's agent package."""
    if rev is None:
        return ROOT
    target = pathlib.Path(tmp) / rev.replace("/", "_")
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "agent"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def bench(setup: dict, variants: list[dict], roots: dict, repeats: int) -> list[dict]:
    """Start one worker per variant, warm all up, then alternate single updates between them."""
    context = multiprocessing.get_context("spawn")
    # Idle workers must not spin their OpenMP threads while another one measures.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    workers = []
    for variant in variants:
        parent, child = context.Pipe()
        process = context.Process(target=worker, args=(roots[variant["code"]], {**setup, **variant}, child))
        process.start()
        workers.append((parent, process))
    warmups = [parent.recv() for parent, _ in workers]
    times = [[] for _ in workers]
    for _ in range(repeats):
        for (parent, _), own in zip(workers, times):
            parent.send(True)
            own.append(parent.recv())
    rows = []
    for variant, (parent, process), own, warmup in zip(variants, workers, times, warmups):
        parent.send(False)
        peak = parent.recv()
        process.join()
        seconds = statistics.median(own)
        steps = setup["batch"] * setup["length"]
        rows.append(dict(**setup, **variant, seconds_per_update=seconds, min_seconds=min(own),
                         updates_per_second=1 / seconds,
                         replayed_steps_per_second=steps / seconds, warmup_seconds=warmup, times=own,
                         peak_memory_mb=peak))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1m", "12m"])
    parser.add_argument("--obs", nargs="+", default=["vector", "image"], choices=["vector", "image"])
    parser.add_argument("--act", default="discrete", choices=["discrete", "continuous"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", nargs="+", default=["auto"], help="auto, float32, bfloat16")
    parser.add_argument("--compile", action="store_true", help="also measure with config.compile")
    parser.add_argument("--against", nargs="*", default=[], metavar="REV",
                        help="also measure the agent package of these git revisions (e.g. HEAD)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    machine = dict(torch=torch.__version__, threads=torch.get_num_threads(), cpus=os.cpu_count(),
                   device=torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
                   matmul_gflops_fp32=matmul_gflops(args.device, torch.float32),
                   matmul_gflops_bf16=matmul_gflops(args.device, torch.bfloat16))
    print(f"# {machine}", flush=True)
    codes = [*args.against, "worktree"]
    variants = [dict(code=code, precision=precision, compile=compile_) for code, precision, compile_ in
                itertools.product(codes, args.precision, [False, True] if args.compile else [False])]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        roots = {code: code_root(None if code == "worktree" else code, tmp) for code in codes}
        for size, obs in itertools.product(args.sizes, args.obs):
            setup = dict(size=size, obs=obs, act=args.act, device=args.device, batch=args.batch, length=args.length,
                         threads=args.threads, warmup=args.warmup)
            for row in bench(setup, variants, roots, args.repeats):
                rows.append(row)
                print(f"{size:>5} {obs:>6} {row['code']:>10} {row['precision']:>9} compile={row['compile']!s:<5} "
                      f"{row['seconds_per_update']:8.3f} s/update (min {row['min_seconds']:.3f}) "
                      f"{row['updates_per_second']:7.2f} updates/s "
                      f"{row['replayed_steps_per_second']:9.0f} steps/s  peak {row['peak_memory_mb']:7.0f} MB "
                      f"(warm-up {row['warmup_seconds']:.1f} s)", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(machine=machine, results=rows), indent=1))


if __name__ == "__main__":
    main()
