"""Fakes of the envs package's tests, in one place: a counting env, and small stand-ins for the
engines that cannot be installed on the project's machines (DeepMind Lab, MineRL 0.4.4).

CountingEnv: observations count the steps since the reset, so tests can follow what happened.
deepmind_lab_module(): a `deepmind_lab` module whose Lab class has the parts the adapter uses.
FakeMineRLEnv: the MineRL 0.4.4 gym env that `envs.minecraft.make_minerl_env` builds. Same observation
structure (nested dicts: pov, inventory, equipped_items.mainhand.type, life_stats) and the gym 0.x
`reset()` / `step() -> obs, reward, done, info` calls. Tests script what the next observations hold
through `inventory`, `life`, `done` and `info`.
"""
import os
import pathlib
import types

import numpy as np

from envs.base import Env, step_spaces
from spaces import Space as EnvSpace


class CountingEnv(Env):
    """Episodes of `length` steps after the reset step (None: endless); reward 1 per step; the vector is
    (steps since reset, length) and `log/steps` the same count. Crashes once at step `crash_at` when the
    file `marker` does not exist yet (then creates it, so the restarted env runs normally), by raising
    or by ending the process (`how="exit"`)."""

    def __init__(self, length=None, crash_at=None, how="raise", marker=None):
        self.length, self.crash_at, self.how, self.marker = length, crash_at, how, marker
        self.steps = 0
        self.received = []  # actions seen, for the tests

    @property
    def obs_space(self):
        return {"vector": EnvSpace(np.float32, (2,)), **step_spaces(), "log/steps": EnvSpace(np.int64)}

    @property
    def act_space(self):
        return {"action": EnvSpace(np.int32, (), 0, 3), "reset": EnvSpace(bool)}

    def step(self, action):
        self.received.append(dict(action))
        self.steps = 0 if action["reset"] else self.steps + 1
        if self.steps == self.crash_at and not pathlib.Path(self.marker).exists():
            pathlib.Path(self.marker).touch()
            if self.how == "exit":
                os._exit(3)  # the process dies without a word
            raise RuntimeError("engine crashed")
        first = bool(action["reset"])
        done = self.steps == self.length
        return {
            "vector": np.array([self.steps, self.length or 0], np.float32),
            "reward": np.float32(0.0 if first else 1.0),
            "is_first": first,
            "is_last": done,
            "is_terminal": done,
            "log/steps": np.int64(self.steps),
        }


LABS = []  # every FakeLab built, for the tests to inspect


def deepmind_lab_module() -> types.ModuleType:
    """A stand-in for the `deepmind_lab` module: `Lab` and `created` (every Lab built, emptied now)."""
    LABS.clear()
    module = types.ModuleType("deepmind_lab")
    module.Lab, module.created = FakeLab, LABS
    return module


class FakeLab:
    """The `deepmind_lab` module's Lab (the parts the adapter uses). Each episode lasts `episode_frames`
    frames; the reward of a step is the number of frames stepped, and the image's value counts the steps."""

    episode_frames = 12

    def __init__(self, level, observations, config=None, renderer="software", level_cache=None):
        assert all(isinstance(value, str) for value in config.values()), config
        self.level, self.observation_names, self.config, self.renderer = level, observations, config, renderer
        self.actions, self.seeds = [], []
        self.running = False
        LABS.append(self)

    def reset(self, episode=-1, seed=None):
        self.seeds.append(seed)
        self.frames = 0
        self.running = True

    def step(self, action, num_steps=1):
        assert self.running and action.dtype == np.intc and action.shape == (7,), action
        self.actions.append((tuple(action), num_steps))
        steps = min(num_steps, self.episode_frames - self.frames)
        self.frames += steps
        self.running = self.frames < self.episode_frames
        return float(steps)

    def is_running(self):
        return self.running

    def observations(self):
        assert self.running, "DeepMind Lab has no observations after the episode ended"
        height, width = int(self.config["height"]), int(self.config["width"])
        observations = {"RGB_INTERLEAVED": np.full((height, width, 3), self.frames, np.uint8)}
        if "INSTR" in self.observation_names:
            observations["INSTR"] = "Pick the red balloon."
        return observations

    def close(self):
        pass


ITEMS = (
    "air", "dirt", "log", "log2", "planks", "stick", "crafting_table", "wooden_pickaxe", "cobblestone",
    "stone_pickaxe", "iron_ore", "furnace", "iron_ingot", "iron_pickaxe", "diamond",
)  # fmt: skip
EQUIP_TYPES = ("air", "wooden_pickaxe", "stone_pickaxe", "iron_pickaxe", "other")


class Space:
    """Stands in for MineRL's Dict (`.spaces`, indexing) and Enum (`.values`) spaces."""

    def __init__(self, spaces=None, values=None):
        self.spaces = spaces or {}
        self.values = values

    def __getitem__(self, key):
        return self.spaces[key]


class FakeMineRLEnv:
    def __init__(self):
        self.observation_space = Space({
            "pov": Space(),
            "inventory": Space({item: Space() for item in ITEMS}),
            "equipped_items": Space({"mainhand": Space({"type": Space(values=np.array(EQUIP_TYPES))})}),
            "life_stats": Space({"life": Space(), "food": Space(), "air": Space()}),
        })  # fmt: skip
        self.actions = []
        self.resets = 0
        self.next_done = False
        self.next_info = {}

    def reset(self):
        self.resets += 1
        self.inventory = dict.fromkeys(ITEMS, 0)
        self.life, self.equipped = 20.0, "air"
        return self._obs()

    def step(self, action):
        self.actions.append(action)
        done, info = self.next_done, self.next_info
        self.next_done, self.next_info = False, {}
        return self._obs(), 0.0, done, info

    def close(self):
        pass

    def _obs(self):
        return {
            "pov": np.full((64, 64, 3), len(self.actions) % 256, np.uint8),
            "inventory": {item: np.array(count) for item, count in self.inventory.items()},
            "equipped_items": {"mainhand": {"type": self.equipped, "damage": 0, "maxDamage": 0}},
            "life_stats": {"life": np.array(self.life), "food": np.array(20.0), "air": np.array(300.0)},
        }
