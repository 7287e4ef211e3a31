import functools

import numpy as np

import envs
from envs.parallel import BatchEnv
from envs.tests.fakes import CountingEnv


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
        assert batch.step(actions(2, reset=True))["vector"][:, 0].tolist() == [0, 0]
        assert batch.step(actions(2))["vector"][:, 0].tolist() == [1, 1]
        obs = batch.step(actions(2))  # the second env crashes here
        assert marker.exists()
        # The crashed slot starts a fresh episode; the healthy env goes on.
        assert obs["vector"][:, 0].tolist() == [2, 0] and obs["is_first"].tolist() == [False, True]
        assert obs["reward"].tolist() == [1.0, 0.0]
        assert batch.step(actions(2))["vector"][:, 0].tolist() == [3, 1]
        assert [worker.restarts for worker in batch.envs] == [0, 1]
    finally:
        batch.close()
    assert not any(worker.process.is_alive() for worker in batch.envs)


def test_worker_exception_is_restarted(tmp_path):
    check_restart(tmp_path, "raise")


def test_worker_death_is_restarted(tmp_path):
    check_restart(tmp_path, "exit")
