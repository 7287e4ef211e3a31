import pytest

import envs
from envs.crafter import ACHIEVEMENTS
from envs.tests.conftest import random_action, run_episode

pytest.importorskip("crafter")


def test_settings():
    env = envs.make("crafter", "reward")
    assert env.obs_space["image"].shape == (64, 64, 3)
    assert env.act_space["action"].classes == 17
    assert len(ACHIEVEMENTS) == 22
    assert {f"log/achievement_{name}" for name in ACHIEVEMENTS} | {"log/reward"} <= set(env.obs_space)
    assert env.env._length == 10_000  # crafter's default episode limit


def test_time_limit_is_last_only(rng):
    # A 30-step limit through an override: a real 10,000-step episode takes ~10 s here.
    env = envs.make("crafter", "reward", length=30)
    episode = run_episode(env, rng)
    assert len(episode) == 1 + 30
    assert episode[-1]["is_last"] and not episode[-1]["is_terminal"]
    counts = {name: episode[-1][f"log/achievement_{name}"] for name in ACHIEVEMENTS}
    assert all(count >= 0 for count in counts.values())


def test_death_is_terminal_and_noreward_still_logs_reward(rng):
    env = envs.make("crafter", "noreward")
    env.step({"action": 0, "reset": True})
    env.env._player.health = 0  # kill the player instead of waiting for a random death
    obs = env.step(random_action(env, rng))
    assert obs["is_last"] and obs["is_terminal"]
    assert obs["reward"] == 0  # noreward hides the reward from the agent...
    assert obs["log/reward"] < 0  # ...but logs crafter's reward (here the health loss)
