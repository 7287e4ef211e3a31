import pytest

from agent.config import SIZES, Config, make_config, parse_value


def test_presets_follow_the_official_rule():
    # Spec 2.6: D = 8d, Hd = d, C = c = d/16.
    for name, preset in SIZES.items():
        d = preset["units"]
        assert preset == dict(deter=8 * d, hidden=d, classes=d // 16, depth=d // 16, units=d), name
    assert Config().deter == SIZES["200m"]["deter"]  # defaults = size200m


def test_overrides_apply_after_the_preset():
    config = make_config("12m", deter=1024, train_ratio=512.0, loss_scales={"rep": 0.2})
    assert (config.deter, config.hidden, config.train_ratio) == (1024, 256, 512.0)
    assert config.loss_scales["rep"] == 0.2 and config.loss_scales["dyn"] == 1.0
    assert make_config("size50m").units == 512


def test_parse_value_types():
    assert parse_value("steps", "1e6") == 1_000_000
    assert parse_value("lr", "3e-4") == 3e-4
    assert parse_value("actor_unimix", "false") is False
    assert parse_value("cnn_mults", "[2, 3]") == (2, 3)
    assert parse_value("task", "walker_walk") == "walker_walk"
    with pytest.raises(ValueError, match="needs a int"):
        parse_value("steps", "1.5")
    with pytest.raises(ValueError, match="needs a bool"):
        parse_value("parallel_envs", "maybe")
    with pytest.raises(KeyError, match="Did you mean train_ratio"):
        parse_value("train_ration", "32")


def test_unknown_loss_scale():
    with pytest.raises(KeyError, match="unknown loss scale"):
        make_config("1m", loss_scales={"reconstruction": 1.0})
