import time

from training.phases import PHASES, Phases


def test_fractions_split_the_interval_and_a_phase_running_across_a_line_counts_in_both():
    phases = Phases()
    with phases("env"):
        time.sleep(0.02)
    with phases("logging"):
        time.sleep(0.01)
        first = phases.fractions()  # written from inside a phase, as the metrics write is
        time.sleep(0.01)
    time.sleep(0.01)  # in no phase: the rest
    second = phases.fractions()
    assert set(first) == set(second) == {f"time/{name}" for name in PHASES}
    assert first["time/env"] > first["time/logging"] > 0 and sum(first.values()) <= 1
    assert second["time/env"] == 0 and 0 < second["time/logging"] < 1 and sum(second.values()) <= 1


def test_timed_counts_a_callback_and_passes_its_result():
    phases = Phases()
    assert phases.timed("replay_write", lambda x: x + 1)(1) == 2
    assert phases.seconds["replay_write"] > 0 and phases.open is None
