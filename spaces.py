"""Observation and action spaces: the one description shared by envs/ and agent/."""
from dataclasses import dataclass

import numpy as np

# Keys every observation carries besides the suite's own; never encoded or decoded (spec 2.1).
STEP_KEYS = ("reward", "is_first", "is_last", "is_terminal")


@dataclass(frozen=True)
class Space:
    """dtype, shape and bounds of one observation or action key.

    As in danijar/embodied, `high` is exclusive for integer spaces: a discrete action
    with n choices is Space(np.int32, (), 0, n). Float bounds are inclusive. Images are Space(np.uint8, (H, W, C)),
    whose bounds default to the whole dtype.
    """

    dtype: np.dtype
    shape: tuple = ()
    low: float = -np.inf
    high: float = np.inf

    def __post_init__(self):
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        object.__setattr__(self, "shape", tuple(int(x) for x in self.shape))
        if self.dtype == bool:
            object.__setattr__(self, "low", 0)
            object.__setattr__(self, "high", 2)
        elif np.issubdtype(self.dtype, np.integer) and np.isinf(self.high).any():
            # Unbounded integers (e.g. uint8 images) span the whole dtype.
            info = np.iinfo(self.dtype)
            low = int(info.min) if np.isinf(self.low).any() else self.low
            object.__setattr__(self, "low", low)
            object.__setattr__(self, "high", int(info.max) + 1)
        if self.discrete:  # plain ints, so the agent's compiled code reads constants, not numpy
            object.__setattr__(self, "_first", int(np.min(self.low)))
            object.__setattr__(self, "_classes", int(np.max(self.high) - np.min(self.low)))

    @property
    def discrete(self) -> bool:
        return self.dtype == bool or np.issubdtype(self.dtype, np.integer)

    @property
    def first(self) -> int:
        """The value of a discrete space's first choice (class index 0)."""
        assert self.discrete, self
        return self._first

    @property
    def classes(self) -> int:
        """Number of choices of a discrete space."""
        assert self.discrete, self
        return self._classes

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        if self.discrete:
            return rng.integers(self.low, self.high, self.shape).astype(self.dtype)
        low = np.where(np.isinf(self.low), -1.0, self.low)
        high = np.where(np.isinf(self.high), 1.0, self.high)
        return rng.uniform(low, high, self.shape).astype(self.dtype)

    def contains(self, value) -> bool:
        value = np.asarray(value)
        if value.shape != self.shape:
            return False
        if self.discrete:
            return value.dtype.kind in "biu" and bool(np.all(value >= self.low) and np.all(value < self.high))
        return bool(np.all(value >= self.low) and np.all(value <= self.high))
