"""Replay buffer of env steps with the acting policy's latents (spec 5.2-5.3).

Every env writes its own stream of consecutive steps, stored in chunks of `chunksize`
steps. An item is a window of `length` consecutive steps of one stream (1 context step
+ batch_length training steps); windows ignore episode boundaries, the RSSM resets on
is_first. A step becomes the start of an item once `length - 1` more steps of its stream
exist. Capacity counts items; the oldest item is dropped first, and a chunk is freed once
no remaining item reaches into it.

A step is addressed by its stepid = stream << 40 | position in the stream; `sample`
returns the stepids of every sampled step so that `update_latents` can write the
latents of a training pass back (skipping steps evicted in the meantime).

On disk (`save`/`load`), each chunk is one compressed `chunk-<serial>.npz`; a save writes
only chunks that are new or have grown since the last save (each fsynced, then the folder) and
deletes the files of evicted chunks. Latents written back after a chunk was saved are not saved again.
A save returns a manifest (which chunks, how many steps each) that goes into the checkpoint;
a load reads exactly those steps, so the replay never runs ahead of its checkpoint.
"""
import collections
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.checkpoint import fsync_directory

POSITION_BITS = 40


def make_stepid(stream: int, position):
    return (np.int64(stream) << POSITION_BITS) + position


def split_stepid(stepid) -> tuple[int, int]:
    stepid = int(stepid)
    return stepid >> POSITION_BITS, stepid & ((1 << POSITION_BITS) - 1)


@dataclass
class Chunk:
    data: dict  # key -> (chunksize, ...) array
    serial: int  # creation order over all streams; names the file on disk
    length: int = 0  # steps written so far
    saved_length: int = 0  # steps that the chunk's file on disk holds


@dataclass
class Stream:
    size: int = 0  # steps added so far = position of the next step
    first_item: int = 0  # start position of the oldest item not yet evicted
    chunks: dict = field(default_factory=dict)  # chunk index (position // chunksize) -> Chunk


class Replay:
    def __init__(self, capacity: int, length: int, chunksize: int = 1024, online: bool = True, seed: int = 0):
        """capacity: items kept; length: steps per sampled window (batch_length + replay_context)."""
        assert length <= chunksize, "a window may span at most two chunks"
        self.capacity = capacity
        self.length = length
        self.chunksize = chunksize
        self.online = online
        self.rng = np.random.default_rng(seed)
        self.spaces = None  # key -> (dtype, shape), from the first step added
        self.streams = collections.defaultdict(Stream)
        self.next_serial = 0
        # Item start stepids in insertion order, in a ring that grows up to `capacity`.
        self.items = np.zeros(min(capacity, 4096), np.int64)
        self.items_added = 0
        self.items_evicted = 0
        self.online_queue = collections.deque()  # fresh non-overlapping windows, trained on first
        self.inserts = 0
        self.samples = 0  # sequences sampled

    def __len__(self) -> int:
        return self.items_added - self.items_evicted

    # --- Writing ---

    def add(self, step: dict, stream: int):
        """Append one step (dict of per-step arrays, no batch axis) to a stream."""
        if self.spaces is None:
            self.spaces = {k: (np.asarray(v).dtype, np.shape(v)) for k, v in step.items()}
        assert step.keys() == self.spaces.keys(), (sorted(step), sorted(self.spaces))
        state = self.streams[stream]
        position = state.size
        chunk = self._chunk_for_writing(state, position)
        offset = position % self.chunksize
        for key, value in step.items():
            chunk.data[key][offset] = value
        chunk.length = offset + 1
        state.size += 1
        self.inserts += 1
        if state.size >= self.length:
            start = make_stepid(stream, state.size - self.length)
            self._push_item(start)
            if self.online and state.size % self.length == 0:
                self.online_queue.append(start)

    def _chunk_for_writing(self, state: Stream, position: int) -> Chunk:
        index = position // self.chunksize
        if index not in state.chunks:
            data = {k: np.zeros((self.chunksize, *shape), dtype) for k, (dtype, shape) in self.spaces.items()}
            state.chunks[index] = Chunk(data, self.next_serial)
            self.next_serial += 1
        return state.chunks[index]

    def _push_item(self, stepid):
        if len(self) == self.capacity:
            self._evict_oldest()
        if self.items_added == len(self.items) and len(self.items) < self.capacity:
            # Not wrapped yet (nothing is evicted before the ring is full), so a copy keeps the order.
            grown = np.zeros(min(2 * len(self.items), self.capacity), np.int64)
            grown[: len(self.items)] = self.items
            self.items = grown
        self.items[self.items_added % len(self.items)] = stepid
        self.items_added += 1

    def _evict_oldest(self):
        stream, position = split_stepid(self.items[self.items_evicted % len(self.items)])
        self.items_evicted += 1
        state = self.streams[stream]
        state.first_item = position + 1
        # Items of a stream are evicted in order, so no item reaches below first_item.
        for index in [i for i in state.chunks if (i + 1) * self.chunksize <= state.first_item]:
            del state.chunks[index]

    def update_latents(self, stepid: np.ndarray, latents: dict):
        """Write latents (key -> (B, T, ...)) back over the stored ones of steps stepid (B, T)."""
        batch, steps = stepid.shape
        for key, value in latents.items():
            assert value.shape[:2] == (batch, steps), (key, value.shape, stepid.shape)
        for row in range(batch):
            stream, start = split_stepid(stepid[row, 0])
            for time, chunk, offset, count in self._segments(stream, start, steps):
                if chunk is None:
                    continue  # evicted since it was sampled
                for key, value in latents.items():
                    chunk.data[key][offset : offset + count] = value[row, time : time + count]

    # --- Reading ---

    def sample(self, batch_size: int) -> dict:
        """A batch of key -> (B, L, ...) windows plus 'stepid' (B, L); online items first."""
        assert len(self) > 0, "replay holds no complete window yet"
        starts = [self._next_start() for _ in range(batch_size)]
        batch = {
            key: np.empty((batch_size, self.length, *shape), dtype) for key, (dtype, shape) in self.spaces.items()
        }
        for row, start in enumerate(starts):
            stream, position = split_stepid(start)
            for time, chunk, offset, count in self._segments(stream, position, self.length):
                for key, array in batch.items():
                    array[row, time : time + count] = chunk.data[key][offset : offset + count]
        # A window may start mid-episode or cross a restart without is_last before it.
        batch["is_last"][:, :-1] |= batch["is_first"][:, 1:]
        batch["is_first"][:, 0] = True
        batch["stepid"] = np.asarray(starts, np.int64)[:, None] + np.arange(self.length)  # (B, L)
        self.samples += batch_size
        return batch

    def _next_start(self):
        while self.online_queue:
            start = self.online_queue.popleft()
            stream, position = split_stepid(start)
            if position >= self.streams[stream].first_item:
                return start
        index = self.rng.integers(len(self))
        return self.items[(self.items_evicted + index) % len(self.items)]

    def _segments(self, stream: int, position: int, count: int):
        """(time, chunk or None, offset, count) pieces of `count` steps from `position` on."""
        chunks = self.streams[stream].chunks
        time = 0
        while time < count:
            offset = (position + time) % self.chunksize
            piece = min(self.chunksize - offset, count - time)
            yield time, chunks.get((position + time) // self.chunksize), offset, piece
            time += piece

    # --- Statistics ---

    @property
    def bytes_per_step(self) -> int:
        if self.spaces is None:
            return 0
        return sum(np.dtype(dtype).itemsize * int(np.prod(shape)) for dtype, shape in self.spaces.values())

    def stats(self) -> dict:
        chunks = sum(len(state.chunks) for state in self.streams.values())
        return {
            "replay/items": len(self),
            "replay/chunks": chunks,
            "replay/inserts": self.inserts,
            "replay/samples": self.samples,
            "replay/bytes_per_step": self.bytes_per_step,
            "replay/ram_gb": chunks * self.chunksize * self.bytes_per_step / 1e9,
        }

    # --- Persistence ---

    def state_dict(self) -> dict:
        """Sampler and counters; the steps themselves go to disk with `save`."""
        return {"rng": self.rng.bit_generator.state, "inserts": self.inserts, "samples": self.samples}

    def load_state_dict(self, state: dict):
        self.rng.bit_generator.state = state["rng"]
        self.inserts = state["inserts"]
        self.samples = state["samples"]

    def save(self, directory, keep=()) -> list:
        """Write new or grown chunks; returns the manifest [serial, stream, index, length] of every chunk,
        to store with the checkpoint. Deletes the files of evicted chunks, except the serials in `keep`
        (those an older checkpoint still needs)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        manifest, written = [], False
        for stream, state in self.streams.items():
            for index, chunk in state.chunks.items():
                if chunk.saved_length < chunk.length:
                    self._write_chunk(directory, stream, index, chunk)
                    written = True
                manifest.append([chunk.serial, stream, index, chunk.length])
        if written:  # the renames too are on disk before the checkpoint that lists the chunks
            fsync_directory(directory)
        needed = {entry[0] for entry in manifest} | set(keep)
        for path in directory.glob("chunk-*.npz"):
            if chunk_serial(path) not in needed:
                path.unlink()
        return manifest

    def _write_chunk(self, directory: Path, stream: int, index: int, chunk: Chunk):
        path = directory / chunk_name(chunk.serial)
        temp = path.with_suffix(".tmp")
        arrays = {key: array[: chunk.length] for key, array in chunk.data.items()}
        with open(temp, "wb") as file:
            np.savez_compressed(file, **arrays, _stream=stream, _index=index, _length=chunk.length)
            file.flush()
            os.fsync(file.fileno())  # on disk, not only in the page cache: a power loss keeps it
        os.replace(temp, path)
        chunk.saved_length = chunk.length

    def load(self, directory, manifest: list) -> tuple[int, list[str]]:
        """Load the steps a checkpoint's `manifest` lists (the newest up to capacity), and no step written
        after it. Returns (steps loaded, one problem line per chunk file that is missing or unreadable,
        naming it and the steps lost); such a chunk is skipped and its stream goes on after the gap."""
        newest, steps = [], 0
        for entry in sorted(manifest, reverse=True):
            if steps >= self.capacity + self.length:
                break
            newest.append(entry)
            steps += entry[3]
        loaded, problems = [], []
        for serial, stream, index, length in reversed(newest):  # oldest first
            path = Path(directory) / chunk_name(serial)
            try:
                step_arrays = read_chunk(path, stream, index, length)
            except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
                problems.append(f"replay chunk {path} is missing or unreadable ({type(error).__name__}: {error}): "
                                f"skipped, {length} steps of env {stream} lost")
                continue
            if self.spaces is None:
                self.spaces = {k: (v.dtype, v.shape[1:]) for k, v in step_arrays.items()}
            data = {k: np.zeros((self.chunksize, *shape), dtype) for k, (dtype, shape) in self.spaces.items()}
            for key, array in step_arrays.items():
                data[key][:length] = array
            state = self.streams[stream]
            if index - 1 not in state.chunks:  # the stream's first chunk, or the first after a lost one
                state.first_item = index * self.chunksize
            state.chunks[index] = Chunk(data, serial, length, saved_length=length)
            state.size = index * self.chunksize + length
            self.next_serial = max(self.next_serial, serial + 1)
            loaded.append((stream, index, length))
        # Re-create the items in the order their last step was stored.
        for stream, index, length in loaded:
            for end in range(index * self.chunksize, index * self.chunksize + length):
                start = end + 1 - self.length
                if start >= self.streams[stream].first_item:
                    self._push_item(make_stepid(stream, start))
        return sum(length for _, _, length in loaded), problems


def chunk_name(serial: int) -> str:
    return f"chunk-{serial:09d}.npz"


def chunk_serial(path: Path) -> int:
    return int(path.stem.split("-")[1])


def read_chunk(path: Path, stream: int, index: int, length: int) -> dict:
    """The first `length` steps of a chunk file (a later save may have grown it); raises if the file is
    missing, cut, corrupt or not the chunk the manifest names."""
    with np.load(path, allow_pickle=False) as file:
        if (int(file["_stream"]), int(file["_index"])) != (stream, index) or int(file["_length"]) < length:
            raise ValueError(f"holds env {int(file['_stream'])}, chunk {int(file['_index'])}, "
                             f"{int(file['_length'])} steps; the checkpoint expects {length} steps of env {stream}, "
                             f"chunk {index}")
        arrays = {key: file[key][:length] for key in file.files if not key.startswith("_")}
    if any(len(array) < length for array in arrays.values()):
        raise ValueError("arrays shorter than the recorded length")
    return arrays
