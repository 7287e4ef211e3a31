import functools
import os
import pathlib

import numpy as np

import envs
from envs.base import Env, step_spaces
from envs.parallel import BatchEnv
from spaces import Space


class CountingEnv(Env):
    """Observation = steps since reset. Crashes once at step `crash_at` when `marker` does not
    exist yet (then creates it, so the restarted env runs normally)."""

    def __init__(self, crash_at=None, how="raise", marker=None):
        self.crash_at, self.how, self.marker = crash_at, how, marker
        self.count = 0

    @property
    def obs_space(self):
        return {"count": Space(np.int32), **step_spaces()}

    @property
    def act_space(self):
        return {"action": Space(np.int32, (), 0, 2), "reset": Space(bool)}

    def step(self, action):
        self.count = 0 if action["reset"] else self.count + 1
        if self.count == self.crash_at and not pathlib.Path(self.marker).exists():
            pathlib.Path(self.marker).touch()
            if self.how == "exit":
                os._exit(3)  # the process dies without a word
            raise RuntimeError("engine crashed")
        first = bool(action["reset"])
        return {"count": np.int32(self.count), "reward": np.float32(0.0 if first else 1.0),
                "is_first": first, "is_last": False, "is_terminal": False}  # fmt: skip


def actions(n, reset=False):
    return {"action": np.zeros(n, np.int32), "reset": np.full(n, reset)}


def test_in_process_batch():
    make_fns = [functools.partial(envs.make, "gym", "CartPole-v1", seed=seed) for seed in (0, 1)]
    batch = BatchEnv(make_fns, parallel=False)
    assert batch.obs_space["vector"].shape == (4,)
    obs = batch.step(actions(2, reset=True))
    assert obs["vector"].shape == (2, 4) and obs["is_first"].tolist() == [True, True]
    obs = batch.step(actions(2))
    assert obs["reward"].dtype == np.float32 and obs["is_first"].tolist() == [False, False]
    batch.close()


def check_restart(tmp_path, how):
    marker = tmp_path / "crashed"
    make_fns = [
        functools.partial(CountingEnv),
        functools.partial(CountingEnv, crash_at=2, how=how, marker=str(marker)),
    ]
    batch = BatchEnv(make_fns, parallel=True)
    try:
        assert batch.step(actions(2, reset=True))["count"].tolist() == [0, 0]
        assert batch.step(actions(2))["count"].tolist() == [1, 1]
        obs = batch.step(actions(2))  # the second env crashes here
        assert marker.exists()
        # The crashed slot starts a fresh episode; the healthy env goes on.
        assert obs["count"].tolist() == [2, 0] and obs["is_first"].tolist() == [False, True]
        assert obs["reward"].tolist() == [1.0, 0.0]
        assert batch.step(actions(2))["count"].tolist() == [3, 1]
        assert [worker.restarts for worker in batch.envs] == [0, 1]
    finally:
        batch.close()
    assert not any(worker.process.is_alive() for worker in batch.envs)


def test_worker_exception_is_restarted(tmp_path):
    check_restart(tmp_path, "raise")


def test_worker_death_is_restarted(tmp_path):
    check_restart(tmp_path, "exit")
