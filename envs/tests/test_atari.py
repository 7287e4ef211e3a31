import numpy as np
import pytest
from PIL import Image

import envs
from envs.tests.conftest import check_obs, run_episode

pytest.importorskip("ale_py")


def test_atari100k_settings():
    env = envs.make("atari100k", "pong")
    assert env.obs_space["image"].shape == (64, 64, 3)
    assert env.act_space["action"].classes == 6  # Pong's minimal action set
    assert env.ale.getFloat("repeat_action_probability") == 0.0
    assert env.repeat == 4 and env.noops == 30 and env.length == 108_000


def test_atari200m_settings():
    env = envs.make("atari200m", "ms_pacman")
    assert env.obs_space["image"].shape == (96, 96, 1)
    assert env.act_space["action"].classes == 18  # full action set
    assert env.ale.getFloat("repeat_action_probability") == 0.25


def test_game_over_is_terminal(rng):
    env = envs.make("atari100k", "pong", seed=1)
    episode = run_episode(env, rng)
    assert episode[-1]["is_terminal"] and env.ale.game_over()
    rewards = [obs["reward"] for obs in episode]
    assert sum(rewards) == sum(reward > 0 for reward in rewards) - 21  # the opponent reached 21 points
    assert env.frames_played < 108_000


def test_time_limit_is_marked_terminal_as_officially(rng):
    # A 40-frame cap through an override instead of the 108,000-frame one, to be fast.
    env = envs.make("atari200m", "breakout", length=40)
    episode = run_episode(env, rng)
    assert len(episode) == 1 + 10  # reset step + 40 frames / repeat 4
    assert episode[-1]["is_last"] and episode[-1]["is_terminal"]
    assert not env.ale.game_over()
    obs = env.step({"action": 0, "reset": False})  # stepping after is_last starts a new episode
    assert obs["is_first"]
    check_obs(env, obs)


def test_preprocessing_matches_official_pipeline():
    """Max of the last two frames, PIL bilinear resize, truncated luminance gray."""
    env = envs.make("atari200m", "pong", seed=3)
    env.step({"action": 0, "reset": True})
    obs = env.step({"action": 1, "reset": False})
    pooled = np.maximum(env.frames[0], env.frames[1])
    resized = np.asarray(Image.fromarray(pooled).resize((96, 96), Image.BILINEAR))
    # The official weights, blue written as 1 - (0.299 + 0.587): rounding-exact for the cast.
    gray = (resized * np.array([0.299, 0.587, 1 - (0.299 + 0.587)])).sum(-1).astype(np.uint8)
    np.testing.assert_array_equal(obs["image"][..., 0], gray)


def test_seed_makes_runs_reproducible():
    first, second = (envs.make("atari100k", "breakout", seed=7) for _ in range(2))
    for env in (first, second):
        env.step({"action": 0, "reset": True})
    for action in [1, 2, 3, 0, 1]:
        a = first.step({"action": action, "reset": False})
        b = second.step({"action": action, "reset": False})
        np.testing.assert_array_equal(a["image"], b["image"])
