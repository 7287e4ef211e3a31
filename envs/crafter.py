"""Crafter (spec 6.5): 64x64 RGB, 17 actions, tasks `reward` and `noreward`.

Death ends the episode as terminal; crafter's 10,000-step limit ends it as is_last only.
`log/reward` is crafter's reward also for `noreward`, and `log/achievement_<name>` the
running count of each of the 22 achievements, so its value at is_last is the episode's count.
"""
import collections

import numpy as np

from envs.base import Env, step_spaces
from spaces import Space

ACHIEVEMENTS = (
    "collect_coal", "collect_diamond", "collect_drink", "collect_iron", "collect_sapling",
    "collect_stone", "collect_wood", "defeat_skeleton", "defeat_zombie", "eat_cow", "eat_plant",
    "make_iron_pickaxe", "make_iron_sword", "make_stone_pickaxe", "make_stone_sword",
    "make_wood_pickaxe", "make_wood_sword", "place_furnace", "place_plant", "place_stone",
    "place_table", "wake_up",
)  # fmt: skip
NUM_ACTIONS = 17


class InsertionOrderedSet:
    """The set operations crafter's World uses on a chunk's objects, iterated in insertion order."""

    def __init__(self):
        self.items = {}

    def add(self, item):
        self.items[item] = None

    def remove(self, item):
        del self.items[item]

    def __contains__(self, item):
        return item in self.items

    def __iter__(self):  # like a set, mutation while iterating raises; crafter copies to a list first
        return iter(self.items)

    def __len__(self):
        return len(self.items)


def keep_chunks_in_insertion_order(world):
    """A seed alone does not make crafter reproducible: its World keeps each chunk's objects in a
    set, hashed by memory address, and despawning picks the n-th creature of that set with the
    world's random state, so which cow or zombie goes depends on where objects were allocated (two
    runs with seed 0 part ways within a few hundred steps). The same choice from an insertion-ordered
    set keeps crafter's dynamics and makes a seeded run repeat exactly. Crafter's files stay as
    published: the world's reset is wrapped here, because each reset builds new chunk sets."""
    reset = world.reset

    def reset_with_ordered_chunks(seed=None):
        reset(seed=seed)
        world._chunks = collections.defaultdict(InsertionOrderedSet)

    world.reset = reset_with_ordered_chunks
    world._chunks = collections.defaultdict(InsertionOrderedSet)


class Crafter(Env):
    def __init__(self, task: str = "reward", size: tuple = (64, 64), length: int = 10_000, seed: int = 0):
        import crafter

        if task not in ("reward", "noreward"):
            raise ValueError(f"Unknown Crafter task {task!r}; valid: ['reward', 'noreward']")
        # Official runs pass seed=None (random worlds); we pass the run's seed for reproducibility.
        self.env = crafter.Env(size=tuple(size), reward=task == "reward", length=length, seed=seed)
        keep_chunks_in_insertion_order(self.env._world)
        assert tuple(crafter.constants.achievements) == ACHIEVEMENTS, crafter.constants.achievements
        self.size = tuple(size)
        self.done = True

    @property
    def obs_space(self):
        logs = {f"log/achievement_{name}": Space(np.int32) for name in ACHIEVEMENTS}
        image = Space(np.uint8, (*self.size, 3))
        return {"image": image, **step_spaces(), "log/reward": Space(np.float32), **logs}

    @property
    def act_space(self):
        return {"action": Space(np.int32, (), 0, NUM_ACTIONS), "reset": Space(bool)}

    def step(self, action):
        if action["reset"] or self.done:
            self.done = False
            image = self.env.reset()
            return self._obs(image, 0.0, 0.0, dict.fromkeys(ACHIEVEMENTS, 0), is_first=True)
        image, reward, self.done, info = self.env.step(int(action["action"]))
        dead = info["discount"] == 0
        return self._obs(image, reward, info["reward"], info["achievements"],
                         is_last=self.done, is_terminal=dead)

    def _obs(self, image, reward, crafter_reward, achievements, is_first=False, is_last=False,
             is_terminal=False):
        return {
            "image": image,  # (64, 64, 3)
            "reward": np.float32(reward),
            "is_first": is_first,
            "is_last": is_last,
            "is_terminal": is_terminal,
            "log/reward": np.float32(crafter_reward),
            **{f"log/achievement_{name}": np.int32(achievements[name]) for name in ACHIEVEMENTS},
        }
