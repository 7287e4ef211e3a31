import dm_env
import numpy as np
import pytest

import envs
from envs.tests.conftest import check_obs, random_action, run_episode

pytest.importorskip("dm_control")


def test_proprio_settings_and_time_limit(rng):
    env = envs.make("dmc_proprio", "walker_walk")
    spaces = env.obs_space
    assert "image" not in spaces and "log/image" not in spaces  # no rendering by default
    assert spaces["orientations"].shape == (14,) and spaces["height"].shape == (1,)
    assert spaces["velocity"].shape == (9,) and spaces["velocity"].dtype == np.float32
    assert env.act_space["action"].shape == (6,)
    assert (env.act_space["action"].low, env.act_space["action"].high) == (-1.0, 1.0)
    episode = run_episode(env, rng)
    assert len(episode) == 1 + 1000  # action repeat 1, 1000-step episodes
    assert episode[-1]["is_last"] and not episode[-1]["is_terminal"]  # time limit, discount 1


def test_vision_image_only(rng):
    env = envs.make("dmc_vision", "cartpole_swingup")
    assert set(env.obs_space) == {"image", "reward", "is_first", "is_last", "is_terminal"}
    assert env.obs_space["image"].shape == (64, 64, 3) and env.camera == 0
    first = env.step({**random_action(env, rng), "reset": True})
    check_obs(env, first)
    obs = env.step(random_action(env, rng))
    check_obs(env, obs)
    assert obs["image"].std() > 0  # rendered, not blank


def test_cameras_and_cup_alias():
    assert envs.make("dmc_vision", "quadruped_walk").camera == 2
    env = envs.make("dmc_proprio", "ball_in_cup_catch", log_image=True)
    assert env.obs_space["log/image"].shape == (64, 64, 3)
    assert env.obs_space["position"].shape == (4,)


def test_actions_are_clipped_and_rescaled(rng):
    env = envs.make("dmc_proprio", "cartpole_swingup")
    env.step({"action": np.zeros(1, np.float32), "reset": True})
    sent = []
    original_step = env.env.step
    env.env.step = lambda action: sent.append(np.array(action)) or original_step(action)
    env.action_spec = env.action_spec.replace(minimum=[-2.0], maximum=[4.0])  # bounds other than [-1, 1]
    for action in ([-1.0], [0.0], [1.0], [3.0], [-7.0]):
        env.step({"action": np.array(action, np.float32), "reset": False})
    np.testing.assert_allclose(np.concatenate(sent), [-2.0, 1.0, 4.0, 4.0, -2.0])


def test_discount_zero_is_terminal(rng):
    env = envs.make("dmc_proprio", "cartpole_swingup")
    env.step({**random_action(env, rng), "reset": True})
    physics_step = env.env.step

    def terminate(action):
        timestep = physics_step(action)
        return dm_env.termination(timestep.reward, timestep.observation)

    env.env.step = terminate
    obs = env.step(random_action(env, rng))
    assert obs["is_last"] and obs["is_terminal"]


def test_length_cuts_episodes_as_a_time_limit(rng):
    env = envs.make("dmc_proprio", "walker_walk", length=5)
    obs = env.step({"action": np.zeros(6, np.float32), "reset": True})
    assert obs["is_first"]
    for step in range(5):
        obs = env.step({"action": rng.uniform(-1, 1, 6).astype(np.float32), "reset": False})
        assert obs["is_last"] == (step == 4)
        assert not obs["is_terminal"]
    assert env.step({"action": np.zeros(6, np.float32), "reset": False})["is_first"]
