"""Hardware choices of a run: the torch device and the compute precision, resolved here from what the
machine offers ("auto"), and where torch.compile keeps its graphs. The Agent resolves its device and
precision through these functions, so the algorithm files themselves hold no machine policy.
"""
import functools
import os
import time

import torch
from torch.nn import functional as F


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but torch sees no CUDA GPU; use --device cpu")
    return device


def compile_cache_dir() -> str:
    """Where torch.compile keeps compiled graphs for later processes: TORCHINDUCTOR_CACHE_DIR, else torch's
    default under /tmp (per machine; on clusters often per job). A run whose graphs are there compiles in
    about a minute instead of a quarter of an hour (compile=update, 2-core CPU; benchmarks/PERF_NOTES.md)."""
    try:
        from torch._inductor.runtime.cache_dir_utils import cache_dir  # private: fall back if it moves
    except ImportError:
        return os.environ.get("TORCHINDUCTOR_CACHE_DIR", "torch's default cache folder")
    return cache_dir()


# Updates from which compile=auto compiles the update: the cold compile (about 17 minutes on 2 CPU cores)
# is repaid after ~3,000-4,000 updates at 1m vector (0.25-0.36 s saved per update), sooner at 12m
# (0.9 s); 10,000 leaves a margin and keeps every short run (tests, the default job) eager.
COMPILE_PAYS_OFF_UPDATES = 10_000


def resolve_compile(compile: str, device: str, updates: float, obs_space: dict) -> tuple[str, str]:
    """(compile mode, why) for a run of `updates` updates. auto compiles the whole update where that has
    been measured to win (benchmarks/PERF_NOTES.md): on CPU, vector observations, long runs. Image
    models and CUDA (CUDA graphs) stay eager under auto until they are measured; set compile=update
    to use them."""
    if compile != "auto":
        return compile, "set"
    images = any(len(space.shape) == 3 for space in obs_space.values())
    if device != "cpu":
        return "off", f"auto: compile=update is not yet measured on {device}"
    if images:
        return "off", "auto: compile=update is not yet measured for image observations"
    if updates < COMPILE_PAYS_OFF_UPDATES:
        return "off", f"auto: {updates:,.0f} updates do not repay the compile (from {COMPILE_PAYS_OFF_UPDATES:,})"
    return "update", f"auto: {updates:,.0f} updates repay the compile (from {COMPILE_PAYS_OFF_UPDATES:,})"


def resolve_precision(precision: str, device: torch.device):
    """None for float32, else the autocast dtype. auto: bfloat16 compute as the official code (spec 1)
    on CUDA, and on CPUs where bfloat16 matmuls measurably beat float32 (cpu_bfloat16_pays_off);
    else float32."""
    if precision == "auto":
        fast = device.type == "cuda" or (device.type == "cpu" and cpu_bfloat16_pays_off())
        precision = "bfloat16" if fast else "float32"
    if precision == "float32":
        return None
    assert precision == "bfloat16", precision  # config.validate allows no other value
    return torch.bfloat16


def cpu_has_bfloat16() -> bool:
    """Whether this CPU has native bfloat16 matrix instructions (AVX-512 BF16 or AMX)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private torch.cpu API: look up safely
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


@functools.cache
def cpu_bfloat16_pays_off(speedup: float = 1.25) -> bool:
    """Whether a (1024, 512) x (512, 512) bfloat16 matmul runs `speedup` times faster than float32 here
    (about 50 ms, once per process). The CPU flags alone are no guide: on 2-core machines with
    AVX-512 BF16, bfloat16 made updates 1.2-2.2x faster on an AMD EPYC but 1.3-1.6x slower on an
    Intel Xeon without AMX (benchmarks/PERF_NOTES.md)."""
    if not cpu_has_bfloat16():  # without native kernels bf16 is emulated, many times slower
        return False
    return best_linear_seconds(torch.float32) >= speedup * best_linear_seconds(torch.bfloat16)


def best_linear_seconds(dtype, rows: int = 1024, width: int = 512, repeats: int = 10) -> float:
    """The fastest of `repeats` (rows, width) x (width, width) products: the least disturbed one."""
    generator = torch.Generator().manual_seed(0)  # leaves the global RNG (and so the run) untouched
    inputs = torch.randn(rows, width, generator=generator).to(dtype)
    weight = torch.randn(width, width, generator=generator).to(dtype)
    F.linear(inputs, weight)  # first call: allocations and kernel choice
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        F.linear(inputs, weight)
        times.append(time.perf_counter() - start)
    return min(times)
