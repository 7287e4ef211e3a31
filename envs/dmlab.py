"""DeepMind Lab's DMLab-30 levels through `deepmind_lab.Lab` (spec 6.6).

deepmind_lab has no wheel: it is built from source with Bazel (containers/dmlab.def), so it
cannot run on the project's plain machines. 64x64 RGB, action repeat 4 inside the engine
(num_steps=4), the 15-action PopArt set, every episode end terminal (`episodic`), and for
language levels an `instr` vector embedding the instruction text.
"""
import functools
import re
import zlib

import numpy as np

from envs.base import Env, step_spaces
from spaces import Space

# A DMLab action is 7 ints: look left/right (pixels per frame), look down/up (pixels per
# frame), strafe left/right, move back/forward, fire, jump, crouch.
POPART_ACTIONS = {
    "forward": (0, 0, 0, 1, 0, 0, 0),
    "backward": (0, 0, 0, -1, 0, 0, 0),
    "strafe_left": (0, 0, -1, 0, 0, 0, 0),
    "strafe_right": (0, 0, 1, 0, 0, 0, 0),
    "look_left_small": (-10, 0, 0, 0, 0, 0, 0),
    "look_right_small": (10, 0, 0, 0, 0, 0, 0),
    "look_left_large": (-60, 0, 0, 0, 0, 0, 0),
    "look_right_large": (60, 0, 0, 0, 0, 0, 0),
    "look_down": (0, 10, 0, 0, 0, 0, 0),
    "look_up": (0, -10, 0, 0, 0, 0, 0),
    "forward_look_left_small": (-10, 0, 0, 1, 0, 0, 0),
    "forward_look_right_small": (10, 0, 0, 1, 0, 0, 0),
    "forward_look_left_large": (-60, 0, 0, 1, 0, 0, 0),
    "forward_look_right_large": (60, 0, 0, 1, 0, 0, 0),
    "fire": (0, 0, 0, 0, 1, 0, 0),
}

# Instruction embedding of the language levels: lower-cased tokens hashed into buckets,
# each a fixed random Gaussian vector (seed 0), 32 tokens padded with bucket 0.
TOKEN_PATTERN = re.compile(r"([A-Za-z_]+|[^A-Za-z_ ]+)")
INSTR_TOKENS = 32
INSTR_EMBED = 32
INSTR_BUCKETS = 64 * 1024

INSTALL_HINT = (
    "deepmind_lab is not installed. It has no PyPI wheel and is built from source with Bazel; "
    "build the container recipe containers/dmlab.def and run inside it."
)


@functools.cache
def instruction_embeddings() -> np.ndarray:
    return np.random.default_rng(seed=0).normal(0.0, 1.0, (INSTR_BUCKETS, INSTR_EMBED)).astype(np.float32)


def embed_instruction(text: str) -> np.ndarray:
    # Cut to 32 tokens so the vector keeps its size (the official code assumes short texts).
    tokens = TOKEN_PATTERN.findall(text.lower())[:INSTR_TOKENS]
    buckets = [zlib.crc32(token.encode("utf-8")) % INSTR_BUCKETS for token in tokens]
    buckets += [0] * (INSTR_TOKENS - len(buckets))
    return instruction_embeddings()[buckets].reshape(-1)  # (INSTR_TOKENS * INSTR_EMBED,)


class DMLab(Env):
    def __init__(
        self,
        level: str,
        mode: str = "train",
        size: tuple = (64, 64),
        repeat: int = 4,
        episodic: bool = True,
        seed: int = 0,
    ):
        """`seed` seeds the episode seeds; the official code derives it per env from the run
        seed and the env index, so callers pass a different seed for every env."""
        try:
            import deepmind_lab
        except ImportError as error:
            raise ImportError(INSTALL_HINT) from error
        self.size = tuple(size)
        self.repeat = repeat
        self.episodic = episodic
        self.text = level.startswith("language")
        self.rng = np.random.RandomState(seed)
        height, width = self.size
        config = {"height": height, "width": width, "logLevel": "WARN"}
        if mode == "train":
            # The two `_test` levels have `_train` twins for training.
            if level.endswith("_test"):
                level = level.removesuffix("_test") + "_train"
        elif mode == "eval":
            config.update(allowHoldOutLevels="true", mixerSeed=0x600D5EED)
        else:
            raise ValueError(f"DMLab mode must be 'train' or 'eval', not {mode!r}")
        observations = ["RGB_INTERLEAVED", "INSTR"] if self.text else ["RGB_INTERLEAVED"]
        self.env = deepmind_lab.Lab(
            level="contributed/dmlab30/" + level,
            observations=observations,
            config={key: str(value) for key, value in config.items()},
            renderer="software",
        )
        self.actions = [np.array(vector, np.intc) for vector in POPART_ACTIONS.values()]
        self.last_obs = None
        self.done = True

    @property
    def obs_space(self):
        spaces = {"image": Space(np.uint8, (*self.size, 3))}
        if self.text:
            spaces["instr"] = Space(np.float32, (INSTR_TOKENS * INSTR_EMBED,))
        return {**spaces, **step_spaces()}

    @property
    def act_space(self):
        return {"action": Space(np.int32, (), 0, len(self.actions)), "reset": Space(bool)}

    def step(self, action):
        if action["reset"] or self.done:
            self.env.reset(seed=int(self.rng.randint(0, 2**31 - 1)))
            self.done = False
            return self._obs(0.0, is_first=True)
        reward = self.env.step(self.actions[int(action["action"])], num_steps=self.repeat)
        self.done = not self.env.is_running()
        return self._obs(reward, is_last=self.done)

    def _obs(self, reward, is_first=False, is_last=False):
        # A finished episode has no observations: repeat the last ones.
        if not self.done:
            raw = self.env.observations()
            self.last_obs = {"image": raw["RGB_INTERLEAVED"]}  # (H, W, 3)
            if self.text:
                self.last_obs["instr"] = embed_instruction(raw["INSTR"])
        return {
            **self.last_obs,
            "reward": np.float32(reward),
            "is_first": is_first,
            "is_last": is_last,
            "is_terminal": is_last and self.episodic,
        }

    def close(self):
        self.env.close()
