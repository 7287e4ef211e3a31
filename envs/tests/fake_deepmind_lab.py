"""A fake of the `deepmind_lab` module's `Lab` class (the parts the adapter uses).

Each episode lasts `episode_frames` frames; the reward of a step is the number of frames
stepped, and the image's value counts the steps, so tests can follow what happened.
"""
import numpy as np

created = []  # every Lab built, for the tests to inspect


class Lab:
    episode_frames = 12

    def __init__(self, level, observations, config=None, renderer="software", level_cache=None):
        assert all(isinstance(value, str) for value in config.values()), config
        self.level, self.observation_names, self.config, self.renderer = level, observations, config, renderer
        self.actions, self.seeds = [], []
        self.running = False
        created.append(self)

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
