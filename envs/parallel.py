"""Step N environments together: `BatchEnv(make_fns, parallel)`.

parallel=True runs each env in its own worker process (spawn start method, so engines with
threads or GL contexts start clean); parallel=False steps them in this process one after
another, as the official driver does by default.

A worker that raises or dies is restarted with a fresh env, and its slot returns that env's
first observation (is_first=True, reward 0) for the failed step. The interrupted episode is
dropped: it never gets an is_last, and the driver, replay and episode logger start a new
episode at is_first, exactly as after a reset. The run goes on.
"""
import multiprocessing
import signal
import traceback

import numpy as np


def _worker(make_fn, connection):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    try:
        env = make_fn()
        connection.send(("ready", (env.obs_space, env.act_space)))
        while True:
            command, action = connection.recv()
            if command == "close":
                env.close()
                break
            connection.send(("obs", env.step(action)))
    except (KeyboardInterrupt, EOFError):
        pass
    except Exception:
        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()


class Worker:
    """One env in a child process."""

    context = multiprocessing.get_context("spawn")

    def __init__(self, make_fn):
        self.make_fn = make_fn
        self.restarts = 0
        self._start()

    def _start(self):
        self.connection, child_end = self.context.Pipe()
        self.process = self.context.Process(target=_worker, args=(self.make_fn, child_end), daemon=True)
        self.process.start()
        child_end.close()  # so that recv() raises EOFError once the child is gone
        self.obs_space, self.act_space = self._receive("ready")

    def _receive(self, expected):
        kind, payload = self.connection.recv()  # raises EOFError if the process died
        if kind == "error":
            raise RuntimeError(f"env worker failed:\n{payload}")
        assert kind == expected, (kind, expected)
        return payload

    def send_step(self, action):
        try:
            self.connection.send(("step", action))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the process is gone; receive_step restarts it

    def receive_step(self, action):
        try:
            return self._receive("obs")
        except (EOFError, ConnectionResetError, RuntimeError) as error:
            print(f"Restarting crashed env worker (pid {self.process.pid}): {error}", flush=True)
            self.restarts += 1
            self._stop()
            self._start()
            self.connection.send(("step", {**action, "reset": True}))
            return self._receive("obs")

    def _stop(self):
        self.connection.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def close(self):
        try:
            self.connection.send(("close", None))
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        self._stop()


class BatchEnv:
    """N envs stepped with batched actions {key: (N, ...)}, returning observations {key: (N, ...)}."""

    def __init__(self, make_fns: list, parallel: bool):
        assert make_fns, "need at least one env"
        self.parallel = parallel
        if parallel:
            self.envs = [Worker(make_fn) for make_fn in make_fns]
        else:
            self.envs = [make_fn() for make_fn in make_fns]
        self.obs_space = self.envs[0].obs_space
        self.act_space = self.envs[0].act_space

    def __len__(self):
        return len(self.envs)

    def step(self, actions: dict) -> dict:
        assert all(len(value) == len(self.envs) for value in actions.values()), {
            key: np.shape(value) for key, value in actions.items()
        }
        per_env = [{key: value[index] for key, value in actions.items()} for index in range(len(self.envs))]
        if self.parallel:
            # Send every action first so that the workers step at the same time.
            for worker, action in zip(self.envs, per_env):
                worker.send_step(action)
            observations = [worker.receive_step(action) for worker, action in zip(self.envs, per_env)]
        else:
            observations = [env.step(action) for env, action in zip(self.envs, per_env)]
        return {key: np.stack([obs[key] for obs in observations]) for key in observations[0]}  # (N, ...)

    def close(self):
        for env in self.envs:
            env.close()
