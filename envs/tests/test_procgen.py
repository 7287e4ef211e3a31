import numpy as np
import pytest
from PIL import Image

import envs
from envs.registry import PROCGEN_GAMES
from envs.tests.conftest import check_obs, random_action, run_episode

pytest.importorskip("procgen")


def first_images(seed, steps=20):
    env = envs.make("procgen", "coinrun", seed=seed)
    images = [env.step({"action": 0, "reset": True})["image"]]
    images += [env.step({"action": 3 + step % 6, "reset": False})["image"] for step in range(steps)]
    env.close()
    return np.stack(images)  # (1 + steps, 96, 96, 3)


def test_settings():
    assert len(PROCGEN_GAMES) == 16
    env = envs.make("procgen", "coinrun")
    assert env.obs_space["image"].shape == (96, 96, 3)  # official size, from the render
    assert env.act_space["action"].classes == 15
    options = env.env.options
    assert options["distribution_mode"] == 1 and options["num_levels"] == 0  # hard mode, unlimited levels
    with pytest.raises(ValueError, match="procgen has no action repeat"):
        envs.make("procgen", "coinrun", repeat=4)


def test_image_is_the_render_resized_with_pil_bilinear():
    env = envs.make("procgen", "starpilot", seed=3)
    obs = env.step({"action": 0, "reset": True})
    check_obs(env, obs)
    render = env.env.get_info()[0]["rgb"]
    assert render.shape == (512, 512, 3)
    expected = np.asarray(Image.fromarray(render).resize((96, 96), Image.BILINEAR))
    assert np.array_equal(obs["image"], expected)


def test_native_size_uses_procgen_observation():
    env = envs.make("procgen", "coinrun", size=(64, 64))
    obs = env.step({"action": 0, "reset": True})
    check_obs(env, obs)
    assert np.array_equal(obs["image"], env.env.observe()[1]["rgb"][0])


def test_seeded_reset_is_reproducible():
    assert np.array_equal(first_images(seed=5), first_images(seed=5))
    assert not np.array_equal(first_images(seed=5), first_images(seed=6))


def test_every_episode_end_is_terminal(rng):
    env = envs.make("procgen", "coinrun", seed=0)
    episode = run_episode(env, rng, max_steps=1000)  # coinrun ends by itself within 1000 steps
    assert episode[-1]["is_last"] and episode[-1]["is_terminal"]
    assert env.step({**random_action(env, rng), "reset": False})["is_first"]  # the next episode begins


def test_length_cap_is_last_only_and_the_next_episode_is_fresh(rng):
    env = envs.make("procgen", "coinrun", length=10, seed=0)
    episode = run_episode(env, rng)
    assert len(episode) == 1 + 10
    assert not episode[-1]["is_terminal"]
    obs = env.step({**random_action(env, rng), "reset": True})
    assert obs["is_first"] and env.steps == 0


@pytest.mark.parametrize("game", PROCGEN_GAMES)
def test_every_game_builds_and_steps_with_the_official_settings(game, rng):
    env = envs.make("procgen", game, seed=0)
    obs = env.step({"action": 0, "reset": True})
    check_obs(env, obs)
    assert obs["image"].shape == (96, 96, 3) and env.act_space["action"].classes == 15
    for _ in range(20):
        obs = env.step({**random_action(env, rng), "reset": False})
        check_obs(env, obs)
    env.close()
