"""Where the training loop's wall-clock time goes: seconds per phase, logged in each metrics.jsonl line as
fractions of the interval since the line before, under `time/` (e.g. `time/update`). What the named phases
leave over (the driver's own bookkeeping, callbacks, the Python loop) is 1 minus their sum.

    phases = Phases()
    with phases("env"):
        obs = env.step(actions)
    phases.fractions()  # {"time/update": 0.81, "time/env": 0.05, ...}; starts the next interval

Phases never nest (each is a disjoint stretch of the loop); a span costs about a microsecond.
"""
import time

# update: the agent's update, on CUDA only the time the host waits for it (training/train.py: Learner);
# policy: the batched acting step; env: stepping the environments; replay_sample / replay_write: drawing a
# batch / inserting steps and writing refreshed latents back; logging: log files, trackers, the progress
# line; checkpoint: saves during the run (with the replay chunks they write).
PHASES = ("update", "policy", "env", "replay_sample", "replay_write", "logging", "checkpoint")


class Span:
    def __init__(self, phases: "Phases", name: str):
        self.phases, self.name = phases, name

    def __enter__(self):
        assert self.phases.open is None, f"phase {self.name} inside {self.phases.open}"
        self.phases.open, self.phases.started = self.name, time.perf_counter()

    def __exit__(self, *exc):
        self.phases.seconds[self.name] += time.perf_counter() - self.phases.started
        self.phases.open = None


class Phases:
    def __init__(self):
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.spans = {name: Span(self, name) for name in PHASES}
        self.since = time.perf_counter()  # start of the interval
        self.open, self.started = None, 0.0  # the phase running now and when it (or this interval) began

    def __call__(self, name: str) -> Span:
        return self.spans[name]

    def timed(self, name: str, function):
        """`function` with each call counted under `name` (for driver callbacks)."""
        def call(*args, **kwargs):
            with self.spans[name]:
                return function(*args, **kwargs)
        return call

    def fractions(self) -> dict:
        """Each phase's share of the wall time since the last call, as {"time/<phase>": fraction}; a phase
        running now (the metrics write itself) counts up to now here and the rest in the next interval."""
        now = time.perf_counter()
        if self.open is not None:
            self.seconds[self.open] += now - self.started
            self.started = now
        total = max(now - self.since, 1e-9)
        fractions = {f"time/{name}": seconds / total for name, seconds in self.seconds.items()}
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.since = now
        return fractions
