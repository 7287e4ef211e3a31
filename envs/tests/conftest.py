import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def check_obs(env, obs):
    """The observation has exactly the declared keys, each inside its space."""
    assert set(obs) == set(env.obs_space), (sorted(obs), sorted(env.obs_space))
    for key, space in env.obs_space.items():
        value = np.asarray(obs[key])
        assert value.dtype == space.dtype, (key, value.dtype, space.dtype)
        assert space.contains(value), (key, value.shape, space)


def random_action(env, rng):
    action = {key: space.sample(rng) for key, space in env.act_space.items() if key != "reset"}
    return {**action, "reset": False}


def run_episode(env, rng, max_steps=100_000):
    """Resets, steps random actions until is_last; returns the list of observations."""
    obs = env.step({**random_action(env, rng), "reset": True})
    check_obs(env, obs)
    assert obs["is_first"] and not obs["is_last"] and obs["reward"] == 0
    episode = [obs]
    for _ in range(max_steps):
        obs = env.step(random_action(env, rng))
        episode.append(obs)
        assert not obs["is_first"]
        if obs["is_last"]:
            check_obs(env, obs)
            return episode
    raise AssertionError(f"no episode end within {max_steps} steps")
