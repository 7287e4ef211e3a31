import sys

import numpy as np
import pytest

import envs
from envs import dmlab
from envs.tests.conftest import check_obs
from envs.tests.fakes import deepmind_lab_module


@pytest.fixture
def fake_lab(monkeypatch):
    module = deepmind_lab_module()
    monkeypatch.setitem(sys.modules, "deepmind_lab", module)
    return module


def test_level_config_and_spaces(fake_lab):
    env = envs.make("dmlab", "rooms_collect_good_objects_test")
    lab = fake_lab.created[-1]
    assert lab.level == "contributed/dmlab30/rooms_collect_good_objects_train"  # train mode
    assert lab.config == {"height": "64", "width": "64", "logLevel": "WARN"}
    assert lab.observation_names == ["RGB_INTERLEAVED"]
    assert env.obs_space["image"].shape == (64, 64, 3) and "instr" not in env.obs_space
    assert env.act_space["action"].classes == 15
    eval_env = dmlab.DMLab("rooms_collect_good_objects_test", mode="eval")
    assert eval_env.env.level.endswith("_test") and eval_env.env.config["allowHoldOutLevels"] == "true"


def test_actions_repeat_and_episode_end(fake_lab):
    env = envs.make("dmlab", "explore_goal_locations_small", seed=5)
    lab = fake_lab.created[-1]
    first = env.step({"action": 0, "reset": True})
    check_obs(env, first)
    assert first["is_first"] and first["reward"] == 0
    obs = env.step({"action": 14, "reset": False})  # fire
    assert lab.actions[-1] == ((0, 0, 0, 0, 1, 0, 0), 4)  # action repeat 4 inside the engine
    assert obs["reward"] == 4 and obs["image"][0, 0, 0] == 4
    env.step({"action": 12, "reset": False})
    assert lab.actions[-1] == ((-60, 0, 0, 1, 0, 0, 0), 4)  # forward + large look left
    obs = env.step({"action": 0, "reset": False})  # frames 8 -> 12: the episode ends
    check_obs(env, obs)
    assert obs["is_last"] and obs["is_terminal"]  # episodic: every end is terminal
    assert obs["image"][0, 0, 0] == 8  # no observation after the end: the last one repeats
    again = envs.make("dmlab", "explore_goal_locations_small", seed=5)
    again.step({"action": 0, "reset": True})
    assert fake_lab.created[-1].seeds == lab.seeds[:1]  # episode seeds follow from the seed


def test_popart_action_set():
    vectors = np.array(list(dmlab.POPART_ACTIONS.values()))
    assert vectors.shape == (15, 7)
    assert len({tuple(vector) for vector in vectors}) == 15
    assert set(np.abs(vectors[:, 0])) == {0, 10, 60} and set(vectors[:, 1]) == {-10, 0, 10}


def test_language_levels_embed_the_instruction(fake_lab):
    env = envs.make("dmlab", "language_select_described_object")
    assert fake_lab.created[-1].observation_names == ["RGB_INTERLEAVED", "INSTR"]
    obs = env.step({"action": 0, "reset": True})
    check_obs(env, obs)
    assert obs["instr"].shape == (1024,) and obs["instr"].dtype == np.float32
    np.testing.assert_array_equal(obs["instr"], dmlab.embed_instruction("pick the RED balloon."))
    tokens = dmlab.TOKEN_PATTERN.findall("pick the red balloon.")
    assert tokens == ["pick", "the", "red", "balloon", "."]
    np.testing.assert_array_equal(obs["instr"][-32:], dmlab.instruction_embeddings()[0])  # padding


def test_missing_engine_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "deepmind_lab", None)  # makes `import deepmind_lab` fail
    with pytest.raises(ImportError, match="containers/dmlab.def"):
        envs.make("dmlab", "explore_goal_locations_small")


def test_real_engine(rng):
    pytest.importorskip("deepmind_lab")
    env = envs.make("dmlab", "explore_goal_locations_small")
    obs = env.step({"action": 0, "reset": True})
    check_obs(env, obs)
    for _ in range(10):
        check_obs(env, env.step({"action": int(rng.integers(15)), "reset": False}))
