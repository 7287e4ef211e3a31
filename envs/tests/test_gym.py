import gymnasium
import numpy as np
import pytest

import envs
from envs.tests.conftest import check_obs, run_episode


class TinyImageEnv(gymnasium.Env):
    """3-D uint8 observations, to test the image path without extra packages."""

    observation_space = gymnasium.spaces.Box(0, 255, (8, 8, 3), np.uint8)
    action_space = gymnasium.spaces.Discrete(3, start=1)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return np.zeros((8, 8, 3), np.uint8), {}

    def step(self, action):
        assert action in (1, 2, 3), action
        self.steps += 1
        return np.full((8, 8, 3), action, np.uint8), 1.0, self.steps == 3, False, {}


gymnasium.register("TinyImage-v0", entry_point=TinyImageEnv)


def test_cartpole_termination_and_truncation(rng):
    env = envs.make("gym", "CartPole-v1")
    assert env.obs_space["vector"].shape == (4,) and env.act_space["action"].classes == 2
    episode = run_episode(env, rng)
    assert episode[-1]["is_terminal"]  # a random policy drops the pole long before 500 steps
    short = envs.make("gym", "CartPole-v1", max_episode_steps=3)
    episode = run_episode(short, rng)
    assert len(episode) == 1 + 3 and not episode[-1]["is_terminal"]  # truncated: is_last only


def test_box_actions_are_clipped_and_rescaled():
    env = envs.make("gym", "Pendulum-v1")  # torque in [-2, 2]
    assert env.act_space["action"].shape == (1,)
    env.step({"action": np.zeros(1, np.float32), "reset": True})
    for action, torque in [(0.5, 1.0), (-1.0, -2.0), (3.0, 2.0)]:
        obs = env.step({"action": np.array([action], np.float32), "reset": False})
        check_obs(env, obs)
        assert env.env.unwrapped.last_u == pytest.approx(torque)


def test_image_observations_and_discrete_start(rng):
    env = envs.make("gym", "TinyImage-v0")
    assert env.obs_space["image"].shape == (8, 8, 3) and env.obs_space["image"].dtype == np.uint8
    episode = run_episode(env, rng)
    assert len(episode) == 4 and episode[-1]["is_terminal"]
    env.step({"action": 0, "reset": True})
    assert env.step({"action": 2, "reset": False})["image"][0, 0, 0] == 3  # index 2 -> action start + 2
