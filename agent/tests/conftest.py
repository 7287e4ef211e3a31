import numpy as np
import pytest

from spaces import Space

STEP_SPACES = dict(reward=Space(np.float32), is_first=Space(bool), is_last=Space(bool), is_terminal=Space(bool))


def make_spaces(obs: str, act: str):
    """Observation and action spaces for the test set-ups: obs 'image' or 'vector', act 'discrete' or 'continuous'."""
    obs_space = {"image": Space(np.uint8, (64, 64, 3))} if obs == "image" else {"vector": Space(np.float32, (24,))}
    obs_space.update(STEP_SPACES)
    if act == "discrete":
        act_space = {"action": Space(np.int32, (), 0, 6)}
    else:
        act_space = {"action": Space(np.float32, (6,), -1.0, 1.0)}
    return obs_space, act_space


def random_batch(obs_space, act_space, config, batch=16, length=65, seed=0):
    """A replay-shaped batch (B, T+1, ...) of random data, including the stored context latents."""
    rng = np.random.default_rng(seed)
    data = {}
    for key, space in obs_space.items():
        if space.dtype == np.uint8:
            data[key] = rng.integers(0, 256, (batch, length, *space.shape), dtype=np.uint8)
        elif key not in STEP_SPACES:
            data[key] = rng.normal(size=(batch, length, *space.shape)).astype(np.float32)
    for key, space in act_space.items():
        if space.discrete:
            data[key] = rng.integers(0, space.classes, (batch, length)).astype(np.int32)
        else:
            data[key] = rng.uniform(-1, 1, (batch, length, *space.shape)).astype(np.float32)
    data["reward"] = rng.normal(size=(batch, length)).astype(np.float32)
    data["is_first"] = rng.random((batch, length)) < 0.02
    data["is_terminal"] = rng.random((batch, length)) < 0.01
    data["is_last"] = data["is_terminal"].copy()
    data["dyn/deter"] = rng.normal(size=(batch, length, config.deter)).astype(np.float32) * 0.1
    data["dyn/stoch"] = rng.integers(0, config.classes, (batch, length, config.stoch)).astype(np.uint8)
    return data


@pytest.fixture
def spaces():
    return make_spaces
