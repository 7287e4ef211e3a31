"""Minecraft Diamond through MineRL 0.4.4 (spec 6.7).

minerl 0.4.4 builds the game with Gradle at install time and needs Java 8, so it only runs
inside containers/minecraft.def. The official code (embodied/envs/minecraft_flat.py) defines
its own MineRL env spec; `make_minerl_env` rebuilds it from MineRL's public handler API. The
adapter logic (25 actions, rewards, observations, episode ends) lives in `Minecraft` and talks
to the engine only through a gym-style `reset()` / `step(action) -> obs, reward, done, info`.

Not verified here (no engine): the handler names and signatures below were read from MineRL's
source, not run. `BreakSpeedMultiplier` needs the patched MineRL/Malmo build the official
Dockerfile installs (stock 0.4.4 has no such mission element); that MineRL ends the episode on
death; and that `equipped_items.mainhand.type` is an Enum space with `.values`.
"""
import numpy as np

from envs.base import Env, step_spaces
from spaces import Space

INSTALL_HINT = (
    "minerl is not installed. minerl 0.4.4 builds Minecraft with Gradle at install time and "
    "needs Java 8; build the container recipe containers/minecraft.def and run inside it."
)

# Fields of a MineRL action and their no-op values; every action sets all of them.
NOOP = {
    "camera": (0.0, 0.0), "forward": 0, "back": 0, "left": 0, "right": 0, "jump": 0, "sneak": 0,
    "attack": 0, "place": "none", "equip": "none", "craft": "none", "nearbyCraft": "none",
    "nearbySmelt": "none",
}  # fmt: skip
CAMERA_TURN = 15.0  # degrees per turn action

# The 25 actions of the diamond task: 12 basic moves, then crafting, placing and equipping.
DIAMOND_ACTIONS = {
    "noop": {},
    "attack": {"attack": 1},
    "turn_up": {"camera": (-CAMERA_TURN, 0.0)},
    "turn_down": {"camera": (CAMERA_TURN, 0.0)},
    "turn_left": {"camera": (0.0, -CAMERA_TURN)},
    "turn_right": {"camera": (0.0, CAMERA_TURN)},
    "forward": {"forward": 1},
    "back": {"back": 1},
    "left": {"left": 1},
    "right": {"right": 1},
    "jump": {"jump": 1, "forward": 1},
    "place_dirt": {"place": "dirt"},
    "craft_planks": {"craft": "planks"},
    "craft_stick": {"craft": "stick"},
    "craft_crafting_table": {"craft": "crafting_table"},
    "place_crafting_table": {"place": "crafting_table"},
    "craft_wooden_pickaxe": {"nearbyCraft": "wooden_pickaxe"},
    "craft_stone_pickaxe": {"nearbyCraft": "stone_pickaxe"},
    "craft_iron_pickaxe": {"nearbyCraft": "iron_pickaxe"},
    "equip_stone_pickaxe": {"equip": "stone_pickaxe"},
    "equip_wooden_pickaxe": {"equip": "wooden_pickaxe"},
    "equip_iron_pickaxe": {"equip": "iron_pickaxe"},
    "craft_furnace": {"nearbyCraft": "furnace"},
    "place_furnace": {"place": "furnace"},
    "smelt_iron_ingot": {"nearbySmelt": "iron_ingot"},
}

# +1 the first time in an episode each of these is in the inventory.
REWARD_ITEMS = (
    "log", "planks", "stick", "crafting_table", "wooden_pickaxe", "cobblestone", "stone_pickaxe",
    "iron_ore", "furnace", "iron_ingot", "iron_pickaxe", "diamond",
)  # fmt: skip
HEALTH_REWARD_SCALE = 0.01  # times the change of health normalised to [0, 1]
LOGGED_ITEMS = ("log", "cobblestone", "iron_ingot", "diamond")


def make_minerl_env(size: tuple, break_speed: float):
    """The official custom MineRL env: 64x64 POV, flat inventory, equipped item, life stats,
    default world generator with forced reset, faster block breaking. Needs minerl."""
    try:
        from minerl.herobraine.env_spec import EnvSpec
        from minerl.herobraine.hero import handler, handlers, mc
        from minerl.herobraine.hero.mc import INVERSE_KEYMAP
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error

    class BreakSpeedMultiplier(handler.Handler):
        def __init__(self, multiplier):
            self.multiplier = multiplier

        def to_string(self):
            return f"break_speed({self.multiplier})"

        def xml_template(self):
            return "<BreakSpeedMultiplier>{{multiplier}}</BreakSpeedMultiplier>"

    class DiamondSpec(EnvSpec):
        def __init__(self):
            super().__init__(name="MineRLDreamerDiamond-v0")

        def create_observables(self):
            return [
                handlers.POVObservation(tuple(size)),
                handlers.FlatInventoryObservation(mc.ALL_ITEMS),
                handlers.EquippedItemObservation(mc.ALL_ITEMS, _default="air", _other="other"),
                handlers.ObservationFromCurrentLocation(),
                handlers.ObservationFromLifeStats(),
            ]

        def create_actionables(self):
            keys = [handlers.KeybasedCommandAction(key, INVERSE_KEYMAP[key]) for key in
                    ("forward", "back", "left", "right", "jump", "sneak", "attack")]  # fmt: skip
            items = ["none"] + mc.ALL_ITEMS
            kwargs = {"_other": "none", "_default": "none"}
            return keys + [
                handlers.CameraAction(),
                handlers.PlaceBlock(items, **kwargs),
                handlers.EquipAction(items, **kwargs),
                handlers.CraftAction(items, **kwargs),
                handlers.CraftNearbyAction(items, **kwargs),
                handlers.SmeltItemNearby(items, **kwargs),
            ]

        def create_agent_start(self):
            return [BreakSpeedMultiplier(break_speed)]

        def create_server_world_generators(self):
            return [handlers.DefaultWorldGenerator(force_reset=True)]

        def create_server_quit_producers(self):
            return [handlers.ServerQuitWhenAnyAgentFinishes()]

        def create_server_initial_conditions(self):
            return [
                handlers.TimeInitialCondition(allow_passage_of_time=True, start_time=0),
                handlers.SpawningInitialCondition(allow_spawning=True),
            ]

        def create_rewardables(self):
            return []  # rewards are computed by the adapter

        def create_agent_handlers(self):
            return []

        def create_server_decorators(self):
            return []

        def create_monitors(self):
            return []

        def is_from_folder(self, folder):
            return folder == "none"

        def determine_success_from_rewards(self, rewards):
            return True

        def get_docstring(self):
            return ""

    return DiamondSpec().make()


class Minecraft(Env):
    def __init__(
        self,
        task: str = "diamond",
        size: tuple = (64, 64),
        length: int = 36_000,
        break_speed: float = 100.0,
        jump_steps: int = 10,
        pitch_limit: tuple = (-60.0, 60.0),
        seed: int = 0,
    ):
        """`seed` is unused by MineRL's default world generator (random worlds), as officially.

        The official sticky attack is off whenever break_speed != 1 (it is 100), so it is not
        implemented; jump is held for `jump_steps` steps and implies forward."""
        if task != "diamond":
            raise ValueError(f"Unknown Minecraft task {task!r}; valid: ['diamond']")
        self.env = make_minerl_env(size, break_speed)
        self.size = tuple(size)
        self.length = length
        self.jump_steps = jump_steps
        self.pitch_limit = pitch_limit
        self.actions = [{**NOOP, **fields} for fields in DIAMOND_ACTIONS.values()]
        space = self.env.observation_space
        # log2 (acacia/dark oak) counts as log, as officially.
        self.items = [item for item in space["inventory"].spaces if item != "log2"]
        self.equip_types = list(space["equipped_items"]["mainhand"]["type"].values)
        self.done = True

    @property
    def obs_space(self):
        items, types = len(self.items), len(self.equip_types)
        return {
            "image": Space(np.uint8, (*self.size, 3)),
            "inventory": Space(np.float32, (items,), 0),
            "inventory_max": Space(np.float32, (items,), 0),
            "equipped": Space(np.float32, (types,), 0, 1),
            "health": Space(np.float32),
            "hunger": Space(np.float32),
            "breath": Space(np.float32),
            **step_spaces(),
            **{f"log/inventory/{item}": Space(np.int64) for item in LOGGED_ITEMS},
        }

    @property
    def act_space(self):
        return {"action": Space(np.int32, (), 0, len(self.actions)), "reset": Space(bool)}

    def step(self, action):
        if action["reset"] or self.done:
            return self._reset()
        raw, _, engine_done, info = self.env.step(self._engine_action(int(action["action"])))
        if "error" in info:  # the official code restarts a broken Minecraft episode
            return self._reset()
        self.steps += 1
        obs = self._obs(raw)
        reward = self._reward(obs)
        time_limit = self.steps >= self.length
        self.done = engine_done or time_limit
        # MineRL ends an episode on death: terminal. The 36,000-step limit is is_last only.
        return {**obs, "reward": np.float32(reward), "is_first": False, "is_last": self.done,
                "is_terminal": bool(engine_done)}  # fmt: skip

    def _reset(self):
        raw = self.env.reset()
        self.steps = 0
        self.jump_left = 0
        self.pitch = 0.0
        self.inventory_max = None
        obs = self._obs(raw)
        self.collected = {item for item in REWARD_ITEMS if self.inventory[item] > 0}
        self.health = obs["health"]
        self.done = False
        return {**obs, "reward": np.float32(0.0), "is_first": True, "is_last": False, "is_terminal": False}

    def _engine_action(self, index):
        action = dict(self.actions[index])
        if action["jump"]:
            self.jump_left = self.jump_steps
        if self.jump_left > 0:
            action.update(jump=1, forward=1)
            self.jump_left -= 1
        pitch_change, yaw_change = action["camera"]
        if pitch_change:
            low, high = self.pitch_limit
            if low <= self.pitch + pitch_change <= high:
                self.pitch += pitch_change
            else:
                pitch_change = 0.0  # would look past the limit: keep the pitch
        action["camera"] = np.array([pitch_change, yaw_change], np.float32)
        return action

    def _reward(self, obs):
        new_items = {item for item in REWARD_ITEMS if self.inventory[item] > 0} - self.collected
        self.collected |= new_items
        health_change = obs["health"] - self.health
        self.health = obs["health"]
        return len(new_items) + HEALTH_REWARD_SCALE * health_change

    def close(self):
        self.env.close()

    def _obs(self, raw):
        counts = dict(raw["inventory"])
        counts["log"] = counts["log"] + counts.pop("log2", 0)
        self.inventory = {item: int(counts[item]) for item in self.items}
        inventory = np.array([counts[item] for item in self.items], np.float32)  # (items,)
        if self.inventory_max is None:  # first observation of the episode
            self.inventory_max = inventory
        self.inventory_max = np.maximum(self.inventory_max, inventory)
        equipped = np.zeros(len(self.equip_types), np.float32)  # (types,) one-hot
        equipped[self.equip_types.index(raw["equipped_items"]["mainhand"]["type"])] = 1.0
        life = raw["life_stats"]
        return {
            "image": np.asarray(raw["pov"], np.uint8),  # (64, 64, 3)
            "inventory": inventory,
            "inventory_max": self.inventory_max.copy(),
            "equipped": equipped,
            "health": np.float32(life["life"] / 20),
            "hunger": np.float32(life["food"] / 20),
            "breath": np.float32(life["air"] / 300),
            **{f"log/inventory/{item}": np.int64(self.inventory[item]) for item in LOGGED_ITEMS},
        }
