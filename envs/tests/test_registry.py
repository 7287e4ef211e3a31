import dataclasses
import functools
import gzip
import inspect
import json
import pathlib
import subprocess
import sys

import pytest

import envs
from envs import registry

SCORES = pathlib.Path("/work/shared/reference/dreamerv3-scores")


def test_suites_and_task_counts():
    assert set(envs.SUITES) == {
        "atari100k", "atari200m", "dmc_proprio", "dmc_vision", "bsuite", "crafter", "dmlab", "minecraft",
        "procgen", "gym",
    }  # fmt: skip
    counts = {name: len(info.tasks) for name, info in envs.SUITES.items()}
    assert counts["atari100k"] == 26 and counts["atari200m"] == 57
    assert counts["dmc_proprio"] == 18 and counts["dmc_vision"] == 20
    assert counts["dmlab"] == 30 and envs.SUITES["crafter"].tasks == ("reward", "noreward")
    assert envs.SUITES["minecraft"].tasks == ("diamond",)
    assert counts["procgen"] == 16
    assert set(registry.ATARI100K_GAMES) <= set(registry.ATARI57_GAMES)


@pytest.mark.parametrize("suite", ["atari100k", "atari200m", "dmc_proprio", "dmc_vision", "dmlab", "procgen"])
def test_tasks_match_official_score_files(suite):
    """The registry's tasks, score-file name and task prefix name exactly the published runs."""
    prefix = envs.SUITES[suite].task_prefix
    path = SCORES / f"{envs.SUITES[suite].score_files[0]}-dreamerv3.json.gz"
    if not path.exists():
        pytest.skip(f"{path} not on this machine")
    with gzip.open(path) as stream:
        official = {record["task"].removeprefix(prefix) for record in json.load(stream)}
    assert set(envs.SUITES[suite].tasks) == official


def test_official_run_settings():
    """Spec 6.2: (repeat, train_ratio, agent steps, envs, size, resumable)."""
    expected = {
        "atari100k": (4, 256, 110_000, 1, "200m", True),
        "atari200m": (4, 32, 51_000_000, 16, "200m", True),
        "dmc_proprio": (1, 1024, 1_100_000, 16, "1m", True),
        "dmc_vision": (1, 256, 1_100_000, 16, "200m", True),
        "bsuite": (1, 1024, envs.NO_STEP_LIMIT, 1, "200m", False),
        "crafter": (1, 512, 1_100_000, 1, "200m", True),
        "dmlab": (4, 32, 26_000_000, 16, "200m", True),
        "minecraft": (1, 32, 100_000_000, 16, "200m", True),
        "procgen": (1, 64, 110_000_000, 16, "200m", True),
    }
    for name, values in expected.items():
        info = envs.SUITES[name]
        settings = (info.repeat, info.train_ratio, info.steps, info.envs, info.size, info.resumable)
        assert settings == values, name
    installs = {name for name, info in envs.SUITES.items() if info.installs_here}
    assert installs == set(envs.SUITES) - {"dmlab", "minecraft"}


def test_action_repeat_reaches_the_adapter_or_is_refused():
    pytest.importorskip("ale_py")
    assert envs.make("atari100k", "pong").repeat == 4  # the suite's own
    assert envs.make("atari100k", "pong", repeat=2).repeat == 2
    with pytest.raises(ValueError, match="gym has no action repeat"):
        envs.make("gym", "CartPole-v1", repeat=2)


def test_unknown_suite_lists_suites():
    with pytest.raises(ValueError, match="valid: atari100k, atari200m, dmc_proprio.*gym"):
        envs.make("atari", "pong")


def test_unknown_task_lists_tasks():
    with pytest.raises(ValueError, match="valid: alien, amidar.*up_n_down"):
        envs.make("atari100k", "zaxxon")  # an Atari 57 game, not in Atari 100k
    with pytest.raises(ValueError, match="valid: reward, noreward"):
        envs.make("crafter", "hard")
    with pytest.raises(ValueError, match="walker_walk"):
        envs.make("dmc_proprio", "quadruped_run")  # vision-only task


def test_unknown_bsuite_id_lists_ids():
    with pytest.raises(ValueError, match=r"valid: \['catch/0', 'catch/1'"):
        envs.make("bsuite", "catch/99")
    with pytest.raises(ValueError, match="deep_sea"):
        envs.make("bsuite", "no_such_experiment")


def test_unknown_gym_id_says_how_to_list():
    with pytest.raises(ValueError, match="not registered in Gymnasium.*pprint_registry"):
        envs.make("gym", "NoSuchEnv-v0")


def test_import_is_cheap():
    """`import envs` loads no engine: adapters import them when an env is built."""
    engines = ["ale_py", "dm_control", "mujoco", "bsuite", "crafter", "gymnasium", "deepmind_lab", "minerl",
               "procgen", "gym3"]
    code = f"import sys, envs; print([m for m in {engines!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def binding_only(adapter):
    """Stands in for an adapter class: binds make()'s call to the adapter's real signature (a TypeError if a
    key does not fit) and raises the bound arguments instead of building the env."""

    @functools.wraps(adapter)  # signature() follows __wrapped__: env_args() reads the real adapter's
    def build(*args, **kwargs):
        raise Bound(inspect.signature(adapter).bind(*args, **kwargs).arguments)

    return build


class Bound(Exception):
    pass


@pytest.mark.parametrize("name", sorted(envs.SUITES))
def test_env_args_keys_are_the_adapters_real_arguments(monkeypatch, name):
    """Every key a suite accepts reaches its adapter through make() and binds to the adapter's own signature
    (together with the official options, the seed and the repeat); any other key is refused by name first."""
    info = envs.SUITES[name]
    monkeypatch.setitem(envs.SUITES, name, dataclasses.replace(info, adapter=binding_only(info.adapter)))
    task = {"gym": "CartPole-v1", "bsuite": "catch/0"}.get(name, info.tasks[0] if info.tasks else "")
    parameters = inspect.signature(info.adapter).parameters
    accepted = info.env_args()
    if accepted is None:  # gym: any key goes on to gymnasium.make
        assert parameters["make_kwargs"].kind is inspect.Parameter.VAR_KEYWORD
        accepted = ("max_episode_steps",)
    keys = {key: object() for key in accepted}
    with pytest.raises(Bound) as bound:
        envs.make(name, task, 5, info.repeat, **keys)  # as the training loop calls it
    arguments = bound.value.args[0]
    assert arguments["seed"] == 5 and arguments.get("repeat", 1) == info.repeat
    assert ("repeat" in arguments) == ("repeat" in parameters)
    passed = arguments.get("make_kwargs", arguments)
    assert all(passed[key] is value for key, value in keys.items())
    assert set(info.options) <= set(parameters), "the official options name the adapter's own arguments"
    if info.env_args() is not None:
        with pytest.raises(ValueError, match=f"env_args key 'no_such_key' is not taken by the {name} adapter"):
            envs.make(name, task, no_such_key=1)


def test_env_args_are_checked_without_any_engine():
    """DMLab and Minecraft do not install here; their keys are checked all the same, and checking the keys of
    every suite imports no engine (the workflow does it before planning)."""
    engines = ["ale_py", "dm_control", "mujoco", "bsuite", "crafter", "gymnasium", "deepmind_lab", "minerl",
               "procgen", "gym3"]
    code = (
        "import sys, envs\n"
        "for name in envs.SUITES: envs.check_env_args(name, dict.fromkeys(envs.SUITES[name].env_args() or ()))\n"
        "for name, key in [('dmlab', 'sise'), ('minecraft', 'break_sped')]:\n"
        "    try: envs.check_env_args(name, {key: 1})\n"
        "    except ValueError as error: print(error)\n"
        f"print([m for m in {engines!r} if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == [
        "env_args key 'sise' is not taken by the dmlab adapter (envs.dmlab.DMLab). Did you mean size? "
        "Accepted keys: mode, size, episodic.",
        "env_args key 'break_sped' is not taken by the minecraft adapter (envs.minecraft.Minecraft). Did you mean "
        "break_speed? Accepted keys: size, length, break_speed, jump_steps, pitch_limit.",
        "[]",
    ]


def test_a_suite_without_env_args_says_so():
    with pytest.raises(ValueError, match=r"keys 'length', 'size' are not taken by the bsuite adapter .*"
                                         r"It takes no env_args\.$"):
        envs.check_env_args("bsuite", {"length": 10, "size": 3})
