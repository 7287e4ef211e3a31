"""DeepMind Control Suite through dm_control.suite.load (spec 6.4).

dmc_proprio: the dm_control observations as float32 vectors, one key each.
dmc_vision: a 64x64 RGB image only, rendered headless with MuJoCo.
Action repeat 1 (HEAD), 1000-step episodes, is_terminal only when dm_env's discount is 0.
"""
import ctypes
import os

import numpy as np

from envs.base import Env, step_spaces
from spaces import Space

# Official per-domain cameras; every other domain uses camera 0.
CAMERAS = {"quadruped": 2, "rodent": 4}

# MUJOCO_GL back end -> (shared library that must load, Debian package providing it).
GL_BACKENDS = {"egl": ("libEGL.so.1", "libegl1"), "osmesa": ("libOSMesa.so.8", "libosmesa6")}


def select_gl_backend() -> str | None:
    """Sets MUJOCO_GL (and PYOPENGL_PLATFORM) to a headless back end that loads here, or None.

    Must run before dm_control or mujoco is first imported (also for envs that do not render):
    both pick their back end once, on import. A non-empty value the user set is kept.
    """
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    for backend, (library, _) in GL_BACKENDS.items():
        try:
            ctypes.CDLL(library)
        except OSError:
            continue
        os.environ["MUJOCO_GL"] = backend
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
        return backend
    return None


class DMC(Env):
    def __init__(
        self,
        task: str,
        image: bool = False,
        proprio: bool = True,
        log_image: bool = False,
        size: tuple = (64, 64),
        repeat: int = 1,
        length: int | None = None,
        seed: int = 0,
    ):
        """`image`/`proprio` pick the agent's observations. `log_image` renders the image into
        `log/image` for proprio runs as the official code does; it is off by default because
        rendering is ~50x slower than the physics and the agent never sees it. `length` cuts
        episodes after that many agent steps (a time limit: is_last, not terminal) for short
        test runs; None keeps dm_control's own 1000-step episodes."""
        self.render = image or log_image
        if select_gl_backend() is None and self.render:
            packages = " or ".join(f"`apt-get install {package}`" for _, package in GL_BACKENDS.values())
            raise RuntimeError(f"DMC images need a headless OpenGL back end (EGL or OSMesa): {packages}")
        from dm_control import suite

        if task.startswith("cup_"):  # older configs spell ball_in_cup as cup
            task = "ball_in_" + task
        # Domains and tasks both contain underscores, so match whole names.
        names = {f"{domain}_{name}": (domain, name) for domain, name in suite.ALL_TASKS}
        if task not in names:
            raise ValueError(f"Unknown dm_control task {task!r}; valid: {sorted(names)}")
        domain, task_name = names[task]
        # Official runs pass no seed (random); we seed the task's RNG for reproducibility.
        self.env = suite.load(domain, task_name, task_kwargs={"random": seed})
        self.image = image
        self.proprio = proprio
        self.log_image = log_image
        self.size = tuple(size)
        self.repeat = repeat
        self.camera = CAMERAS.get(domain, 0)
        self.action_spec = self.env.action_spec()
        self.length = length
        self.steps = 0
        self.done = True

    @property
    def obs_space(self):
        spaces = {}
        if self.proprio:
            for key, spec in self.env.observation_spec().items():
                spaces[key] = Space(np.float32, (int(np.prod(spec.shape)),))
        if self.image:
            spaces["image"] = Space(np.uint8, (*self.size, 3))
        if self.log_image:
            spaces["log/image"] = Space(np.uint8, (*self.size, 3))
        return {**spaces, **step_spaces()}

    @property
    def act_space(self):
        return {"action": Space(np.float32, self.action_spec.shape, -1.0, 1.0), "reset": Space(bool)}

    def step(self, action):
        if action["reset"] or self.done:
            self.done = False
            self.steps = 0
            return self._obs(self.env.reset(), 0.0, is_first=True)
        # The agent's samples may leave [-1, 1]: clip, then rescale to the actuator bounds.
        unit = np.clip(np.asarray(action["action"], np.float64), -1.0, 1.0)
        low, high = self.action_spec.minimum, self.action_spec.maximum
        scaled = low + (unit + 1.0) / 2.0 * (high - low)
        reward = 0.0
        for _ in range(self.repeat):
            timestep = self.env.step(scaled)
            reward += timestep.reward or 0.0
            if timestep.last():
                break
        self.steps += 1
        terminal = timestep.last() and timestep.discount == 0
        self.done = timestep.last() or self.steps == self.length
        return self._obs(timestep, reward, is_last=self.done, is_terminal=terminal)

    def _obs(self, timestep, reward, is_first=False, is_last=False, is_terminal=False):
        obs = {}
        if self.proprio:
            for key, value in timestep.observation.items():
                obs[key] = np.asarray(value, np.float32).reshape(-1)  # (D,)
        if self.render:
            height, width = self.size
            image = self.env.physics.render(height, width, camera_id=self.camera)  # (H, W, 3)
            obs["image" if self.image else "log/image"] = image
        obs.update(reward=np.float32(reward), is_first=is_first, is_last=is_last, is_terminal=is_terminal)
        return obs
