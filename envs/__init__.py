"""Benchmark environments behind one interface (envs/base.py): `envs.make(suite, task, seed)`."""
from envs.registry import NO_STEP_LIMIT, SUITES, Suite, check_env_args, make

__all__ = ["NO_STEP_LIMIT", "SUITES", "Suite", "check_env_args", "make"]
