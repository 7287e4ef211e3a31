"""How many updates to run after each agent step, for a fixed train ratio (spec 5.4).

`train_ratio` counts replayed training steps per agent step, so one update of
batch_size x batch_length steps is due every (batch_size * batch_length) / train_ratio
agent steps. Like elements.when.Ratio, the first call grants one update and later calls
grant whatever whole updates have accrued since then; the fractional rest carries over.
"""


class Ratio:
    def __init__(self, updates_per_step: float):
        assert updates_per_step >= 0, updates_per_step
        self.updates_per_step = updates_per_step
        self.first_step = None  # agent step of the first call
        self.granted = 0  # updates handed out so far

    @classmethod
    def from_config(cls, config) -> "Ratio":
        return cls(config.train_ratio / (config.batch_size * config.batch_length))

    def __call__(self, step: int) -> int:
        """Updates to run now, at agent step `step` (steps must not decrease)."""
        if self.updates_per_step == 0:
            return 0
        if self.first_step is None:
            self.first_step = step
        # Counting from the first call (rather than adding fractions up) keeps the
        # long-run average exact, without floating-point drift.
        due = 1 + int((step - self.first_step) * self.updates_per_step)
        updates = due - self.granted
        self.granted = due
        return updates

    def state_dict(self) -> dict:
        return {"first_step": self.first_step, "granted": self.granted}

    def load_state_dict(self, state: dict):
        self.first_step = state["first_step"]
        self.granted = state["granted"]


def planned_updates(config, steps: int) -> int:
    """Updates of a run of `steps` agent steps: none before the replay holds train_fill steps, then
    as the train loop's Ratio grants them."""
    if steps < config.train_fill:
        return 0
    ratio = Ratio.from_config(config)
    return ratio(config.train_fill) + ratio(steps)
