import sys

import numpy as np
import pytest

import envs
from envs import minecraft
from envs.tests.conftest import check_obs
from envs.tests.fakes import ITEMS, FakeMineRLEnv

ACTION = {name: index for index, name in enumerate(minecraft.DIAMOND_ACTIONS)}


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setattr(minecraft, "make_minerl_env", lambda size, break_speed: FakeMineRLEnv())
    return envs.make("minecraft", "diamond")


def act(env, name):
    obs = env.step({"action": ACTION[name], "reset": False})
    check_obs(env, obs)
    return obs


def test_spaces(env):
    assert env.act_space["action"].classes == 25
    items = len(ITEMS) - 1  # log2 is merged into log
    assert env.obs_space["inventory"].shape == (items,) and env.obs_space["inventory_max"].shape == (items,)
    assert env.obs_space["equipped"].shape == (5,) and env.obs_space["image"].shape == (64, 64, 3)
    obs = env.step({"action": 0, "reset": True})
    check_obs(env, obs)
    assert obs["is_first"] and obs["reward"] == 0 and obs["health"] == 1 and obs["breath"] == 1
    np.testing.assert_array_equal(obs["equipped"], [1, 0, 0, 0, 0])


def test_action_mapping(env):
    env.step({"action": 0, "reset": True})
    engine = env.env
    act(env, "craft_wooden_pickaxe")
    assert engine.actions[-1]["nearbyCraft"] == "wooden_pickaxe" and engine.actions[-1]["craft"] == "none"
    act(env, "turn_left")
    np.testing.assert_array_equal(engine.actions[-1]["camera"], [0, -15])
    for _ in range(5):  # pitch is limited to +-60 degrees: the fifth turn down is dropped
        act(env, "turn_down")
    pitches = [action["camera"][0] for action in engine.actions[-5:]]
    assert pitches == [15, 15, 15, 15, 0]
    act(env, "jump")
    for _ in range(9):  # jump is held for 10 steps and implies forward
        act(env, "noop")
    assert all(action["jump"] == 1 and action["forward"] == 1 for action in engine.actions[-10:])
    act(env, "noop")
    assert engine.actions[-1]["jump"] == 0


def test_rewards_and_inventory(env):
    env.step({"action": 0, "reset": True})
    engine = env.env
    engine.inventory["log2"] = 2  # acacia logs count as log
    obs = act(env, "attack")
    assert obs["reward"] == pytest.approx(1.0) and obs["log/inventory/log"] == 2
    engine.inventory.update(log2=0, log=0, planks=4)
    engine.life = 18.0
    obs = act(env, "craft_planks")  # planks for the first time: +1; health 20 -> 18: -0.01 * 0.1
    assert obs["reward"] == pytest.approx(1.0 - 0.001)
    engine.inventory["log"] = 3
    obs = act(env, "attack")  # log was already collected this episode: no reward again
    assert obs["reward"] == pytest.approx(0.0)
    planks = list(env.items).index("planks")
    engine.inventory["planks"] = 0
    obs = act(env, "noop")
    assert obs["inventory"][planks] == 0 and obs["inventory_max"][planks] == 4
    engine.equipped = "stone_pickaxe"
    np.testing.assert_array_equal(act(env, "noop")["equipped"], [0, 0, 1, 0, 0])


def test_death_is_terminal_and_time_limit_is_not(monkeypatch):
    monkeypatch.setattr(minecraft, "make_minerl_env", lambda size, break_speed: FakeMineRLEnv())
    env = envs.make("minecraft", "diamond", length=3)  # 36,000 officially; 3 to test the cut
    env.step({"action": 0, "reset": True})
    env.env.next_done = True  # MineRL ends the episode when the player dies
    obs = act(env, "forward")
    assert obs["is_last"] and obs["is_terminal"]
    assert env.step({"action": 0, "reset": False})["is_first"]
    observations = [act(env, "noop") for _ in range(3)]
    assert [obs["is_last"] for obs in observations] == [False, False, True]
    assert not observations[-1]["is_terminal"]


def test_engine_error_restarts_the_episode(env):
    env.step({"action": 0, "reset": True})
    env.env.next_info = {"error": "connection lost"}
    obs = act(env, "forward")
    assert obs["is_first"] and env.env.resets == 2


def test_missing_engine_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "minerl", None)
    with pytest.raises(ImportError, match="containers/minecraft.def"):
        envs.make("minecraft", "diamond")


def test_real_engine():
    pytest.importorskip("minerl")
    env = envs.make("minecraft", "diamond")
    obs = env.step({"action": 0, "reset": True})
    check_obs(env, obs)
    for name in ("forward", "attack", "jump"):
        check_obs(env, env.step({"action": ACTION[name], "reset": False}))
    env.close()
