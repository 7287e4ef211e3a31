"""The table of benchmark suites, one `Suite` row each, and `make(suite, task, seed, repeat, **overrides)`.

Every fact about a suite lives in its row: its tasks, the official run settings of the DreamerV3
code at HEAD (spec 6.2), how the published score files name it, and how its scores are reported.
The training CLI takes its defaults from here, the workflow builds its grid and checks its config
against it, and the pipeline reads score files and budgets through it.
Adapters import their engines only when an env is built, so importing this module is cheap, and the
keys `env_args` may set are read from each adapter's signature (Suite.env_args) without any engine.
"""
import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from envs.atari import Atari
from envs.base import Env
from envs.bsuite import EXPERIMENTS as BSUITE_EXPERIMENTS
from envs.bsuite import BSuite
from envs.bsuite import all_ids as bsuite_ids
from envs.bsuite import episode_budget as bsuite_episode_budget
from envs.crafter import Crafter
from envs.dmc import DMC
from envs.dmlab import DMLab
from envs.gym import Gym
from envs.minecraft import Minecraft
from envs.procgen import ProcGen

# The 16 ProcGen games, as in procgen-dreamerv3.json.gz without the `procgen_` prefix.
PROCGEN_GAMES = (
    "bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot", "heist",
    "jumper", "leaper", "maze", "miner", "ninja", "plunder", "starpilot",
)  # fmt: skip
# The 26 games of Atari 100k and the 57 of Atari 200M, as in the official score files
# (atari100k-dreamerv3.json.gz, atari57-dreamerv3.json.gz) without the `atari_` prefix.
ATARI100K_GAMES = (
    "alien", "amidar", "assault", "asterix", "bank_heist", "battle_zone", "boxing", "breakout",
    "chopper_command", "crazy_climber", "demon_attack", "freeway", "frostbite", "gopher", "hero",
    "jamesbond", "kangaroo", "krull", "kung_fu_master", "ms_pacman", "pong", "private_eye", "qbert",
    "road_runner", "seaquest", "up_n_down",
)  # fmt: skip
ATARI57_GAMES = (
    "alien", "amidar", "assault", "asterix", "asteroids", "atlantis", "bank_heist", "battle_zone",
    "beam_rider", "berzerk", "bowling", "boxing", "breakout", "centipede", "chopper_command",
    "crazy_climber", "defender", "demon_attack", "double_dunk", "enduro", "fishing_derby", "freeway",
    "frostbite", "gopher", "gravitar", "hero", "ice_hockey", "jamesbond", "kangaroo", "krull",
    "kung_fu_master", "montezuma_revenge", "ms_pacman", "name_this_game", "phoenix", "pitfall", "pong",
    "private_eye", "qbert", "riverraid", "road_runner", "robotank", "seaquest", "skiing", "solaris",
    "space_invaders", "star_gunner", "surround", "tennis", "time_pilot", "tutankham", "up_n_down",
    "venture", "video_pinball", "wizard_of_wor", "yars_revenge", "zaxxon",
)  # fmt: skip
# dmc_proprio-dreamerv3.json.gz (18 tasks); the vision suite adds the two quadruped tasks.
DMC_PROPRIO_TASKS = (
    "acrobot_swingup", "ball_in_cup_catch", "cartpole_balance", "cartpole_balance_sparse",
    "cartpole_swingup", "cartpole_swingup_sparse", "cheetah_run", "finger_spin", "finger_turn_easy",
    "finger_turn_hard", "hopper_hop", "hopper_stand", "pendulum_swingup", "reacher_easy", "reacher_hard",
    "walker_run", "walker_stand", "walker_walk",
)  # fmt: skip
DMC_VISION_TASKS = tuple(sorted(DMC_PROPRIO_TASKS + ("quadruped_run", "quadruped_walk")))
# dmlab30-dreamerv3.json.gz: the 30 DMLab-30 levels.
DMLAB30_LEVELS = (
    "explore_goal_locations_large", "explore_goal_locations_small", "explore_object_locations_large",
    "explore_object_locations_small", "explore_object_rewards_few", "explore_object_rewards_many",
    "explore_obstructed_goals_large", "explore_obstructed_goals_small",
    "language_answer_quantitative_question", "language_execute_random_task",
    "language_select_described_object", "language_select_located_object", "lasertag_one_opponent_large",
    "lasertag_one_opponent_small", "lasertag_three_opponents_large", "lasertag_three_opponents_small",
    "natlab_fixed_large_map", "natlab_varying_map_randomized", "natlab_varying_map_regrowth",
    "psychlab_arbitrary_visuomotor_mapping", "psychlab_continuous_recognition",
    "psychlab_sequential_comparison", "psychlab_visual_search", "rooms_collect_good_objects_test",
    "rooms_exploit_deferred_effects_test", "rooms_keys_doors_puzzle", "rooms_select_nonmatching_object",
    "rooms_watermaze", "skymaze_irreversible_path_hard", "skymaze_irreversible_path_varied",
)  # fmt: skip


# One value for "no step budget": a suite with an episode budget (bsuite) runs until that instead.
NO_STEP_LIMIT = 10**15


@dataclass(frozen=True)
class Suite:
    name: str
    tasks: tuple  # valid task names; bsuite: experiment names (ids are `<experiment>/<n>`); gym: any id
    adapter: type[Env]  # built as adapter(task, seed=..., [repeat=...,] **options, **env_args) by make()
    options: dict  # the official settings where they differ from the adapter's defaults
    # --- Official run settings (spec 6.2) ---
    repeat: int = 1  # action repeat: logged env steps = agent steps x repeat
    train_ratio: int = 32  # replayed steps per agent step
    steps: int = NO_STEP_LIMIT  # agent-step budget
    envs: int = 1  # environments stepped together
    size: str = "200m"  # model size preset
    episode_budget: Callable[[str], int] | None = None  # task -> episodes after which a run ends
    resumable: bool = True  # False: the env keeps run state that a checkpoint cannot restore
    # --- Where it runs ---
    installs_here: bool = True  # the engine installs from PyPI on the project's machines
    needs_display: bool = False  # renders through an X display even headless (xvfb-run in the workflow)
    grid_tasks: Callable[[], tuple] | None = None  # what a grid block without `tasks` runs; None: `tasks`
    open_tasks: bool = False  # `tasks` does not list every valid task; the adapter checks it (bsuite, gym)
    # --- Published scores and reporting (spec 7) ---
    score_files: tuple = ()  # name prefixes of its score files (`<prefix>-<method>.json.gz`); the first
    #   one also names our exported file
    task_prefix: str = ""  # score files name a task `<task_prefix><task>`
    report_budget: int | None = None  # logged step at which our runs are scored, when below steps x repeat
    reference_budget: int | None = None  # the same for the published runs, where the protocol fixes one
    normaliser: str | None = None  # table of baselines.yaml for min-max normalised scores
    score_range: tuple | None = None  # (low, high) of raw returns where no baselines table exists

    def default_tasks(self) -> tuple:
        return self.grid_tasks() if self.grid_tasks else self.tasks

    def env_args(self) -> tuple | None:
        """The keys that env_args may set, read from the adapter's signature (its module imports no engine):
        its parameters besides the task (the first), `seed` and `repeat`, which make() passes itself.
        None: any key (the adapter passes them on to its engine, which checks them when the env is built)."""
        parameters = list(inspect.signature(self.adapter).parameters.values())[1:]
        if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
            return None
        return tuple(parameter.name for parameter in parameters if parameter.name not in ("seed", "repeat"))

    def has_repeat(self) -> bool:
        return "repeat" in inspect.signature(self.adapter).parameters


SUITES = {
    suite.name: suite
    for suite in (
        Suite("atari100k", ATARI100K_GAMES, Atari, dict(size=(64, 64), gray=False, sticky=False, all_actions=False),
              repeat=4, train_ratio=256, steps=110_000, envs=1, score_files=("atari100k",), task_prefix="atari_",
              normaliser="atari57_gamer",
              # 4.4e5 frames are run; the protocol reports at 4e5 and discards later episodes (spec 7.4)
              report_budget=400_000, reference_budget=400_000),
        Suite("atari200m", ATARI57_GAMES, Atari, dict(size=(96, 96), gray=True, sticky=True, all_actions=True),
              repeat=4, train_ratio=32, steps=51_000_000, envs=16, score_files=("atari57",), task_prefix="atari_",
              normaliser="atari57_gamer", report_budget=200_000_000),  # 2.04e8 frames are run, reported at 2e8
        Suite("dmc_proprio", DMC_PROPRIO_TASKS, DMC, dict(proprio=True, image=False),
              train_ratio=1024, steps=1_100_000, envs=16, size="1m", score_files=("dmc_proprio",),
              task_prefix="dmc_", score_range=(0.0, 1000.0)),
        Suite("dmc_vision", DMC_VISION_TASKS, DMC, dict(proprio=False, image=True), train_ratio=256,
              steps=1_100_000, envs=16, score_files=("dmc_vision",), task_prefix="dmc_", score_range=(0.0, 1000.0)),
        Suite("bsuite", BSUITE_EXPERIMENTS, BSuite, {}, train_ratio=1024, episode_budget=bsuite_episode_budget,
              resumable=False, grid_tasks=bsuite_ids, open_tasks=True, score_files=("bsuite",),
              task_prefix="bsuite_"),
        Suite("crafter", ("reward", "noreward"), Crafter, {}, train_ratio=512, steps=1_100_000,
              grid_tasks=lambda: ("reward",), score_files=("crafter", "crafter_reward", "crafter_noreward"),
              task_prefix="crafter_", report_budget=1_000_000),  # Crafter's benchmark budget is 1e6 steps
        Suite("dmlab", DMLAB30_LEVELS, DMLab, {}, repeat=4, train_ratio=32, steps=26_000_000, envs=16,
              installs_here=False, score_files=("dmlab30",), task_prefix="dmlab_", normaliser="dmlab30",
              report_budget=100_000_000),  # 1.04e8 frames are run, reported at 1e8
        # Officially run until stopped (1e10); the published scores use 1e8 agent steps.
        Suite("minecraft", ("diamond",), Minecraft, {}, train_ratio=32, steps=100_000_000, envs=16,
              installs_here=False, needs_display=True, score_files=("minecraft_diamond",),
              task_prefix="minecraft_"),
        # Officially run for 1.1e8 steps; the published scores and the paper use 5e7.
        Suite("procgen", PROCGEN_GAMES, ProcGen, {}, train_ratio=64, steps=110_000_000, envs=16,
              score_files=("procgen",), task_prefix="procgen_", normaliser="procgen_hard",
              report_budget=50_000_000),
        # Not an official suite: small defaults for smoke runs on any Gymnasium id.
        Suite("gym", (), Gym, {}, train_ratio=512, steps=100_000, size="1m", open_tasks=True,
              grid_tasks=lambda: ("CartPole-v1",), score_files=("gym",), task_prefix="gym_"),
    )
}


def _unknown(kind: str, name: str, valid) -> ValueError:
    return ValueError(f"Unknown {kind} {name!r}; valid: {', '.join(valid)}")


def check_env_args(suite: str, env_args: dict):
    """Raises ValueError (one line: the bad keys, a guess, the keys the adapter takes) unless every key of
    env_args is an argument of the suite's adapter. Imports no engine, so the workflow checks before planning."""
    info = SUITES[suite]
    accepted = info.env_args()
    unknown = [key for key in env_args if accepted is not None and key not in accepted]
    if not unknown:
        return
    guesses = [close for key in unknown for close in difflib.get_close_matches(key, accepted, n=1)]
    adapter = f"the {suite} adapter ({info.adapter.__module__}.{info.adapter.__name__})"
    names = ", ".join(repr(key) for key in unknown)
    raise ValueError(
        f"env_args {'key' if len(unknown) == 1 else 'keys'} {names} {'is' if len(unknown) == 1 else 'are'} not "
        f"taken by {adapter}." + (f" Did you mean {', '.join(guesses)}?" if guesses else "")
        + (f" Accepted keys: {', '.join(accepted)}." if accepted else " It takes no env_args."))


def make(suite: str, task: str, seed: int = 0, repeat: int | None = None, **overrides) -> Env:
    """Builds the env of `task` in `suite` with the official settings; `repeat` (default: the suite's)
    is the action repeat, `overrides` replace adapter arguments (e.g. length=100 for short test episodes)."""
    if suite not in SUITES:
        raise _unknown("suite", suite, SUITES)
    info = SUITES[suite]
    if not info.open_tasks and task not in info.tasks:
        raise _unknown(f"{suite} task", task, info.tasks)
    check_env_args(suite, overrides)
    repeat = info.repeat if repeat is None else repeat
    arguments = {**info.options, **overrides}
    if info.has_repeat():
        arguments["repeat"] = repeat
    elif repeat != 1:
        raise ValueError(f"{suite} has no action repeat (got repeat={repeat}); its adapter steps the env once")
    return info.adapter(task, seed=seed, **arguments)
