import numpy as np
import pytest

from training.replay import Replay, split_stepid


def make_step(stream, index, is_first=False):
    """One step whose vector encodes (stream, index), so windows can be checked."""
    return {
        "image": np.full((4, 4, 3), index % 256, np.uint8),
        "vector": np.array([stream, index], np.float32),
        "reward": np.float32(index),
        "is_first": is_first,
        "is_last": False,
        "is_terminal": False,
        "action": np.int32(index % 3),
        "dyn/deter": np.zeros(8, np.float32),
        "dyn/stoch": np.zeros(4, np.uint8),
    }


def fill(replay, streams, steps, episode=1000):
    for index in range(steps):
        for stream in range(streams):
            replay.add(make_step(stream, index, is_first=index % episode == 0), stream)


def test_sample_shapes_and_consecutive_windows():
    replay = Replay(capacity=1000, length=5, chunksize=8, online=False, seed=0)
    fill(replay, streams=2, steps=30, episode=7)
    assert len(replay) == 2 * (30 - 5 + 1)
    batch = replay.sample(16)
    assert batch["image"].shape == (16, 5, 4, 4, 3) and batch["image"].dtype == np.uint8
    assert batch["vector"].shape == (16, 5, 2)
    assert batch["action"].shape == (16, 5) and batch["action"].dtype == np.int32
    assert batch["stepid"].shape == (16, 5)
    stream, index = batch["vector"][..., 0], batch["vector"][..., 1]
    assert (stream == stream[:, :1]).all(), "a window stays in one env stream"
    assert (np.diff(index, axis=1) == 1).all(), "a window holds consecutive steps, across chunk boundaries"
    assert batch["is_first"][:, 0].all()
    # is_last marks the step before every episode start inside the window.
    assert (batch["is_last"][:, :-1] == (index[:, 1:] % 7 == 0)).all()
    assert replay.bytes_per_step == 48 + 8 + 4 + 1 + 1 + 1 + 4 + 32 + 4


def test_online_queue_serves_fresh_windows_first():
    replay = Replay(capacity=1000, length=5, chunksize=8, online=True, seed=0)
    fill(replay, streams=1, steps=20)
    batch = replay.sample(4)
    assert batch["vector"][:, 0, 1].tolist() == [0, 5, 10, 15]


def test_latent_write_back_context_and_eviction():
    replay = Replay(capacity=20, length=5, chunksize=8, online=False, seed=1)
    fill(replay, streams=1, steps=24)
    assert len(replay) == 20 and replay.stats()["replay/chunks"] == 3
    batch = replay.sample(6)
    new_deter = np.arange(6 * 4 * 8, dtype=np.float32).reshape(6, 4, 8)  # (B, T, D)
    latents = {"dyn/deter": new_deter, "dyn/stoch": np.full((6, 4, 4), 3, np.uint8)}
    replay.update_latents(batch["stepid"][:, 1:], latents)
    for row in range(6):
        _, start = split_stepid(batch["stepid"][row, 0])
        chunk = replay.streams[0].chunks[(start + 1) // 8]
        assert (chunk.data["dyn/deter"][(start + 1) % 8] == new_deter[row, 0]).all()
    # The context step of a later window starting at a written step sees the new latent.
    _, start = split_stepid(batch["stepid"][0, 1])
    while True:
        again = replay.sample(1)
        if split_stepid(again["stepid"][0, 0])[1] == start:
            break
    assert (again["dyn/deter"][0, 0] == new_deter[0, 0]).all()

    # FIFO eviction: 16 more steps drop the 16 oldest items and free the first chunks.
    for index in range(24, 24 + 16):
        replay.add(make_step(0, index), 0)
    assert len(replay) == 20
    assert min(replay.streams[0].chunks) == 2
    oldest = replay.sample(200)["vector"][:, 0, 1].min()
    assert oldest >= 16
    # Writing back latents of evicted steps is skipped silently.
    replay.update_latents(batch["stepid"][:, 1:], latents)


def test_save_load_round_trip_incremental(tmp_path):
    replay = Replay(capacity=1000, length=5, chunksize=8, online=False, seed=0)
    fill(replay, streams=2, steps=12)
    replay.save(tmp_path)
    first = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.npz")}
    assert len(first) == 4  # per stream one full and one partial chunk
    for stream in range(2):
        replay.add(make_step(stream, 12), stream)
    manifest = replay.save(tmp_path)
    second = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.npz")}
    unchanged = [name for name in first if first[name] == second[name]]
    assert len(unchanged) == 2, "full chunks are not written again"

    loaded = Replay(capacity=1000, length=5, chunksize=8, online=False, seed=0)
    assert loaded.load(tmp_path, manifest) == (26, [])
    assert len(loaded) == len(replay)
    assert sorted(loaded.items[: len(loaded)]) == sorted(replay.items[: len(replay)])
    for stream in range(2):
        for index, chunk in replay.streams[stream].chunks.items():
            for key, array in chunk.data.items():
                np.testing.assert_array_equal(loaded.streams[stream].chunks[index].data[key], array)
    # Appending continues each stream where it stopped.
    loaded.add(make_step(0, 13), 0)
    assert loaded.streams[0].size == 14


def test_load_keeps_only_newest_up_to_capacity(tmp_path):
    replay = Replay(capacity=1000, length=5, chunksize=8, online=False, seed=0)
    fill(replay, streams=1, steps=64)
    manifest = replay.save(tmp_path)
    small = Replay(capacity=20, length=5, chunksize=8, online=False, seed=0)
    small.load(tmp_path, manifest)
    assert len(small) == 20
    assert small.sample(50)["vector"][:, 0, 1].min() >= 64 - 20 - 4
    small.save(tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == len(small.streams[0].chunks), "evicted chunk files are deleted"


def test_load_holds_exactly_the_checkpointed_steps_even_after_later_saves(tmp_path):
    """A save after the checkpoint (then killed before its checkpoint was complete) grows and adds chunk
    files; loading the checkpoint's manifest reads only its own steps, and its files were kept."""
    replay = Replay(capacity=1000, length=5, chunksize=8, online=False, seed=0)
    fill(replay, streams=2, steps=12)
    manifest = replay.save(tmp_path)
    for step in range(12, 30):
        for stream in range(2):
            replay.add(make_step(stream, step), stream)
    replay.save(tmp_path, keep=[entry[0] for entry in manifest])
    loaded = Replay(capacity=1000, length=5, chunksize=8, online=False, seed=0)
    assert loaded.load(tmp_path, manifest) == (24, [])
    assert [loaded.streams[stream].size for stream in range(2)] == [12, 12]
    assert loaded.sample(20)["vector"][:, :, 1].max() == 11, "no step after the checkpoint"


def test_missing_cut_or_corrupt_chunks_are_skipped_and_named(tmp_path):
    replay = Replay(capacity=1000, length=5, chunksize=8, online=False, seed=0)
    fill(replay, streams=1, steps=40)  # chunks of steps 0-7, 8-15, 16-23, 24-31, 32-39
    manifest = replay.save(tmp_path)
    paths = sorted(tmp_path.glob("*.npz"))
    paths[1].unlink()
    paths[2].write_bytes(paths[2].read_bytes()[:100])  # cut
    paths[3].write_bytes(b"not a zip file at all")
    loaded = Replay(capacity=1000, length=5, chunksize=8, online=False, seed=0)
    steps, problems = loaded.load(tmp_path, manifest)
    assert steps == 16 and len(problems) == 3
    for path, problem in zip(paths[1:4], problems, strict=True):
        assert str(path) in problem and "8 steps of env 0 lost" in problem
    vector = loaded.sample(200)["vector"][:, :, 1]  # (B, L) step numbers: windows never cross the gap
    assert set(vector[:, 0]) <= set(range(0, 4)) | set(range(32, 36))
    assert np.all(np.diff(vector, axis=1) == 1)


def test_sampling_is_deterministic_given_seed():
    batches = []
    for _ in range(2):
        replay = Replay(capacity=1000, length=5, chunksize=8, online=False, seed=3)
        fill(replay, streams=2, steps=30)
        batches.append(replay.sample(8)["stepid"])
    np.testing.assert_array_equal(*batches)


def test_sample_needs_a_complete_window():
    replay = Replay(capacity=10, length=5, chunksize=8)
    fill(replay, streams=1, steps=4)
    with pytest.raises(AssertionError, match="no complete window"):
        replay.sample(1)
