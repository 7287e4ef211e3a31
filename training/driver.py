"""Steps all environments with one batched policy call and hands each env's step and each finished
episode to callbacks (spec 5.1), as danijar/embodied's Driver does.

    driver = Driver(batch_env, agent)
    driver.on_step(lambda transition, index: ...)   # every env's step, in env order
    driver.on_episode(lambda episode, index: ...)   # after that env's step, when its episode ended
    driver.step()                                   # one step of every env

A transition is the observation o_t (reward for arriving there, is_first/is_last/is_terminal), the
action chosen after seeing o_t and the policy's latent, each without the env axis. After is_last
the next action is reset=True with the other action keys zeroed, and the stored action of the last
step is zeroed too, as in the official driver. `log/` keys never reach the agent or the transition;
an episode {'episode/score', 'episode/length', 'log/...'} reports their values at its last step.
"""
import numpy as np

from training.phases import Phases


class Driver:
    def __init__(self, env, agent, phases: Phases | None = None):
        """env: a BatchEnv (envs/parallel.py); agent: anything with init_policy and policy; phases: where the
        env and policy time is counted (training/phases.py; the training loop's, else the driver's own)."""
        self.env = env
        self.agent = agent
        self.phases = phases if phases is not None else Phases()
        self.size = len(env)
        self.carry = agent.init_policy(self.size)
        self.act_space = {key: space for key, space in env.act_space.items() if key != "reset"}
        # Every env starts (or, on resume, restarts) with a reset.
        self.actions = self._zero_actions(np.ones(self.size, bool))
        self.scores = np.zeros(self.size, np.float64)
        self.lengths = np.zeros(self.size, np.int64)
        self.step_callbacks, self.episode_callbacks = [], []

    def on_step(self, callback):
        self.step_callbacks.append(callback)

    def on_episode(self, callback):
        self.episode_callbacks.append(callback)

    def _zero_actions(self, reset: np.ndarray) -> dict:
        actions = {key: np.zeros((self.size, *space.shape), space.dtype) for key, space in self.act_space.items()}
        return {**actions, "reset": reset}

    def step(self):
        """Step every env once, then call the callbacks env by env."""
        with self.phases("env"):
            obs = self.env.step(self.actions)
        logs = {key: value for key, value in obs.items() if key.startswith("log/")}
        obs = {key: value for key, value in obs.items() if not key.startswith("log/")}
        with self.phases("policy"):
            self.carry, actions, extras = self.agent.policy(self.carry, obs)
        is_last = obs["is_last"].astype(bool)  # (N,)
        for value in actions.values():
            value[is_last] = 0
        self.actions = {**actions, "reset": is_last.copy()}
        transitions = {**obs, **actions, **extras}  # key -> (N, ...)
        self._track_episodes(obs)
        for index in range(self.size):
            for callback in self.step_callbacks:
                callback({key: value[index] for key, value in transitions.items()}, index)
            if is_last[index]:
                episode = {"episode/score": float(self.scores[index]), "episode/length": int(self.lengths[index])}
                episode.update({key: value[index] for key, value in logs.items()})
                for callback in self.episode_callbacks:
                    callback(episode, index)

    def _track_episodes(self, obs: dict):
        self.scores[obs["is_first"]] = 0.0
        self.lengths[obs["is_first"]] = 0
        self.scores += obs["reward"]
        self.lengths += 1  # counts the reset step too

    def close(self):
        self.env.close()
