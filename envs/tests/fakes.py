"""A fake of the MineRL 0.4.4 gym env that `envs.minecraft.make_minerl_env` builds.

Same observation structure (nested dicts: pov, inventory, equipped_items.mainhand.type,
life_stats) and the gym 0.x `reset()` / `step() -> obs, reward, done, info` calls. Tests
script what the next observations hold through `inventory`, `life`, `done` and `info`.
"""
import numpy as np

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
