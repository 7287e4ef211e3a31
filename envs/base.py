"""The one environment interface every suite adapter implements (as danijar/embodied's Env).

An Env is stepped with an action dict and returns an observation dict:

    obs = env.step({"action": a, "reset": False})

* `act_space` holds the agent's action keys plus `reset` (bool). A step with
  reset=True (or the first step ever) starts a new episode and returns its first
  observation, with is_first=True and reward 0; the other action keys are ignored.
* Observations always hold `reward` (float32), `is_first`, `is_last`, `is_terminal`
  (bool), plus the suite's observation keys. is_terminal marks a true end of the
  episode (death, goal); an end by time limit has is_last=True, is_terminal=False.
* Keys starting with `log/` are per-step statistics that are logged per episode and
  never shown to the agent or stored in replay.
* Continuous actions are in [-1, 1]; adapters rescale to the suite's bounds.
"""
import numpy as np

from spaces import Space


def step_spaces() -> dict:
    return {
        "reward": Space(np.float32),
        "is_first": Space(bool),
        "is_last": Space(bool),
        "is_terminal": Space(bool),
    }


class Env:
    @property
    def obs_space(self) -> dict[str, Space]:
        raise NotImplementedError

    @property
    def act_space(self) -> dict[str, Space]:
        raise NotImplementedError

    def step(self, action: dict) -> dict:
        raise NotImplementedError

    def close(self):
        pass
