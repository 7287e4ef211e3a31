"""Progress lines of the results steps on stderr: what a step is doing, how far it is, time so far."""
import sys
import time

START = time.monotonic()


def progress(step: str, text: str) -> None:
    """One line, e.g. `tables: aggregates 3/40: atari100k dreamerv3 (window, normalised) [2.1 s]`."""
    print(f"{step}: {text} [{time.monotonic() - START:.1f} s]", file=sys.stderr, flush=True)
