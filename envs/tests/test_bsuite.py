import urllib.error

import pytest

import envs
from envs import bsuite as bsuite_adapter
from envs.tests.conftest import check_obs, random_action, run_episode

bsuite = pytest.importorskip("bsuite")


def test_catch_settings_and_episode(rng):
    env = envs.make("bsuite", "catch")  # `/0` is appended
    assert env.bsuite_id == "catch/0"
    assert env.obs_space["vector"].shape == (50,)  # the 10x5 board, flattened
    assert env.act_space["action"].classes == 3
    episode = run_episode(env, rng)
    assert len(episode) == 1 + 9 and episode[-1]["is_terminal"]
    assert bsuite_adapter.episode_budget("catch") == 10_000


def test_open_seed_is_the_runs_seed():
    """catch leaves its seed to the caller (None in bsuite's sweep): the same run seed gives the same
    ball positions, another seed other ones."""
    def first_columns(seed):
        env = envs.make("bsuite", "catch/0", seed)
        return [int(env.step({"action": 0, "reset": True})["vector"].argmax()) for _ in range(20)]

    assert first_columns(3) == first_columns(3)
    assert first_columns(3) != first_columns(4)


def test_logged_rows_match_bsuites_own_logging(rng):
    """Our is_last `log/bsuite/*` rows equal what bsuite's Logging wrapper writes to its CSV."""
    from bsuite.utils.wrappers import Logging

    class Rows:
        def __init__(self):
            self.rows = []

        def write(self, data):
            self.rows.append(dict(data))

    env = envs.make("bsuite", "catch/0")
    # bsuite's wrapper sits between the adapter and the raw env and logs every episode.
    reference_rows = Rows()
    env.env = Logging(env.env, reference_rows, log_every=True)
    ours = []
    for _ in range(30):
        obs = env.step({"action": 0, "reset": True})
        while not obs["is_last"]:
            obs = env.step(random_action(env, rng))
        check_obs(env, obs)
        ours.append({key.removeprefix("log/bsuite/"): obs[key] for key in obs if key.startswith("log/")})
    assert ours == reference_rows.rows


def test_mnist_offline_fails_clearly(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("bsuite.utils.datasets.load_mnist", offline)
    with pytest.raises(RuntimeError, match="downloads MNIST"):
        envs.make("bsuite", "mnist/0")


def test_not_resumable():
    assert envs.SUITES["bsuite"].resumable is False
