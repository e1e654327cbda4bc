"""Executors: where task attempts run. `make_executor(name, concurrency)` builds one by name."""

from __future__ import annotations

from lockgate.engine.executors.base import Executor
from lockgate.errors import ConfigError, did_you_mean

EXECUTORS = ("inline", "threads", "processes")


def check_executor(name: object) -> None:
    """ConfigError naming an unknown executor (checked before anything starts)."""
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}{did_you_mean(name, EXECUTORS)}")


def make_executor(name: str, concurrency: int) -> Executor:
    if name == "threads":
        from lockgate.engine.executors.threads import ThreadExecutor

        return ThreadExecutor(concurrency)
    if name == "inline":
        from lockgate.engine.executors.inline import InlineExecutor

        return InlineExecutor()
    if name == "processes":
        from lockgate.engine.executors.processes import ProcessExecutor

        return ProcessExecutor(concurrency)
    check_executor(name)
    raise AssertionError(name)  # pragma: no cover - every known executor is built above


__all__ = ["EXECUTORS", "Executor", "check_executor", "make_executor"]
