"""Seconds per training update on a synthetic replay batch (B=16, T=64+1, H=15).

    python benchmarks/train_step.py                          # size1m and size12m, vector and image, CPU
    python benchmarks/train_step.py --sizes 1m --obs vector --precision float32 bfloat16
    python benchmarks/train_step.py --device cuda --sizes 12m 200m --json benchmarks/out/cuda.json

Prints one row per set-up: median seconds per update, updates/s, replayed steps/s
(B*T per update), peak memory; and the machine's own dense matmul throughput in fp32 and
bf16, so numbers can be read as a fraction of what the hardware reaches. The machines are
noisy: compare variants in one run and read medians.
"""
import argparse
import json
import os
import pathlib
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from agent.agent import Agent  # noqa: E402
from agent.config import make_config  # noqa: E402
from agent.tests.conftest import make_spaces, random_batch  # noqa: E402


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


def bench(size, obs, act, device, precision, compile_, warmup, repeats, batch, length):
    torch.manual_seed(0)
    obs_space, act_space = make_spaces(obs, act)
    config = make_config(size, device=device, precision=precision, compile=compile_, batch_size=batch,
                         batch_length=length)
    agent = Agent(obs_space, act_space, config)
    data = random_batch(obs_space, act_space, config, batch=batch, length=length + 1)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(warmup):
        agent.train(data)
    sync(device)
    warmup_seconds = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        agent.train(data)
        sync(device)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return dict(size=size, obs=obs, act=act, device=device, precision=precision, compile=compile_,
                seconds_per_update=seconds, updates_per_second=1 / seconds,
                replayed_steps_per_second=batch * length / seconds, warmup_seconds=warmup_seconds,
                times=times, peak_memory_mb=peak_memory_mb(device))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1m", "12m"])
    parser.add_argument("--obs", nargs="+", default=["vector", "image"], choices=["vector", "image"])
    parser.add_argument("--act", default="discrete", choices=["discrete", "continuous"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", nargs="+", default=["auto"], help="auto, float32, bfloat16")
    parser.add_argument("--compile", action="store_true", help="also measure with torch.compile")
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
    rows = []
    for size in args.sizes:
        for obs in args.obs:
            for precision in args.precision:
                for compile_ in [False, True] if args.compile else [False]:
                    row = bench(size, obs, args.act, args.device, precision, compile_, args.warmup,
                                args.repeats, args.batch, args.length)
                    rows.append(row)
                    print(f"{size:>5} {obs:>6} {precision:>9} compile={compile_!s:<5} "
                          f"{row['seconds_per_update']:8.3f} s/update {row['updates_per_second']:7.2f} updates/s "
                          f"{row['replayed_steps_per_second']:9.0f} steps/s  peak {row['peak_memory_mb']:7.0f} MB "
                          f"(warm-up {row['warmup_seconds']:.1f} s)", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(machine=machine, results=rows), indent=1))


if __name__ == "__main__":
    main()
