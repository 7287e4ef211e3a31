"""Atari 2600 through ale-py's ALEInterface, with the official preprocessing (spec 6.3).

atari200m: 96x96 gray, sticky actions 0.25, all 18 actions.
atari100k: 64x64 RGB, no sticky actions, the game's minimal action set.
Both: action repeat 4 with summed reward, max over the last two frames, PIL bilinear
resize, up to 30 no-ops at reset, 108,000-frame cap, unclipped reward, lives ignored.
"""
import numpy as np
from PIL import Image

from envs.base import Env, step_spaces
from spaces import Space

# Luminance weights of the official gray conversion.
GRAY_WEIGHTS = np.array([0.299, 0.587, 1 - (0.299 + 0.587)])
POOLING = 2  # frames max-pooled into one observation


class Atari(Env):
    def __init__(
        self,
        game: str,
        size: tuple = (96, 96),
        gray: bool = True,
        sticky: bool = True,
        all_actions: bool = True,
        repeat: int = 4,
        noops: int = 30,
        length: int = 108_000,
        seed: int = 0,
    ):
        import ale_py
        import ale_py.roms

        rom = ale_py.roms.get_rom_path(game)
        if rom is None:
            valid = sorted(ale_py.roms.get_all_rom_ids())
            raise ValueError(f"ale-py has no ROM for {game!r}; valid: {valid}")
        self.size = tuple(size)
        self.gray = gray
        self.repeat = repeat
        self.noops = noops
        self.length = length
        # The official code draws a fresh random ALE seed per env (seed=None); we derive the
        # ALE seed and the no-op counts from `seed` so that runs are reproducible.
        self.rng = np.random.default_rng(seed)
        self.ale = ale_py.ALEInterface()
        self.ale.setLoggerMode(ale_py.LoggerMode.Error)
        self.ale.setInt("random_seed", int(self.rng.integers(0, 2**31)))
        # Set before loadROM: ALE reads its settings when the ROM is loaded.
        self.ale.setFloat("repeat_action_probability", 0.25 if sticky else 0.0)
        self.ale.loadROM(rom)
        actions = self.ale.getLegalActionSet() if all_actions else self.ale.getMinimalActionSet()
        self.actions = list(actions)
        self.noop = ale_py.Action.NOOP  # no-ops at reset are NOOP whatever the action set
        height, width = self.ale.getScreenDims()
        self.frames = [np.zeros((height, width, 3), np.uint8) for _ in range(POOLING)]  # (210, 160, 3) each
        self.frames_played = 0
        self.done = True

    @property
    def obs_space(self):
        channels = 1 if self.gray else 3
        return {"image": Space(np.uint8, (*self.size, channels)), **step_spaces()}

    @property
    def act_space(self):
        return {"action": Space(np.int32, (), 0, len(self.actions)), "reset": Space(bool)}

    def step(self, action):
        if action["reset"] or self.done:
            self._reset()
            self.done = False
            return self._obs(0.0, is_first=True)
        ale_action = self.actions[int(action["action"])]
        reward = 0.0
        last = False
        for frame in range(self.repeat):
            reward += self.ale.act(ale_action)
            self.frames_played += 1
            if frame >= self.repeat - POOLING:
                self._grab_frame()
            last = self.ale.game_over() or self.frames_played >= self.length
            if last:
                break
        self.done = last
        return self._obs(reward, is_last=last)

    def _reset(self):
        self.ale.reset_game()
        for _ in range(self.rng.integers(self.noops + 1)):
            self.ale.act(self.noop)
            if self.ale.game_over():
                self.ale.reset_game()
        self.frames_played = 0
        self._grab_frame()
        # Both pooling buffers start as the first frame (the e3f0224 fix).
        for frame in self.frames[1:]:
            np.copyto(frame, self.frames[0])

    def _grab_frame(self):
        # frames[0] is the newest frame; reuse the oldest buffer for it.
        self.frames.insert(0, self.frames.pop())
        self.ale.getScreenRGB(self.frames[0])

    def _obs(self, reward, is_first=False, is_last=False):
        image = np.max(self.frames, axis=0)  # (210, 160, 3)
        height, width = self.size
        image = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))  # (H, W, 3)
        if self.gray:
            # Truncating cast, as the official code does.
            image = (image * GRAY_WEIGHTS).sum(-1).astype(np.uint8)[:, :, None]  # (H, W, 1)
        return {
            "image": image,
            "reward": np.float32(reward),
            "is_first": is_first,
            "is_last": is_last,
            # The official code marks every episode end terminal, also the 108,000-frame
            # cut (spec 6.3, atari.py:176); we follow it so returns and value targets match.
            "is_terminal": is_last,
        }
