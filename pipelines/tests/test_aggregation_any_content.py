"""Aggregation never crashes on what it finds in a run folder: real run folders, written by the training CLI,
mutated at random (bad bytes, non-numeric or non-finite values, cut or empty files); every bad line is listed
in problems.txt as file:line and reason, and skipped."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.aggregate import aggregate
from pipelines.tests.conftest import REFERENCE
from pipelines.tests.test_aggregation import workflow_config

RUNS = {
    "gym": ["--suite", "gym", "--task", "CartPole-v1", "--steps", "600"],
    "bsuite": ["--suite", "bsuite", "--task", "catch/0", "--steps", "300"],  # log/bsuite/... values
}
BAD_VALUES = ['"abc"', "NaN", "Infinity", "-Infinity", "1e999", "null", "[]", "{}", "true", '""']
REPO_ROOT = Path(__file__).resolve().parents[2]
NUMBER = re.compile(rb"-?\d+(\.\d+)?(e[-+]?\d+)?")


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> dict:
    pytest.importorskip("bsuite")
    if not REFERENCE.exists():
        pytest.skip(f"reference data not found at {REFERENCE}")
    runs = {}
    for name, argv in RUNS.items():
        folder = tmp_path_factory.mktemp("runs") / name
        # The real entry point as a process (pipelines/ imports no training code); no update is
        # reached (train_fill above the steps), so this takes seconds.
        command = [sys.executable, "-m", "training.train", *argv, "--size", "1m", "--device", "cpu",
                   "--logdir", str(folder), "--set", "train_fill=100000", "threads=1", "trackers=[]"]
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=600,
                                env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
        assert result.returncode == 0, result.stderr[-2000:]
        runs[name] = folder
    return runs


@st.composite
def mutations(draw, size: int):
    """(start, end, replacement) byte edits of a file of `size` bytes."""
    kind = draw(st.sampled_from(["bytes", "value", "cut", "empty", "line"]))
    start = draw(st.integers(0, size))
    if kind == "bytes":
        return start, min(size, start + draw(st.integers(0, 8))), draw(st.binary(max_size=8))
    if kind == "value":
        return "value", draw(st.integers(0, 10_000)), draw(st.sampled_from(BAD_VALUES)).encode()
    if kind == "cut":
        return start, size, b""
    if kind == "empty":
        return 0, size, b""
    return "line", draw(st.integers(0, 10_000)), draw(st.sampled_from([b"\xff\xfe\n", b"\x00\x00\n", b"{\n"]))


def apply(data: bytes, mutation) -> tuple[bytes, int | None]:
    """The mutated bytes and, for a replaced line, its 1-based number (that line must be reported)."""
    if mutation[0] == "value":  # a number in the file becomes a bad value
        numbers = list(NUMBER.finditer(data))
        if not numbers:
            return data, None
        match = numbers[mutation[1] % len(numbers)]
        return data[: match.start()] + mutation[2] + data[match.end() :], None
    if mutation[0] == "line":  # a whole line becomes unreadable
        lines = data.splitlines(keepends=True)
        if not lines:
            return data, None
        index = mutation[1] % len(lines)
        return b"".join(lines[:index] + [mutation[2]] + lines[index + 1 :]), index + 1
    start, end, replacement = mutation
    return data[:start] + replacement + data[end:], None


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_aggregation_lists_and_skips_any_bad_content(real_runs, data):
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        folders, reported = [], []
        for name, source in real_runs.items():
            folder = temp / name
            shutil.copytree(source, folder, ignore=shutil.ignore_patterns("checkpoints", "replay"))
            file = folder / data.draw(st.sampled_from(["scores.jsonl", "scores.jsonl", "config.yaml"]))
            content = file.read_bytes()
            for mutation in data.draw(st.lists(mutations(len(content)), min_size=1, max_size=4)):
                content, line = apply(content, mutation)
            if line is not None and file.name == "scores.jsonl":  # replaced by the last edit: its number holds
                reported.append(f"{file}:{line}: ")
            file.write_bytes(content)
            folders.append(folder)
        out = temp / "out"
        aggregate(workflow_config(), folders, [], REFERENCE / "baselines.yaml", out)
        problems = (out / "problems.txt").read_text().splitlines()
        files = [line for line in problems if not line.startswith("bsuite ")]  # those name the run, not a file
        assert all(re.match(rf"{re.escape(str(temp))}/\w+/[\w.]+(:\d+)?: ", line) for line in files), problems
        for where in reported:
            if not any(line.startswith(f"{Path(where).parent / 'config.yaml'}: ") for line in problems):
                assert any(line.startswith(where) for line in problems), (where, problems)
        assert (out / "runs.csv").exists()


def test_empty_and_missing_score_files_are_listed(real_runs, tmp_path):
    empty, missing = tmp_path / "empty", tmp_path / "missing"
    for folder in (empty, missing):
        shutil.copytree(real_runs["gym"], folder, ignore=shutil.ignore_patterns("checkpoints", "replay"))
    (empty / "scores.jsonl").write_bytes(b"")
    (missing / "scores.jsonl").unlink()
    aggregate(workflow_config(), [empty, missing], [], REFERENCE / "baselines.yaml", tmp_path / "out")
    problems = (tmp_path / "out" / "problems.txt").read_text()
    assert f"{empty / 'scores.jsonl'}: no readable episode" in problems
    assert f"{missing / 'scores.jsonl'}: missing" in problems
