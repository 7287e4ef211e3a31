"""The table of benchmark suites and `make(suite, task, seed, **overrides)`.

Each suite carries the official run defaults of the DreamerV3 code at HEAD (spec 6.2), which
the training CLI reads: `repeat` turns agent steps into logged env steps (frames), `steps` is
the agent-step budget, `envs` the number of parallel envs, `size` the model preset.
Adapters import their engines only when an env is built, so importing this module is cheap.
"""
from collections.abc import Callable
from dataclasses import dataclass

from envs.base import Env
from envs.bsuite import EXPERIMENTS as BSUITE_EXPERIMENTS

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


@dataclass(frozen=True)
class SuiteInfo:
    name: str
    tasks: tuple  # valid task names; bsuite: experiment names (ids are `<experiment>/<n>`); gym: any id
    repeat: int  # action repeat: logged env steps = agent steps x repeat
    train_ratio: int  # replayed steps per agent step (official config)
    steps: int | None  # agent-step budget; None: bsuite runs until its episode budget
    envs: int  # number of environments stepped together
    size: str  # model size preset
    make_fn: Callable[..., Env]  # make_fn(task, seed, **overrides) -> Env
    installs_here: bool  # the engine installs from PyPI on the project's machines
    resumable: bool = True  # False: the env keeps run state that a checkpoint cannot restore


def _atari100k(task, seed, **overrides):
    from envs.atari import Atari

    options = dict(size=(64, 64), gray=False, sticky=False, all_actions=False)
    return Atari(task, seed=seed, **{**options, **overrides})


def _atari200m(task, seed, **overrides):
    from envs.atari import Atari

    options = dict(size=(96, 96), gray=True, sticky=True, all_actions=True)
    return Atari(task, seed=seed, **{**options, **overrides})


def _dmc_proprio(task, seed, **overrides):
    from envs.dmc import DMC

    return DMC(task, seed=seed, **{**dict(proprio=True, image=False), **overrides})


def _dmc_vision(task, seed, **overrides):
    from envs.dmc import DMC

    return DMC(task, seed=seed, **{**dict(proprio=False, image=True), **overrides})


def _bsuite(task, seed, **overrides):
    from envs.bsuite import BSuite

    return BSuite(task, seed=seed, **overrides)


def _crafter(task, seed, **overrides):
    from envs.crafter import Crafter

    return Crafter(task, seed=seed, **overrides)


def _dmlab(task, seed, **overrides):
    from envs.dmlab import DMLab

    return DMLab(task, seed=seed, **overrides)


def _minecraft(task, seed, **overrides):
    from envs.minecraft import Minecraft

    return Minecraft(task, seed=seed, **overrides)


def _gym(task, seed, **overrides):
    from envs.gym import Gym

    return Gym(task, seed=seed, **overrides)


SUITES = {
    info.name: info
    for info in (
        SuiteInfo("atari100k", ATARI100K_GAMES, 4, 256, 110_000, 1, "200m", _atari100k, True),
        SuiteInfo("atari200m", ATARI57_GAMES, 4, 32, 51_000_000, 16, "200m", _atari200m, True),
        SuiteInfo("dmc_proprio", DMC_PROPRIO_TASKS, 1, 1024, 1_100_000, 16, "1m", _dmc_proprio, True),
        SuiteInfo("dmc_vision", DMC_VISION_TASKS, 1, 256, 1_100_000, 16, "200m", _dmc_vision, True),
        SuiteInfo("bsuite", BSUITE_EXPERIMENTS, 1, 1024, None, 1, "200m", _bsuite, True, resumable=False),
        SuiteInfo("crafter", ("reward", "noreward"), 1, 512, 1_100_000, 1, "200m", _crafter, True),
        SuiteInfo("dmlab", DMLAB30_LEVELS, 4, 32, 26_000_000, 16, "200m", _dmlab, False),
        # Officially run until stopped (1e10); the published scores use 1e8 agent steps.
        SuiteInfo("minecraft", ("diamond",), 1, 32, 100_000_000, 16, "200m", _minecraft, False),
        # Not an official suite: small defaults for smoke runs on any Gymnasium id.
        SuiteInfo("gym", (), 1, 512, 100_000, 1, "1m", _gym, True),
    )
}


def _unknown(kind: str, name: str, valid) -> ValueError:
    return ValueError(f"Unknown {kind} {name!r}; valid: {', '.join(valid)}")


def make(suite: str, task: str, seed: int = 0, **overrides) -> Env:
    """Builds the env of `task` in `suite` with the official settings; `overrides` replace
    adapter arguments (e.g. length=100 for short test episodes)."""
    if suite not in SUITES:
        raise _unknown("suite", suite, SUITES)
    info = SUITES[suite]
    # bsuite ids are `<experiment>/<n>` and gym takes any registered id: their adapters check them.
    if suite not in ("bsuite", "gym") and task not in info.tasks:
        raise _unknown(f"{suite} task", task, info.tasks)
    return info.make_fn(task, seed, **overrides)
