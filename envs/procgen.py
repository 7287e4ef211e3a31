"""ProcGen (spec 6.8) through procgen's gym3 interface: hard distribution, unlimited levels, 15 actions.

At 64x64 the image is procgen's own observation; at any other size (the official 96x96) it is the
512x512 render of the step's info, resized with PIL bilinear. No action repeat. Every episode end
counts as terminal, as in the official code (procgen's time limits included); only the optional
`length` cap (short test episodes) ends an episode as is_last alone.
gym3 starts the next episode by itself: the step that ends an episode already shows its first frame.
"""
import numpy as np
from PIL import Image

from envs.base import Env, step_spaces
from spaces import Space

NATIVE_SIZE = (64, 64)  # procgen's observation; other sizes come from the high-resolution render
NUM_ACTIONS = 15


class ProcGen(Env):
    def __init__(self, game: str, size: tuple = (96, 96), length: int | None = None, seed: int = 0):
        self.game = game
        self.size = tuple(size)
        self.length = length
        self.from_render = self.size != NATIVE_SIZE
        # The official env draws a random procgen seed; ours come from `seed` so runs are reproducible.
        self.rng = np.random.default_rng(seed)
        self.env = self._build()
        self.done = True
        self.steps = 0
        self.env_at_first = True  # gym3 is at an episode's first frame: nothing to cut short

    def _build(self):
        from procgen import ProcgenGym3Env

        options = dict(render_mode="rgb_array") if self.from_render else {}
        # num_levels=0: unlimited levels, the gym env's default that the official runs use.
        env = ProcgenGym3Env(num=1, env_name=self.game, distribution_mode="hard", num_levels=0, start_level=0,
                             rand_seed=int(self.rng.integers(0, 2**31)), **options)
        assert env.ac_space.eltype.n == NUM_ACTIONS, env.ac_space
        return env

    @property
    def obs_space(self):
        return {"image": Space(np.uint8, (*self.size, 3)), **step_spaces()}

    @property
    def act_space(self):
        return {"action": Space(np.int32, (), 0, NUM_ACTIONS), "reset": Space(bool)}

    def step(self, action):
        if action["reset"] or self.done:
            if not self.env_at_first:  # gym3 cannot end an episode early: start a fresh env
                self.env.close()
                self.env = self._build()
            self.done = False
            self.steps = 0
            self.env_at_first = True
            return self._obs(0.0, is_first=True)
        self.env.act(np.array([int(action["action"])], np.int32))
        reward, _, first = self.env.observe()
        self.steps += 1
        self.env_at_first = bool(first[0])  # the episode ended; the image is already the next one's first
        cut = self.length is not None and self.steps >= self.length
        self.done = self.env_at_first or cut
        return self._obs(float(reward[0]), is_last=self.done, is_terminal=self.env_at_first)

    def _obs(self, reward, is_first=False, is_last=False, is_terminal=False):
        return {
            "image": self._image(),
            "reward": np.float32(reward),
            "is_first": is_first,
            "is_last": is_last,
            "is_terminal": is_terminal,
        }

    def _image(self):
        if not self.from_render:
            return self.env.observe()[1]["rgb"][0]  # (64, 64, 3)
        render = self.env.get_info()[0]["rgb"]  # (512, 512, 3)
        resized = Image.fromarray(render).resize((self.size[1], self.size[0]), Image.BILINEAR)
        return np.asarray(resized)  # (*size, 3)

    def close(self):
        self.env.close()
