"""The benchmark scripts' own logic: memory estimate and skip, Markdown tables, the train-loop window, the
table against the official code and its worker."""
import json
import os
import sys
from pathlib import Path

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
    assert train_step.machine_line(dict(MACHINE, load_average=(5.21, 5.3, 4.8))).endswith(
        "(n=4096); load average at start 5.2 / 5.3 / 4.8 (1 / 5 / 15 min)")
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


def test_train_loop_phase_shares_weight_each_line_by_its_interval():
    from training.phases import PHASES

    zero = {f"time/{name}": 0.0 for name in PHASES}
    lines = [dict(step=200, **{"train/updates": 0, "fps/agent_steps": 1000.0}, **zero),  # prefill: left out
             dict(step=400, **{"train/updates": 10, "fps/agent_steps": 5.0}, **zero),  # the window's start
             dict(step=480, **{"train/updates": 20, "fps/agent_steps": 20.0}, **{**zero, "time/update": 0.9,
                                                                                  "time/env": 0.1}),  # 2 s
             dict(step=560, **{"train/updates": 30, "fps/agent_steps": 10.0}, **{**zero, "time/update": 0.6,
                                                                                  "time/env": 0.2})]  # 4 s
    shares = train_loop.window_phases(lines, repeat=2)
    assert shares["update"] == pytest.approx((2 * 0.9 + 4 * 0.6) / 6)
    assert shares["env"] == pytest.approx((2 * 0.1 + 4 * 0.2) / 6)
    assert shares["other"] == pytest.approx(1 - shares["update"] - shares["env"])
    markdown = train_loop.results_markdown(MACHINE, [dict(suite="gym", task="CartPole-v1", status="ok", reason="",
                                                          time_fractions=shares)])
    assert "| gym | CartPole-v1 | 70.00 | 0.00 | 16.67 |" in markdown
    assert markdown.rstrip().endswith(f"| {100 * 0.3 / (0.7 / 20 + 0.3):.1f} |")  # the rest, were the update 20x faster
    old = [{key: value for key, value in line.items() if not key.startswith("time/")} for line in lines]
    assert train_loop.window_phases(old, repeat=2) is None  # runs from before the time/ fractions


def test_train_loop_reports_a_missing_engine_as_skipped():
    log = "Replay memory: ...\nerror: dmlab cannot run here: deepmind_lab is not installed. Build it.\n"
    assert train_loop.failure(3, log) == ("skipped", "error: dmlab cannot run here: deepmind_lab is not installed. "
                                                     "Build it.")
    assert train_loop.failure(2, "error: Unknown gym task\n") == ("failed", "error: Unknown gym task")


def timed(code, precision, seconds, size="1m", obs="vector", compile_="off"):
    return dict(size=size, obs=obs, code=code, precision=precision, compile=compile_, batch=16, length=64,
                seconds_per_update=seconds)


def test_vs_official_gives_medians_and_ratios_per_set_up():
    rows = [timed("official", "float32", 0.8, compile_="xla"), timed("official", "bfloat16", 1.2, compile_="xla"),
            timed("worktree", "float32", 0.4), timed("worktree", "bfloat16", 0.6),
            timed("HEAD", "float32", 0.1),  # an --against revision: not ours in this table
            timed("official", "float32", 6.0, obs="image", compile_="xla"),
            timed("worktree", "float32", 2.0, obs="image"),
            dict(timed("official", "float32", 0.0, size="12m", compile_="xla"), skipped="memory")]
    table = train_step.vs_official(rows)
    assert list(table) == ["1m vector", "1m image"]
    vector = table["1m vector"]
    assert vector["ours, float32"] == 0.4 and vector["official, bfloat16"] == 1.2
    assert vector["official / ours, float32"] == pytest.approx(2.0)
    assert vector["official / ours, bfloat16"] == pytest.approx(2.0)
    assert vector["official (best) / ours (best)"] == pytest.approx(0.8 / 0.4)
    assert "official / ours, bfloat16" not in table["1m image"]
    assert table["1m image"]["official (best) / ours (best)"] == pytest.approx(3.0)
    # A compile mode of ours is its own row and counts for the best, not for the per-precision ratio.
    table = train_step.vs_official([*rows[:2], timed("worktree", "float32", 0.5), timed("worktree", "float32", 0.2,
                                                                                         compile_="update")])
    assert table["1m vector"]["ours compile=update, float32"] == 0.2
    assert table["1m vector"]["official / ours, float32"] == pytest.approx(1.6)
    assert table["1m vector"]["official (best) / ours (best)"] == pytest.approx(4.0)


def test_vs_official_markdown_has_set_ups_as_columns():
    rows = [timed("worktree", "float32", 0.4), timed("official", "float32", 0.8, compile_="xla"),
            timed("worktree", "bfloat16", 0.6), timed("official", "bfloat16", 1.2, compile_="xla"),
            timed("worktree", "float32", 2.0, obs="image"), timed("official", "float32", 6.39, obs="image",
                                                                 compile_="xla")]
    official = dict(commit="e3f0224", jax="0.4.33")
    lines = train_step.vs_official_markdown(MACHINE, official, rows).splitlines()
    assert lines[0].startswith("Machine: Some CPU, 2 CPUs")
    assert lines[1].startswith("Official: danijar/dreamerv3 at e3f0224, JAX 0.4.33 on CPU")
    assert "B=16, T=64+1" in lines[1]
    assert lines[3] == "|  | 1m vector | 1m image |"
    assert lines[5:] == ["| official, float32 (s/update) | 0.800 | 6.39 |",
                         "| official, bfloat16 (s/update) | 1.20 | – |",
                         "| ours, float32 (s/update) | 0.400 | 2.00 |",
                         "| ours, bfloat16 (s/update) | 0.600 | – |",
                         "| official / ours, float32 | 2.00x | 3.19x |",
                         "| official / ours, bfloat16 | 2.00x | – |",
                         "| official (best) / ours (best) | 2.00x | 3.19x |"]


def test_merge_makes_one_table_of_runs_one_after_another(tmp_path, capsys):
    def measured(row):  # the other columns of a measured row
        return dict(row, min_seconds=row["seconds_per_update"], updates_per_second=1 / row["seconds_per_update"],
                    replayed_steps_per_second=1024 / row["seconds_per_update"], peak_memory_mib=800.0,
                    memory_estimate_mib=815.0, warmup_seconds=20.0)

    official = dict(commit="e3f0224", jax="0.4.33")
    runs = {"vector": [measured(timed("worktree", "float32", 0.4)),
                       measured(timed("official", "float32", 0.8, compile_="xla"))],
            "image": [measured(timed("worktree", "float32", 2.0, obs="image")),
                      measured(timed("official", "float32", 6.0, obs="image", compile_="xla"))]}
    paths = []
    for name, rows in runs.items():
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(dict(machine=MACHINE, official=official, results=rows)))
    train_step.main(["--merge", *map(str, paths), "--markdown", str(tmp_path / "all.md"),
                     "--json", str(tmp_path / "all.json")])
    lines = (tmp_path / "all.md").read_text().splitlines()
    assert lines[3] == "|  | 1m vector | 1m image |"
    assert "| official / ours, float32 | 2.00x | 3.00x |" in lines
    merged = json.loads((tmp_path / "all.json").read_text())
    assert len(merged["results"]) == 4 and merged["vs_official"]["1m image"]["ours, float32"] == 2.0
    # Runs of another machine or thread count are not one table.
    paths[1].write_text(json.dumps(dict(machine=dict(MACHINE, threads=1), official=official, results=[])))
    with pytest.raises(SystemExit) as exit_info:
        train_step.main(["--merge", *map(str, paths)])
    assert exit_info.value.code == 2 and "other threads" in capsys.readouterr().err


def test_official_checkout_and_python_are_checked_first(tmp_path, capsys):
    with pytest.raises(ValueError, match="danijar/dreamerv3 checkout"):
        train_step.official_info(tmp_path, sys.executable)
    checkout = tmp_path / "dreamerv3"
    (checkout / "dreamerv3").mkdir(parents=True)
    (checkout / "dreamerv3" / "agent.py").write_text("")
    with pytest.raises(ValueError, match="must name the python of the official code's JAX venv"):
        train_step.official_info(checkout, str(tmp_path / "no-python"))
    # Our own venv's python has no JAX.
    with pytest.raises(ValueError, match=r"cannot import the official code's packages .*No module named 'jax'"):
        train_step.official_info(checkout, sys.executable)
    # The command line says so before it measures anything.
    with pytest.raises(SystemExit) as exit_info:
        train_step.main(["--official", str(tmp_path / "nothing"), "--official-python", sys.executable])
    assert exit_info.value.code == 2 and "danijar/dreamerv3 checkout" in capsys.readouterr().err


def test_a_failing_official_worker_says_why(tmp_path):
    # The worker stops at its arguments, before it imports anything of the official code.
    setup = dict(size="1m", obs="vector", act="discrete", device="cpu", batch=2, length=8, warmup=1,
                 precision="float16")
    worker = train_step.OfficialWorker(sys.executable, tmp_path, setup, tmp_path / "official.log")
    with pytest.raises(RuntimeError, match=r"(?s)the official worker exited \(2\).*invalid choice: 'float16'"):
        worker.recv()


def test_all_workers_share_the_pinned_cpus_only_below_the_usable_count():
    usable = sorted(os.sched_getaffinity(0))
    assert train_step.pinned_cpus(None) is None
    assert train_step.pinned_cpus(len(usable)) is None
    if len(usable) > 1:
        assert train_step.pinned_cpus(1) == usable[:1]


OFFICIAL = os.environ.get("DREAMERV3_OFFICIAL")
OFFICIAL_PYTHON = os.environ.get("DREAMERV3_OFFICIAL_PYTHON")


@pytest.mark.official
@pytest.mark.skipif(not (OFFICIAL and OFFICIAL_PYTHON and Path(OFFICIAL_PYTHON).exists()),
                    reason="needs $DREAMERV3_OFFICIAL and $DREAMERV3_OFFICIAL_PYTHON (the official code's JAX venv)")
def test_official_worker_takes_turns_with_ours(tmp_path):
    official = train_step.official_info(Path(OFFICIAL), OFFICIAL_PYTHON)
    setup = dict(size="1m", obs="vector", act="discrete", device="cpu", batch=2, length=8, threads=1, warmup=1,
                 cpus=train_step.pinned_cpus(1))
    variants = [dict(code="worktree", precision="float32", compile="off"),
                dict(code="official", precision="float32", compile="xla")]
    rows = train_step.bench(setup, variants, {"worktree": train_step.ROOT}, repeats=2, official=official,
                            logs=tmp_path)
    assert [(row["code"], row["precision"], len(row["times"])) for row in rows] == [
        ("worktree", "float32", 2), ("official", "float32", 2)]
    assert all(row["seconds_per_update"] > 0 and row["peak_memory_mib"] > 100 for row in rows)
    assert "Optimizer opt has" in (tmp_path / "official_1m_vector_float32.log").read_text()  # the official agent
