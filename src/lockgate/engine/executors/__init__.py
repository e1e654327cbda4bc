"""Executors: where task attempts run. `make_executor(name, concurrency)` builds one by name."""

from __future__ import annotations

from lockgate.engine.executors.base import Executor
from lockgate.errors import ConfigError

EXECUTORS = ("inline", "threads", "processes")


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
    raise ConfigError(f"unknown executor {name!r}; use one of {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "Executor", "make_executor"]
