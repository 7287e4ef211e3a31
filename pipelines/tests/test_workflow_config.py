"""The schema stops bad configs before any job starts; dry runs plan the expected grids and print their cost;
lint is clean."""
import os
import shlex

import jsonschema
import pytest
import yaml

from envs import SUITES
from pipelines.plan import main as plan_main
from pipelines.tests.conftest import REFERENCE
from pipelines.tests.workflow_helpers import REPO, job_counts, snakemake

CONFIGS = ["config.yaml", "paper.yaml", "scaling.yaml", "scaling_small.yaml", "test.yaml"]


def merged_config(name: str) -> dict:
    """config.yaml updated by another config file, as snakemake --configfile merges them."""
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for key, value in yaml.safe_load((REPO / "config" / name).read_text()).items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    return base


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_are_valid(name):
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    jsonschema.validate(merged_config(name), schema)


@pytest.mark.parametrize("override, named", [
    ({"bogus_key": 1}, "bogus_key"),
    ({"grid": [{"suite": "gym", "seeds": [0], "sizes": ["3m"]}]}, "3m"),
    ({"grid": [{"suite": "pong", "seeds": [0]}]}, "pong"),
    ({"aggregation": {"binz": 30}}, "binz"),
    ({"train": {"overrides": ["batch_sise=8"]}}, "train.overrides: unknown config key 'batch_sise'"),
    ({"train": {"overrides": ["batch_size=0"]}}, "train.overrides: batch_size must be at least 1"),
    ({"train": {"overrides": "batch_size=8"}}, "config train.overrides: 'batch_size=8' is not of type 'array'"),
    ({"train": {"overrides": ["env_args={sise: [64, 64]}"]}, "grid": [{"suite": "dmlab", "seeds": [0]}]},
     "train.overrides: grid[0]: env_args key 'sise' is not taken by the dmlab adapter (envs.dmlab.DMLab). Did you "
     "mean size? Accepted keys: mode, size, episodic."),  # DMLab is not installed here: checked all the same
    ({"train": {"overrides": ["env_args={length: 100}"]},
      "grid": [{"suite": "crafter", "seeds": [0]}, {"suite": "bsuite", "seeds": [0]}]},
     "train.overrides: grid[1]: env_args key 'length' is not taken by the bsuite adapter"),  # crafter takes it
])
def test_schema_rejects_bad_config_naming_the_key(tmp_path, override, named):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    result = snakemake("-n", "--configfile", str(bad))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert named in output
    assert len([line for line in output.splitlines() if named[:40] in line]) == 1, output
    assert "Job stats" not in output
    assert "$schema" not in output, "the failing rule, not the whole schema"


def expected_train_jobs(name: str) -> int:
    """Grid size computed straight from the YAML: distinct (suite, task, size, ratio, seed)."""
    config = merged_config(name)
    cells = set()
    for block in config["grid"]:
        defaults = SUITES[block["suite"]]
        for task in block.get("tasks", defaults.default_tasks()):
            for size in block.get("sizes", [defaults.size]):
                for ratio in block.get("train_ratios", [defaults.train_ratio]):
                    for seed in block["seeds"]:
                        cells.add((block["suite"], task, size, ratio, seed))
    return len(cells)


@pytest.mark.parametrize("name", ["paper.yaml", "scaling.yaml"])
def test_dry_run_plans_the_grid(tmp_path, name):
    local = tmp_path / "local_reference.yaml"
    local.write_text(yaml.safe_dump({"reference": {"local_dir": str(REFERENCE)},
                                     "results_dir": str(tmp_path / "results"),
                                     "runs_dir": str(tmp_path / "runs")}))
    result = snakemake("-n", "--configfile", f"config/{name}", str(local))
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    summary_rules = ["workflow_config", "aggregate", "tables", "plots", "export", "report", "all"]
    assert counts["train"] == expected_train_jobs(name)
    assert counts == {"train": counts["train"], **{rule: 1 for rule in summary_rules},
                      "total": counts["train"] + len(summary_rules)}


def test_evaluation_of_every_run_is_off_by_default_and_one_job_per_run_when_asked(tmp_path):
    local = tmp_path / "evaluate.yaml"
    local.write_text(yaml.safe_dump({"reference": {"local_dir": str(REFERENCE)}, "evaluate": {"episodes": 3},
                                     "results_dir": str(tmp_path / "results"), "runs_dir": str(tmp_path / "runs")}))
    result = snakemake("-n", "--configfile", "config/test.yaml", str(local))
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts["evaluate"] == counts["train"] == expected_train_jobs("test.yaml")


def test_overrides_reach_the_train_command_as_one_argument_each(tmp_path):
    """An env_args override holds a space and braces (YAML needs `key: value`): quoted for the shell."""
    local = tmp_path / "overrides.yaml"
    local.write_text(yaml.safe_dump({
        "reference": {"local_dir": str(REFERENCE)}, "results_dir": str(tmp_path / "results"),
        "runs_dir": str(tmp_path / "runs"), "grid": [{"suite": "gym", "seeds": [0], "sizes": ["1m"], "steps": 300}],
        "train": {"overrides": ["env_args={max_episode_steps: 50}", "batch_size=8"]}}))
    result = snakemake("-n", "-p", "--configfile", "config/test.yaml", str(local))
    assert result.returncode == 0, result.stderr
    commands = [line for line in result.stdout.splitlines() if "python -m training.train" in line]
    assert len(commands) == 1
    arguments = shlex.split(commands[0].split("python -m training.train")[1].split(">")[0])
    assert arguments[-3:] == ["--set", "env_args={max_episode_steps: 50}", "batch_size=8"]


def test_longest_training_runs_are_scheduled_first(tmp_path):
    """Train jobs carry their replayed steps (agent steps x ratio) as priority, so a long run never starts
    last and runs alone at the end; random-policy runs keep priority 0."""
    local = tmp_path / "local.yaml"
    local.write_text(yaml.safe_dump({"reference": {"local_dir": str(REFERENCE)},
                                     "results_dir": str(tmp_path / "results"), "runs_dir": str(tmp_path / "runs")}))
    result = snakemake("-n", "--configfile", str(local))
    assert result.returncode == 0, result.stderr
    priorities = {}  # run folder -> priority, from the dry run's job blocks
    for block in result.stdout.split("rule ")[1:]:
        outputs = [line.split("output: ")[1] for line in block.splitlines() if "output: " in line]
        if not outputs:  # rule all
            continue
        output = outputs[0]
        priority = [int(line.split()[-1]) for line in block.splitlines() if line.strip().startswith("priority:")]
        priorities[output.removesuffix("/done.json")] = priority[0] if priority else 0
    cartpole = tmp_path / "runs" / "gym" / "CartPole-v1"
    assert priorities[f"{cartpole}/1m-ratio128/seed0"] == 3000 * 128 // 1000
    assert (priorities[f"{cartpole}/1m-ratio128/seed1"] > priorities[f"{cartpole}/1m-ratio64/seed1"]
            > priorities[f"{tmp_path}/runs/crafter/reward/1m-ratio32/seed0"] > priorities[f"{cartpole}/random/seed0"])


def test_a_config_with_its_own_results_dir_shares_the_runs_compile_cache(tmp_path):
    """Snakemake reruns a job whose params changed: the compile cache param must not follow results_dir, or
    config/scaling_small.yaml (same runs, own results_dir) would retrain the default job's finished runs."""
    caches = []
    for results in ("results", "results/scaling_small"):
        local = tmp_path / "local.yaml"
        local.write_text(yaml.safe_dump({"reference": {"local_dir": str(REFERENCE)}, "runs_dir": str(tmp_path / "runs"),
                                         "results_dir": str(tmp_path / results)}))
        result = snakemake("-n", "-p", "--configfile", "config/test.yaml", str(local))
        assert result.returncode == 0, result.stderr
        caches += {line.split("TORCHINDUCTOR_CACHE_DIR:-")[1].split("}")[0]
                   for line in result.stdout.splitlines() if "TORCHINDUCTOR_CACHE_DIR:-" in line}
    assert caches == [str(tmp_path / "compile_cache")] * 2


def test_paper_grid_size():
    # 26 + 57 Atari games x 5, 18 + 20 DMC tasks x 5, 30 DMLab levels x 5, Crafter x 5,
    # Minecraft x 20, 16 ProcGen games x 1, 468 bsuite settings x 1, CartPole x 5.
    assert expected_train_jobs("paper.yaml") == 130 + 285 + 90 + 100 + 150 + 5 + 20 + 16 + 468 + 5


def plan_table(output: str) -> list[str]:
    """The lines of the plan's table, from its header to its total."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("suite ") and "agent steps" in line)
    end = next(i for i, line in enumerate(lines) if line.startswith("total "))
    return lines[start:end + 1]


def test_a_dry_run_prints_the_plan_once_and_a_real_run_does_not(tmp_path, capsys):
    local = tmp_path / "local.yaml"
    local.write_text(yaml.safe_dump({"reference": {"local_dir": str(REFERENCE)},
                                     "results_dir": str(tmp_path / "results"), "runs_dir": str(tmp_path / "runs")}))
    dry = snakemake("-n", "--configfile", "config/test.yaml", str(local))
    assert dry.returncode == 0, dry.stderr
    assert plan_main(["--configfile", "config/test.yaml"]) == 0
    make_plan = capsys.readouterr().out
    assert dry.stdout.count("Plan for ") == 1
    assert f"Plan for config/test.yaml + {os.path.relpath(local, REPO)} on cpu: 2 runs" in dry.stdout
    assert plan_table(dry.stdout) == plan_table(make_plan)
    assert plan_table(dry.stdout)[-1].split()[:4] == ["total", "2", "600", "12"]
    assert "Wall-clock with 1 run at once (snakemake --cores / train cpus)" in dry.stdout
    assert "Job stats" in dry.stdout  # and then the dry run as before
    # A real run (of one cheap job) does not plan.
    real = snakemake(str(tmp_path / "results" / "aggregate" / "workflow-config.yaml"), "--cores", "1",
                     "--configfile", "config/test.yaml", str(local))
    assert real.returncode == 0, real.stderr
    assert (tmp_path / "results" / "aggregate" / "workflow-config.yaml").exists()
    assert "Plan for" not in real.stdout + real.stderr


def test_lint_is_clean():
    result = snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr
