"""A stand-in with the Agent interface: random actions, fixed latents (the real dtypes), counted updates."""
from types import SimpleNamespace

import numpy as np

DETER, STOCH = 8, 4


class FakeAgent:
    def __init__(self, obs_space: dict, act_space: dict, config):
        self.obs_space = obs_space
        self.act_space = act_space
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.train_calls = 0
        self.batches = []  # shapes of the batches seen, for the tests

    def init_policy(self, batch_size: int):
        return {"steps": np.zeros(batch_size, np.int64)}

    def policy(self, carry, obs):
        assert not any(key.startswith("log/") for key in obs), sorted(obs)
        size = len(obs["is_first"])
        action = {
            key: np.stack([space.sample(self.rng) for _ in range(size)]) for key, space in self.act_space.items()
        }
        extras = {
            "dyn/deter": np.full((size, DETER), 0.5, np.float16),  # (N, D)
            "dyn/stoch": np.ones((size, STOCH), np.uint8),  # (N, S)
        }
        return {"steps": carry["steps"] + 1}, action, extras

    def train(self, batch):
        self.train_calls += 1
        self.batches.append({key: value.shape for key, value in batch.items()})
        size, length = batch["is_first"].shape
        latents = {  # the update's number as deter, so tests can see which update wrote a step's latent
            "dyn/deter": np.full((size, length - 1, DETER), self.train_calls, np.float16),  # (B, T, D)
            "dyn/stoch": np.full((size, length - 1, STOCH), 2, np.uint8),  # (B, T, S)
        }
        return {"loss/fake": float(self.train_calls)}, latents

    def start_train(self, batch):
        """The update runs at once; `fetch` hands its outputs over, as Agent.start_train's do."""
        outputs = self.train(batch)
        return SimpleNamespace(fetch=lambda: outputs)

    def state_dict(self):
        return {"train_calls": self.train_calls, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        self.train_calls = state["train_calls"]
        self.rng.bit_generator.state = state["rng"]
