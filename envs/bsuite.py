"""Behaviour Suite (bsuite) experiments by id, e.g. `catch/0` (spec 6.9).

Built as bsuite.load_from_id does (no CSV logging); the observation is flattened into a
float32 `vector`. Settings whose seed bsuite leaves open (seed None, e.g. catch) get the run's
seed, so a run is reproducible; settings that fix their own seeds keep them.
Instead of bsuite's CSV logger, every step carries the columns that bsuite's Logging wrapper
would write (`log/bsuite/<column>`); their values at is_last are one row of bsuite's results,
which pipelines/scoring.py hands to bsuite's own analysis.

Not resumable: the experiment's episode accounting (episode, steps, total_return,
total_regret, ...) lives inside the bsuite environment and is not checkpointed, so a
restarted run cannot continue it (the official code warns the same).
"""
import numpy as np

from envs.base import Env, step_spaces
from spaces import Space

# The experiments of bsuite 0.3.6 (bsuite.sweep); ids are `<experiment>/<setting index>`.
EXPERIMENTS = (
    "bandit", "bandit_noise", "bandit_scale", "cartpole", "cartpole_noise", "cartpole_scale",
    "cartpole_swingup", "catch", "catch_noise", "catch_scale", "deep_sea", "deep_sea_stochastic",
    "discounting_chain", "memory_len", "memory_size", "mnist", "mnist_noise", "mnist_scale",
    "mountain_car", "mountain_car_noise", "mountain_car_scale", "umbrella_distract", "umbrella_length",
)  # fmt: skip

# Columns bsuite's Logging wrapper computes for every experiment (bsuite/utils/wrappers.py).
STANDARD_COLUMNS = ("steps", "episode", "total_return", "episode_len", "episode_return")
LOG_PREFIX = "log/bsuite/"


def full_id(task: str) -> str:
    """`catch` -> `catch/0`, as the official code does."""
    return task if "/" in task else f"{task}/0"


def all_ids() -> tuple:
    """Every setting of bsuite's sweep, e.g. `catch/0` ... `catch/19` (468 in bsuite 0.3.6)."""
    from bsuite import sweep

    return tuple(sweep.SWEEP)


def episode_budget(bsuite_id: str) -> int:
    """Number of episodes the experiment runs for (bsuite_num_episodes); the run stops there."""
    from bsuite import sweep

    return sweep.EPISODES[full_id(bsuite_id)]


class BSuite(Env):
    def __init__(self, bsuite_id: str, seed: int = 0):
        import inspect

        import bsuite
        from bsuite import sweep

        bsuite_id = full_id(bsuite_id)
        experiment = bsuite_id.split("/")[0]
        if bsuite_id not in sweep.SETTINGS:
            valid = [name for name in sweep.SWEEP if name.startswith(experiment + "/")] or EXPERIMENTS
            raise ValueError(f"Unknown bsuite id {bsuite_id!r}; valid: {list(valid)}")
        settings = dict(sweep.SETTINGS[bsuite_id])
        constructor = bsuite.bsuite.EXPERIMENT_NAME_TO_ENVIRONMENT[experiment]
        if "seed" in inspect.signature(constructor).parameters and settings.get("seed") is None:
            settings["seed"] = seed
        try:
            self.env = bsuite.load(experiment, settings)
        except OSError as error:
            if bsuite_id.startswith("mnist"):
                raise RuntimeError(
                    f"{bsuite_id} downloads MNIST into /tmp/mnist when created and that failed "
                    "(offline?). Copy the MNIST files there or run where the internet is reachable."
                ) from error
            raise
        self.bsuite_id = bsuite_id
        self.num_actions = self.env.action_spec().num_values
        self.vector_size = int(np.prod(self.env.observation_spec().shape))
        self.info_columns = tuple(self.env.bsuite_info())
        self.stats = dict.fromkeys(STANDARD_COLUMNS, 0.0)
        self.done = True

    @property
    def obs_space(self):
        logs = {LOG_PREFIX + key: Space(np.float64) for key in STANDARD_COLUMNS + self.info_columns}
        return {"vector": Space(np.float32, (self.vector_size,)), **step_spaces(), **logs}

    @property
    def act_space(self):
        return {"action": Space(np.int32, (), 0, self.num_actions), "reset": Space(bool)}

    def step(self, action):
        if action["reset"] or self.done:
            self.done = False
            self.stats.update(episode_len=0, episode_return=0.0)
            return self._obs(self.env.reset(), 0.0, is_first=True)
        timestep = self.env.step(int(action["action"]))
        reward = timestep.reward or 0.0
        self.done = timestep.last()
        # The same bookkeeping as bsuite's Logging wrapper, so the is_last row matches its CSV.
        self.stats["steps"] += 1
        self.stats["episode_len"] += 1
        self.stats["episode_return"] += reward
        self.stats["total_return"] += reward
        self.stats["episode"] += self.done
        terminal = self.done and timestep.discount == 0
        return self._obs(timestep, reward, is_last=self.done, is_terminal=terminal)

    def _obs(self, timestep, reward, is_first=False, is_last=False, is_terminal=False):
        logs = {**self.stats, **self.env.bsuite_info()}
        return {
            "vector": np.asarray(timestep.observation, np.float32).reshape(-1),  # (D,)
            "reward": np.float32(reward),
            "is_first": is_first,
            "is_last": is_last,
            "is_terminal": is_terminal,
            **{LOG_PREFIX + key: np.float64(logs[key]) for key in STANDARD_COLUMNS + self.info_columns},
        }
