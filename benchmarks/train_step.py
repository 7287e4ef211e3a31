"""Seconds per training update on a synthetic replay batch (B=16, T=64+1, H=15), peak memory, matmul throughput.

    python benchmarks/train_step.py                          # size1m and size12m, vector and image, CPU
    python benchmarks/train_step.py --sizes 1m --obs vector --precision float32 bfloat16
    python benchmarks/train_step.py --sizes 1m --against HEAD  # this working tree next to the commit HEAD
    python benchmarks/train_step.py --sizes 1m 12m 50m 200m --json out/cpu.json --markdown out/cpu.md
    python benchmarks/train_step.py --device cuda --sizes 12m 200m --json benchmarks/out/cuda.json
    python benchmarks/train_step.py --sizes 1m --obs vector --repeats 1 --warmup 1 --threads 1  # a quick check
    python benchmarks/train_step.py --sizes 1m 12m --precision float32 --threads 1 --repeats 3 --warmup 1 \
        --official ~/dreamerv3 --official-python ~/dreamerv3-venv/bin/python  # the official JAX update alongside
    python benchmarks/train_step.py --merge a.json b.json --markdown all.md  # one table from runs one after another

Prints one row per set-up and variant: median seconds per update, updates/s, replayed
steps/s (B*T per update), peak memory in MiB (max RSS of the worker on CPU,
torch.cuda.max_memory_allocated on CUDA), its estimate, warm-up time (includes compiling);
then the same as a Markdown table (also written to --markdown) under a header line with the
machine: CPU model or GPU, threads, torch version and its own dense matmul throughput in fp32
and bf16, so numbers can be read as a fraction of what the hardware reaches.

The machines are noisy, so the variants of one set-up (code version from --against,
precision, compile) each run in their own worker process and take turns update by update;
the medians are then comparable; the minimum is printed too, as the least disturbed update.
--against REV takes the `agent` package of a git revision (git archive), so before/after needs no stash.

--official DIR (a danijar/dreamerv3 checkout, e3f0224) with --official-python (the python of its JAX
venv, default $DREAMERV3_OFFICIAL_PYTHON) adds the official JAX update as one more worker per
precision (benchmarks/official_train_step.py, auto = its default bfloat16): the same batch shape,
spaces and threads, taking its turn update by update with ours. XLA's CPU client can only be held
to N threads by pinning, so with --threads N below the usable CPUs every worker, ours too, is pinned
to the same N CPUs. A second table then gives, per set-up, the medians of both codes in float32 and
bfloat16 and the ratios official / ours. On a machine busy with other work, use --threads 1: with as
many threads as cores, ours' OpenMP threads wait for each other whenever one is descheduled (1m vector
18-32 s/update instead of 3-4 s with one thread, on a 2-core machine at load 6), XLA's much less so.

Memory: each set-up's peak is estimated before it starts (memory_estimate_mib; the worktree's
networks, also for --against revisions). A set-up whose estimate times its number of workers
exceeds 90 % of the available memory (MemAvailable; on CUDA the free GPU memory) is skipped
with a line saying so, and kept in the results as skipped, so any list of --sizes runs anywhere.

Matmul: n x n products with n = 256, 512, ... up to 4096, growing while one product takes
under 0.1 s; the GFLOP/s at the largest n reached is reported, with that n (a CPU without
bf16 kernels would take minutes for one bf16 product at a fixed large n).
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
# The memory estimate's coefficients, fitted (least squares on relative error) to the peak RSS of
# workers on CPU, float32, one thread, --repeats 1 --warmup 1; measured -> estimated MiB:
#   B=16 T=64:  1m vector 786 -> 820, 1m image 1871 -> 1813, 12m vector 1935 -> 1973, 12m image 5619 -> 5961
#   B=8 T=32:   1m vector 492 -> 518, 1m image 864 -> 767, 12m vector 868 -> 991, 12m image 1836 -> 2003
#   B=4 T=16:   50m vector 1522 -> 1601, 200m vector 4757 -> 4864
# Checked after the fit: 50m vector, B=16 T=64: 3648 -> 3963; with LaProp's in-place step (one temporary,
# not three): 50m vector 3597 -> 3668, 200m vector 7963 -> 8320.
# CUDA's max_memory_allocated has no process base and bfloat16 keeps smaller activations, so
# the estimate errs high there.
CPU_BASE_MIB = 400  # a worker before its agent: python, torch, the agent package, the batch
PARAM_TEMPORARIES = 1.0  # LaProp.step's denominators (it scales the gradients in place)
STATE_COPIES = 6.3  # float32 values kept per latent state (replayed or imagined) and unit of width
IMAGE_COPIES = 15.5  # float32 values kept per replayed frame, pixel and unit of CNN depth


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_gflops(device: str, dtype, budget: float = 0.1, largest: int = 4096, repeats: int = 3):
    """(GFLOP/s, n) of an n x n product, n doubling from 256 while one product takes under `budget` s."""
    size = 256
    while True:
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
        seconds = statistics.median(times)
        if seconds >= budget or size >= largest:
            return 2 * size**3 / seconds / 1e9, size
        size *= 2


def machine_info(device: str) -> dict:
    """What the numbers were measured on, with its fp32 and bf16 matmul throughput."""
    from training.provenance import cpu_model

    fp32, n_fp32 = matmul_gflops(device, torch.float32)
    bf16, n_bf16 = matmul_gflops(device, torch.bfloat16)
    return dict(torch=torch.__version__, threads=torch.get_num_threads(), cpus=os.cpu_count(), cpu=cpu_model(),
                load_average=os.getloadavg(),  # the other work on a shared machine, over 1, 5 and 15 min
                device=torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
                matmul_gflops_fp32=fp32, matmul_n_fp32=n_fp32, matmul_gflops_bf16=bf16, matmul_n_bf16=n_bf16)


def peak_memory_mib(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def memory_estimate_mib(setup: dict) -> float:
    """Peak memory of one worker: the model's float32 state plus activations proportional to the
    B*T replayed steps and the B*T*H imagined ones (N = B*T starts), plus the CPU process base."""
    # Imported here, not at the top: a worker for --against REV must import REV's agent package.
    from agent.agent import make_networks, parameter_counts
    from agent.config import make_config
    from agent.tests.conftest import make_spaces

    config = make_config(setup["size"], batch_size=setup["batch"], batch_length=setup["length"])
    obs_space, act_space = make_spaces(setup["obs"], setup["act"])
    with torch.device("meta"):  # counts without allocating
        counts = parameter_counts(make_networks(obs_space, act_space, config))
    # Parameters, gradients and LaProp's two moments of the trained networks, their temporaries,
    # and the slow critic.
    model = 4 * ((4 + PARAM_TEMPORARIES) * counts["total"] + counts["slowval"])
    replayed = setup["batch"] * setup["length"]
    states = replayed * (1 + config.imag_length)
    width = config.deter + config.hidden + config.stoch * config.classes + config.units + config.bins
    pixels = sum(space.shape[0] * space.shape[1] for space in obs_space.values() if len(space.shape) == 3)
    activations = 4 * (STATE_COPIES * states * width + IMAGE_COPIES * replayed * pixels * config.depth)
    base = 0 if setup["device"].startswith("cuda") else CPU_BASE_MIB
    return base + (model + activations) / 2**20


def available_bytes(device: str) -> int:
    if device.startswith("cuda"):
        return torch.cuda.mem_get_info(torch.device(device))[0]
    from training.train import available_memory

    return available_memory()


def memory_check(estimate_mib: float, workers: int, available: int) -> str | None:
    """Why a set-up is skipped, or None: its workers together must fit in 90 % of `available` bytes."""
    need = estimate_mib * workers
    if need * 2**20 <= 0.9 * available:
        return None
    return (f"estimated {need:,.0f} MiB ({workers} worker(s) x {estimate_mib:,.0f} MiB) is more than 90 % "
            f"of the {available / 2**20:,.0f} MiB available")


def pinned_cpus(threads: int | None) -> list[int] | None:
    """The CPUs all workers share when the official update runs with fewer threads than usable CPUs.
    XLA's CPU client can only be limited by pinning; ours is pinned to the same CPUs, so that each
    worker meets the same other load in its turn (an unpinned one could move to a quieter core)."""
    usable = sorted(os.sched_getaffinity(0))
    return usable[:threads] if threads and threads < len(usable) else None


def official_info(checkout: pathlib.Path | None, python: str | None) -> dict:
    """The official checkout, its commit, its venv's python and JAX version; ValueError saying what is wrong."""
    if not checkout or not (pathlib.Path(checkout) / "dreamerv3" / "agent.py").exists():
        raise ValueError(f"--official must name a danijar/dreamerv3 checkout (no dreamerv3/agent.py in {checkout})")
    if not python or not pathlib.Path(python).exists():
        raise ValueError("--official-python (or $DREAMERV3_OFFICIAL_PYTHON) must name the python of the official "
                         f"code's JAX venv (README: Paired runs against the official code); got {python}")
    check = subprocess.run([python, "-c", "import jax, elements, ninjax; print(jax.__version__)"],
                           capture_output=True, text=True, cwd=checkout)
    if check.returncode:
        last = (check.stderr.strip().splitlines() or ["no output"])[-1]
        raise ValueError(f"{python} cannot import the official code's packages (jax, elements, ninjax): {last}")
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return dict(checkout=str(checkout), python=str(python), commit=commit or "unknown", jax=check.stdout.strip())


class OfficialWorker:
    """The official JAX update in its own venv (benchmarks/official_train_step.py), spoken to like our
    workers' pipe: send(True) runs one update, send(False) asks for the peak memory; recv() the answer."""

    def __init__(self, python: str, official: pathlib.Path, setup: dict, log: pathlib.Path):
        command = [python, str(pathlib.Path(__file__).with_name("official_train_step.py")), "--official",
                   str(official), "--size", setup["size"], "--obs", setup["obs"], "--precision", setup["precision"],
                   "--batch", str(setup["batch"]), "--length", str(setup["length"]), "--warmup", str(setup["warmup"])]
        if setup.get("cpus"):
            command += ["--cpus", *map(str, setup["cpus"])]
        assert setup["act"] == "discrete" and setup["device"] == "cpu", "the official worker runs discrete, on CPU"
        self.log = log
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=log.open("w"), text=True, bufsize=1)

    def send(self, update: bool):
        self.process.stdin.write("1\n" if update else "0\n")

    def recv(self):
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            tail = "\n".join(self.log.read_text().splitlines()[-15:])
            raise RuntimeError(f"the official worker exited ({self.process.returncode}); its log {self.log} ends:\n"
                               f"{tail}")
        return json.loads(line)

    def join(self):
        self.process.stdin.close()
        self.process.wait()


def worker(root, setup, conn):
    """One variant in its own process: build the agent from the code under root, then one update per request."""
    sys.path.insert(0, str(root))
    from agent.agent import Agent
    from agent.config import Config, make_config
    from agent.tests.conftest import make_spaces, random_batch

    try:  # the training process's malloc setting; revisions before training/ set it inside Agent
        from training.host import keep_freed_memory
    except ImportError:
        pass
    else:
        keep_freed_memory()
    if setup.get("cpus"):
        os.sched_setaffinity(0, setup["cpus"])
    if setup["threads"]:
        torch.set_num_threads(setup["threads"])
    torch.manual_seed(0)
    device = setup["device"]
    obs_space, act_space = make_spaces(setup["obs"], setup["act"])
    compile_mode = setup["compile"]
    if isinstance(Config().compile, bool):  # revisions before compile modes: a bool for compile=steps
        assert compile_mode in ("off", "steps"), f"this revision has no compile={compile_mode}"
        compile_mode = compile_mode == "steps"
    config = make_config(setup["size"], device=device, precision=setup["precision"], compile=compile_mode,
                         batch_size=setup["batch"], batch_length=setup["length"])
    agent = Agent(obs_space, act_space, config)
    data = random_batch(obs_space, act_space, config, batch=setup["batch"], length=setup["length"] + 1)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(setup["warmup"]):
        agent.train(data)
    sync(device)
    dtype = getattr(agent, "autocast_dtype", None) or torch.float32  # what "auto" resolved to
    conn.send(dict(warmup_seconds=time.perf_counter() - start, precision=str(dtype).removeprefix("torch.")))
    while conn.recv():
        start = time.perf_counter()
        agent.train(data)
        sync(device)
        conn.send(time.perf_counter() - start)
    conn.send(peak_memory_mib(device))


def code_root(rev: str | None, tmp: str) -> pathlib.Path:
    """The repository root for the working tree (None) or a directory holding REV's agent package."""
    if rev is None:
        return ROOT
    target = pathlib.Path(tmp) / rev.replace("/", "_")
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "agent"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def bench(setup: dict, variants: list[dict], roots: dict, repeats: int, official: dict | None = None,
          logs: pathlib.Path | None = None) -> list[dict]:
    """Start one worker per variant, warm all up, then alternate single updates between them.
    official: dict(checkout=..., python=...) for the variants with code "official"; logs: their stderr folder."""
    context = multiprocessing.get_context("spawn")
    # No OMP_WAIT_POLICY=PASSIVE here: it doubles the 1m update time (OpenMP threads sleep between
    # the many small ops) and training does not set it. An idle worker waits in recv(), where its
    # OpenMP threads spin only briefly before they sleep.
    workers = []
    for variant in variants:
        if variant["code"] == "official":
            log = logs / f"official_{setup['size']}_{setup['obs']}_{variant['precision']}.log"
            process = OfficialWorker(official["python"], official["checkout"], {**setup, **variant}, log)
            workers.append((process, process))
            continue
        parent, child = context.Pipe()
        process = context.Process(target=worker, args=(roots[variant["code"]], {**setup, **variant}, child))
        process.start()
        workers.append((parent, process))
    starts = [parent.recv() for parent, _ in workers]
    warmups, dtypes = [start["warmup_seconds"] for start in starts], [start["precision"] for start in starts]
    times = [[] for _ in workers]
    for _ in range(repeats):
        for (parent, _), own in zip(workers, times):
            parent.send(True)
            own.append(parent.recv())
    rows = []
    for variant, (parent, process), own, warmup, dtype in zip(variants, workers, times, warmups, dtypes):
        parent.send(False)
        peak = parent.recv()
        process.join()
        seconds = statistics.median(own)
        steps = setup["batch"] * setup["length"]
        variant = {**variant, "precision": dtype if variant["precision"] == "auto" else variant["precision"]}
        rows.append(dict(**setup, **variant, seconds_per_update=seconds, min_seconds=min(own),
                         updates_per_second=1 / seconds,
                         replayed_steps_per_second=steps / seconds, warmup_seconds=warmup, times=own,
                         peak_memory_mib=peak))
    return rows


def markdown_table(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def machine_line(machine: dict) -> str:
    device = machine["cpu"] if machine["device"] == "cpu" else machine["device"]
    return (f"Machine: {device}, {machine['cpus']} CPUs, torch {machine['torch']}, threads {machine['threads']}; "
            f"matmul {machine['matmul_gflops_fp32']:,.0f} GFLOP/s fp32 "
            f"(n={machine['matmul_n_fp32']}), {machine['matmul_gflops_bf16']:,.0f} GFLOP/s bf16 "
            f"(n={machine['matmul_n_bf16']})" + (
                "; load average at start {:.1f} / {:.1f} / {:.1f} (1 / 5 / 15 min)".format(*machine["load_average"])
                if machine.get("load_average") else ""))


PRECISIONS = ("float32", "bfloat16")


def vs_official(rows: list[dict]) -> dict:
    """Per set-up ("1m vector"): the median s/update of the official code and ours (the worktree) in each
    precision, and the ratios official / ours per precision and of the best of each."""
    table = {}
    for row in rows:
        if row.get("skipped") or row["code"] not in ("official", "worktree"):
            continue
        name = "official" if row["code"] == "official" else "ours"
        if name == "ours" and row["compile"] != "off":
            name += f" compile={row['compile']}"
        table.setdefault(f"{row['size']} {row['obs']}", {})[f"{name}, {row['precision']}"] = row["seconds_per_update"]
    for column in table.values():
        medians = dict(column)
        for precision in PRECISIONS:
            official, ours = medians.get(f"official, {precision}"), medians.get(f"ours, {precision}")
            if official and ours:
                column[f"official / ours, {precision}"] = official / ours
        official = [seconds for name, seconds in medians.items() if name.startswith("official")]
        ours = [seconds for name, seconds in medians.items() if name.startswith("ours")]
        if official and ours:
            column["official (best) / ours (best)"] = min(official) / min(ours)
    return table


def vs_official_markdown(machine: dict, official: dict, rows: list[dict]) -> str:
    """Set-ups as columns; the medians of both codes, then the ratios, as rows."""
    table = vs_official(rows)
    names = list(dict.fromkeys(name for column in table.values() for name in column))
    names.sort(key=lambda name: (" / " in name, "(best)" in name, not name.startswith("official"),
                                 name.endswith("bfloat16")))
    cells = []
    for name in names:
        ratio = " / " in name
        values = [table[column].get(name) for column in table]
        label = name if ratio else f"{name} (s/update)"
        cells.append([label, *("–" if value is None else f"{value:.2f}x" if ratio else f"{value:#.3g}"
                               for value in values)])
    shape = next(f"B={row['batch']}, T={row['length']}+1" for row in rows)
    header = (f"Official: danijar/dreamerv3 at {official['commit']}, JAX {official['jax']} on CPU, in its own venv. "
              f"Median s/update, {shape}, H=15; each worker takes its turn update by update.")
    return machine_line(machine) + "\n" + header + "\n\n" + markdown_table(["", *table], cells)


def results_markdown(machine: dict, rows: list[dict]) -> str:
    columns = ["size", "obs", "code", "precision", "compile", "s/update median (min)", "updates/s",
               "replayed steps/s", "peak MiB", "estimate MiB", "warm-up s"]
    cells = []
    for row in rows:
        setup = [row["size"], row["obs"], row["code"], row["precision"], row["compile"]]
        estimate = f"{row['memory_estimate_mib']:,.0f}"
        if row.get("skipped"):
            cells.append([*setup, "skipped: memory", "–", "–", "–", estimate, "–"])
            continue
        cells.append([*setup, f"{row['seconds_per_update']:.3f} ({row['min_seconds']:.3f})",
                      f"{row['updates_per_second']:.2f}", f"{row['replayed_steps_per_second']:,.0f}",
                      f"{row['peak_memory_mib']:,.0f}", estimate, f"{row['warmup_seconds']:.1f}"])
    return machine_line(machine) + "\n\n" + markdown_table(columns, cells)


def write_results(table: str, machine: dict, rows: list[dict], markdown: pathlib.Path | None,
                  json_path: pathlib.Path | None, **extra):
    """Print the Markdown table; also write it and the JSON of machine, rows and `extra` where asked."""
    print("\n" + table, end="")
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(table)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(dict(machine=machine, **extra, results=rows), indent=1))


def report(machine: dict, official: dict | None, rows: list[dict], markdown: pathlib.Path | None,
           json_path: pathlib.Path | None, **extra):
    """The results table, headed by the table against the official code where it ran; printed and written."""
    table = results_markdown(machine, rows)
    if not official:
        write_results(table, machine, rows, markdown, json_path, **extra)
        return
    table = vs_official_markdown(machine, official, rows) + "\n" + table.split("\n", 2)[2]
    write_results(table, machine, rows, markdown, json_path, official=official, vs_official=vs_official(rows), **extra)


def merge(paths: list[pathlib.Path]) -> tuple[dict, dict | None, list[dict]]:
    """The machine, official checkout and rows of several --json results of this script, for one table.
    Set-ups too large to run side by side (12m image in both precisions) are measured in runs one after
    the other; their ratios stay within one run each. Runs of different machines or threads are refused."""
    results = [json.loads(path.read_text()) for path in paths]
    same = ("cpu", "cpus", "torch", "threads", "device")
    for path, result in zip(paths[1:], results[1:]):
        mismatch = [key for key in same if result["machine"].get(key) != results[0]["machine"].get(key)]
        if mismatch:
            raise ValueError(f"{path} was measured with other {', '.join(mismatch)} than {paths[0]}: not one table")
    return results[0]["machine"], results[0].get("official"), [row for result in results for row in result["results"]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1m", "12m"])
    parser.add_argument("--obs", nargs="+", default=["vector", "image"], choices=["vector", "image"])
    parser.add_argument("--act", default="discrete", choices=["discrete", "continuous"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", nargs="+", default=["auto"], help="auto, float32, bfloat16")
    parser.add_argument("--compile", nargs="+", default=["off"], choices=["off", "steps", "update"],
                        help="config.compile modes to measure (the warm-up time includes compiling)")
    parser.add_argument("--against", nargs="*", default=[], metavar="REV",
                        help="also measure the agent package of these git revisions (e.g. HEAD)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results here")
    parser.add_argument("--markdown", type=pathlib.Path, help="also write the Markdown table here")
    parser.add_argument("--official", type=pathlib.Path, help="also time the official JAX update of this "
                        "danijar/dreamerv3 checkout (e3f0224)")
    parser.add_argument("--official-python", default=os.environ.get("DREAMERV3_OFFICIAL_PYTHON"),
                        help="python of the official code's JAX venv (default $DREAMERV3_OFFICIAL_PYTHON)")
    parser.add_argument("--merge", nargs="+", type=pathlib.Path, metavar="JSON",
                        help="measure nothing: one table from these --json results of earlier runs")
    args = parser.parse_args(argv)
    if args.merge:
        try:
            machine, official, rows = merge(args.merge)
        except ValueError as error:
            parser.error(str(error))
        report(machine, official, rows, args.markdown, args.json, merged=[str(path) for path in args.merge])
        return
    official = None
    if args.official:
        if args.device != "cpu" or args.act != "discrete":
            parser.error("--official times the official update on CPU with discrete actions")
        try:
            official = official_info(args.official, args.official_python)
        except ValueError as error:
            parser.error(str(error))
    if args.threads:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))  # the memory estimate imports the worktree's agent package

    machine = machine_info(args.device)
    print(f"# {machine}", flush=True)
    codes = [*args.against, "worktree"]
    variants = [dict(code=code, precision=precision, compile=compile_) for code, precision, compile_ in
                itertools.product(codes, args.precision, args.compile)]
    if official:  # one XLA program per precision; auto is the official default, bfloat16
        precisions = dict.fromkeys("bfloat16" if precision == "auto" else precision for precision in args.precision)
        variants += [dict(code="official", precision=precision, compile="xla") for precision in precisions]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        roots = {code: code_root(None if code == "worktree" else code, tmp) for code in codes}
        for size, obs in itertools.product(args.sizes, args.obs):
            setup = dict(size=size, obs=obs, act=args.act, device=args.device, batch=args.batch, length=args.length,
                         threads=args.threads, warmup=args.warmup)
            if official and pinned_cpus(args.threads):
                setup["cpus"] = pinned_cpus(args.threads)
            estimate = memory_estimate_mib(setup)  # an official worker is counted as one of ours (1m vector:
            # 846 MiB peak, ours 786)
            reason = memory_check(estimate, len(variants), available_bytes(args.device))
            if reason:
                print(f"{size:>5} {obs:>6} skipped: {reason}", flush=True)
                rows += [dict(**setup, **variant, memory_estimate_mib=estimate, skipped=reason)
                         for variant in variants]
                continue
            for row in bench(setup, variants, roots, args.repeats, official, pathlib.Path(tmp)):
                row["memory_estimate_mib"] = estimate
                rows.append(row)
                print(f"{size:>5} {obs:>6} {row['code']:>10} {row['precision']:>9} compile={row['compile']:<6} "
                      f"{row['seconds_per_update']:8.3f} s/update (min {row['min_seconds']:.3f}) "
                      f"{row['updates_per_second']:7.2f} updates/s "
                      f"{row['replayed_steps_per_second']:9.0f} steps/s  peak {row['peak_memory_mib']:7.0f} MiB "
                      f"(estimate {estimate:.0f} MiB, warm-up {row['warmup_seconds']:.1f} s)", flush=True)
    report(machine, official, rows, args.markdown, args.json)


if __name__ == "__main__":
    main()
