import pytest

from agent.config import make_config
from training.ratio import Ratio


@pytest.mark.parametrize("train_ratio", [32, 256, 512, 1024, 1000, 4096, 100.5])
def test_updates_per_agent_step_match_train_ratio(train_ratio):
    config = make_config("1m", train_ratio=train_ratio)
    ratio = Ratio.from_config(config)
    steps = 200_000
    updates = [ratio(step) for step in range(1, steps + 1)]
    per_step = train_ratio / (config.batch_size * config.batch_length)
    # One update at the first call, then exactly per_step for every later step.
    assert updates[0] == 1
    assert sum(updates) == 1 + int(per_step * (steps - 1))
    assert abs(sum(updates) / steps - per_step) < 1e-4
    # Credit carries over: the updates never bunch up by more than one per step beyond the rate.
    assert max(updates) <= int(train_ratio / 1024) + 1


def test_one_update_every_32_steps_at_ratio_32():
    ratio = Ratio(32 / 1024)
    granted = [step for step in range(1, 200) if ratio(step)]
    assert granted == [1, 33, 65, 97, 129, 161, 193]


def test_state_round_trip_continues_the_schedule():
    straight, resumed = Ratio(0.3), Ratio(0.3)
    first = [straight(step) for step in range(100)]
    assert [resumed(step) for step in range(50)] == first[:50]
    restored = Ratio(0.3)
    restored.load_state_dict(resumed.state_dict())
    assert [restored(step) for step in range(50, 100)] == first[50:]


def test_zero_ratio_never_trains():
    ratio = Ratio(0.0)
    assert sum(ratio(step) for step in range(1000)) == 0
