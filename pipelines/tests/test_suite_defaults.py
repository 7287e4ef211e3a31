"""The workflow's per-suite defaults (config/config.yaml) agree with the registry (envs.SUITES),
so a grid run and a hand-started `training.train` use the same official settings."""
from pathlib import Path

import yaml

import envs

CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"


def test_workflow_suite_defaults_match_the_registry():
    suites = yaml.safe_load(CONFIG.read_text())["suites"]
    assert set(suites) == set(envs.SUITES)
    for name, defaults in suites.items():
        info = envs.SUITES[name]
        for key in ("repeat", "train_ratio", "envs", "size"):
            assert defaults[key] == getattr(info, key), (name, key)
        if info.steps is not None:
            assert defaults["steps"] == info.steps, name
        if name in ("bsuite", "gym"):  # open-ended task sets: any id the adapter accepts
            continue
        assert set(defaults["tasks"]) <= set(info.tasks), (name, set(defaults["tasks"]) - set(info.tasks))
