"""Benchmark environments behind one interface (envs/base.py): `envs.make(suite, task, seed)`."""
from envs.registry import SUITES, SuiteInfo, make

__all__ = ["SUITES", "SuiteInfo", "make"]
