"""The benchmark scripts' own logic: memory estimate and skip, Markdown tables, the train-loop window."""
import pytest

from benchmarks import train_loop, train_step

MACHINE = dict(torch="2.13.0", threads=2, cpus=2, cpu="Some CPU", device="cpu", matmul_gflops_fp32=100.0,
               matmul_n_fp32=2048, matmul_gflops_bf16=400.0, matmul_n_bf16=4096)


def setup(size, obs="vector", device="cpu", batch=16, length=64):
    return dict(size=size, obs=obs, act="discrete", device=device, batch=batch, length=length)


def test_memory_estimate_grows_with_size_batch_and_images():
    sizes = [train_step.memory_estimate_mib(setup(size)) for size in ("1m", "12m", "50m", "200m")]
    assert sizes == sorted(sizes) and sizes[-1] > 10 * sizes[0]
    assert train_step.memory_estimate_mib(setup("12m", "image")) > sizes[1]
    assert train_step.memory_estimate_mib(setup("12m", batch=8)) < sizes[1]
    # CUDA's allocated memory has no process base.
    assert train_step.memory_estimate_mib(setup("1m", device="cuda")) == sizes[0] - train_step.CPU_BASE_MIB


def test_memory_check_skips_what_does_not_fit_with_all_its_workers():
    assert train_step.memory_check(1000, 2, available=4 * 2**30) is None
    reason = train_step.memory_check(1000, 2, available=2 * 2**30)  # 2000 MiB > 90 % of 2048
    assert "2,000 MiB" in reason and "2,048 MiB available" in reason
    assert train_step.memory_check(1000, 1, available=2**20) is not None


def test_train_step_markdown_table():
    row = dict(size="1m", obs="vector", code="worktree", precision="auto", compile="off")
    rows = [dict(row, seconds_per_update=0.8123, min_seconds=0.8, updates_per_second=1.231,
                 replayed_steps_per_second=1260.6, peak_memory_mib=812.4, memory_estimate_mib=820.0,
                 warmup_seconds=2.04),
            dict(row, size="200m", memory_estimate_mib=25691.0, skipped="estimated ... available")]
    lines = train_step.results_markdown(MACHINE, rows).splitlines()
    assert lines[0] == ("Machine: Some CPU, 2 CPUs, torch 2.13.0, threads 2; matmul 100 GFLOP/s fp32 (n=2048), "
                        "400 GFLOP/s bf16 (n=4096)")
    assert lines[1] == ""
    assert "peak MiB" in lines[2] and lines[3].count("---") == lines[2].count("|") - 1
    assert lines[4] == "| 1m | vector | worktree | auto | off | 0.812 (0.800) | 1.23 | 1,261 | 812 | 820 | 2.0 |"
    assert lines[5] == "| 200m | vector | worktree | auto | off | skipped: memory | – | – | – | 25,691 | – |"


def test_train_loop_window_leaves_out_prefill_and_warm_up():
    # Agent steps x repeat 2; one update per 4 agent steps of 64 replayed steps: ratio 16.
    lines = [dict(step=200, **{"train/updates": 0, "fps/agent_steps": 1000.0}),  # prefill
             dict(step=400, **{"train/updates": 10, "fps/agent_steps": 5.0}),  # warm-up, first update
             dict(step=480, **{"train/updates": 20, "fps/agent_steps": 20.0}),  # 40 agent steps in 2 s
             dict(step=560, **{"train/updates": 30, "fps/agent_steps": 10.0})]  # 40 agent steps in 4 s
    rates = train_loop.window_rates(lines, repeat=2, replayed_per_update=64)
    assert rates["window_seconds"] == pytest.approx(6.0)
    assert rates["window_agent_steps"] == 80 and rates["window_updates"] == 20
    assert rates["env_steps_per_second"] == pytest.approx(160 / 6)
    assert rates["agent_steps_per_second"] == pytest.approx(80 / 6)
    assert rates["updates_per_second"] == pytest.approx(20 / 6)
    assert rates["train_ratio_measured"] == pytest.approx(16.0)
    assert train_loop.window_rates(lines[:2], repeat=2, replayed_per_update=64) is None


def test_train_loop_reports_a_missing_engine_as_skipped():
    log = "Replay memory: ...\nerror: dmlab cannot run here: deepmind_lab is not installed. Build it.\n"
    assert train_loop.failure(3, log) == ("skipped", "error: dmlab cannot run here: deepmind_lab is not installed. "
                                                     "Build it.")
    assert train_loop.failure(2, "error: Unknown gym task\n") == ("failed", "error: Unknown gym task")
