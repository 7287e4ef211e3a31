"""Any installed Gymnasium environment by id, e.g. `CartPole-v1` (not an official suite).

Box observations become `image` when they are 3-D uint8, else a flat float32 `vector`.
Discrete actions are an int `action`; Box actions a float `action` in [-1, 1], clipped and
rescaled to the bounds. terminated -> is_terminal; truncated (time limit) -> is_last only.
"""
import numpy as np

from envs.base import Env, step_spaces
from spaces import Space

LIST_IDS_HINT = "list them with `python -c 'import gymnasium; gymnasium.pprint_registry()'`"


class Gym(Env):
    def __init__(self, env_id: str, seed: int = 0, **make_kwargs):
        """make_kwargs go to gymnasium.make, e.g. max_episode_steps=50."""
        import gymnasium

        if env_id not in gymnasium.registry:
            raise ValueError(f"{env_id!r} is not registered in Gymnasium; {LIST_IDS_HINT}")
        self.env = gymnasium.make(env_id, **make_kwargs)
        self.seed = seed
        obs_space, act_space = self.env.observation_space, self.env.action_space
        if not isinstance(obs_space, gymnasium.spaces.Box):
            raise ValueError(f"{env_id}: only Box observations are supported, not {obs_space}")
        self.is_image = len(obs_space.shape) == 3 and obs_space.dtype == np.uint8
        self.obs_shape = obs_space.shape if self.is_image else (int(np.prod(obs_space.shape)),)
        self.discrete = isinstance(act_space, gymnasium.spaces.Discrete)
        if self.discrete:
            self.action_start, self.num_actions = int(act_space.start), int(act_space.n)
        elif isinstance(act_space, gymnasium.spaces.Box):
            self.action_low, self.action_high = act_space.low, act_space.high
        else:
            raise ValueError(f"{env_id}: only Discrete or Box actions are supported, not {act_space}")
        self.done = True

    @property
    def obs_space(self):
        key = "image" if self.is_image else "vector"
        dtype = np.uint8 if self.is_image else np.float32
        return {key: Space(dtype, self.obs_shape), **step_spaces()}

    @property
    def act_space(self):
        if self.discrete:
            action = Space(np.int32, (), 0, self.num_actions)
        else:
            action = Space(np.float32, self.action_low.shape, -1.0, 1.0)
        return {"action": action, "reset": Space(bool)}

    def step(self, action):
        if action["reset"] or self.done:
            self.done = False
            # Seed only the first reset; later resets continue the seeded generator.
            obs, _ = self.env.reset(seed=self.seed)
            self.seed = None
            return self._obs(obs, 0.0, is_first=True)
        if self.discrete:
            env_action = self.action_start + int(action["action"])
        else:
            unit = np.clip(np.asarray(action["action"], np.float64), -1.0, 1.0)
            env_action = self.action_low + (unit + 1.0) / 2.0 * (self.action_high - self.action_low)
            env_action = env_action.astype(self.env.action_space.dtype)
        obs, reward, terminated, truncated, _ = self.env.step(env_action)
        self.done = terminated or truncated
        return self._obs(obs, reward, is_last=self.done, is_terminal=terminated)

    def _obs(self, obs, reward, is_first=False, is_last=False, is_terminal=False):
        if self.is_image:
            key, value = "image", np.asarray(obs, np.uint8)  # (H, W, C)
        else:
            key, value = "vector", np.asarray(obs, np.float32).reshape(-1)  # (D,)
        return {
            key: value,
            "reward": np.float32(reward),
            "is_first": is_first,
            "is_last": is_last,
            "is_terminal": bool(is_terminal),
        }

    def close(self):
        self.env.close()
