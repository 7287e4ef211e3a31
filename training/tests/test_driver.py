
from agent.config import make_config
from envs.parallel import BatchEnv
from envs.tests.fakes import CountingEnv
from training.driver import Driver
from training.tests.fakes import FakeAgent


def test_driver_batches_resets_and_reports_episodes():
    envs = [CountingEnv(3), CountingEnv(5)]
    batch_env = BatchEnv([lambda env=env: env for env in envs], parallel=False)
    agent = FakeAgent(batch_env.obs_space, {"action": batch_env.act_space["action"]}, make_config("1m"))
    driver = Driver(batch_env, agent)
    calls, transitions, finished = [], [], []
    driver.on_step(lambda transition, index: (calls.append(("step", index)), transitions.append(transition)))
    driver.on_episode(lambda episode, index: (calls.append(("episode", index)), finished.append((index, episode))))
    for _ in range(12):
        driver.step()
    for transition in transitions:
        assert transition["vector"].shape == (2,) and transition["action"].shape == ()
        assert transition["dyn/deter"].shape == (8,)
        assert not any(key.startswith("log/") for key in transition)
        if transition["is_last"]:  # the stored action of a last step is zeroed, as the next one sent is a reset
            assert transition["action"] == 0
    # Env by env: its step, then its episode if that step ended one.
    assert calls[:8] == [("step", 0), ("step", 1)] * 3 + [("step", 0), ("episode", 0)]
    # Env 0: reset + 3 steps = 4 transitions per episode, 3 episodes in 12 steps; env 1: 6 per episode.
    assert [index for index, _ in finished] == [0, 1, 0, 0, 1]
    for index, episode in finished:
        length = envs[index].length
        assert episode["episode/score"] == length
        assert episode["episode/length"] == length + 1
        assert episode["log/steps"] == length  # value at the last step

    # The first action and every action after is_last is a reset.
    received = envs[0].received
    assert [i for i, action in enumerate(received) if action["reset"]] == [0, 4, 8]
