"""Shared helpers: real run folders (config.yaml + scores.jsonl) written into tmp_path."""
import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
# The reference data of other projects is read in place, never copied into the repo.
REFERENCE = (REPO / ".." / "shared" / "reference").resolve()


def write_run(folder: Path, suite: str, task: str, seed: int, episodes: list[dict], size="1m",
              train_ratio=32, steps=1000, lines=None, repeat=None) -> Path:
    """A run folder as training.train leaves it; `lines` replaces the JSON lines (to test bad input)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"suite": suite, "task": task, "seed": seed, "size": size, "train_ratio": train_ratio,
              "steps": steps}
    if repeat is not None:
        config["repeat"] = repeat
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    text = lines if lines is not None else "".join(json.dumps(episode) + "\n" for episode in episodes)
    (folder / "scores.jsonl").write_text(text)
    return folder


def catch_episodes(count: int, regret_per_episode: float) -> list[dict]:
    """bsuite catch as training.train logs it: bsuite's results columns under `log/bsuite/`."""
    return [{"step": 10 * (index + 1), "episode/score": 1.0 - regret_per_episode, "episode/length": 10,
             "log/bsuite/episode": index + 1, "log/bsuite/steps": 9 * (index + 1),
             "log/bsuite/total_regret": regret_per_episode * (index + 1)}
            for index in range(count)]


@pytest.fixture
def reference_dir() -> Path:
    if not REFERENCE.exists():
        pytest.skip(f"reference data not found at {REFERENCE}")
    return REFERENCE
