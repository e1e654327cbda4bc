"""Executors: where task attempts run. `make_executor(name, concurrency)` builds one by name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lockgate.engine.executors.base import Executor
from lockgate.errors import ConfigError, did_you_mean

EXECUTORS = ("inline", "threads", "processes", "dask")


def check_executor(name: object) -> None:
    """ConfigError naming an unknown executor (checked before anything starts)."""
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}{did_you_mean(name, EXECUTORS)}")


def make_executor(
    name: str, concurrency: int, dask: Mapping[str, Any] | None = None, root: Path | None = None
) -> Executor:
    """The executor `name`; `dask`: the `[dask]` table of lockgate.toml (paths in it are
    relative to `root`). Nothing connects to anything until the executor's `prepare`."""
    if name == "threads":
        from lockgate.engine.executors.threads import ThreadExecutor

        return ThreadExecutor(concurrency)
    if name == "inline":
        from lockgate.engine.executors.inline import InlineExecutor

        return InlineExecutor()
    if name == "processes":
        from lockgate.engine.executors.processes import ProcessExecutor

        return ProcessExecutor(concurrency)
    if name == "dask":
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise ConfigError(
                "the dask executor needs dask.distributed: pip install 'lockgate[dask]'"
            ) from None
        from lockgate.engine.executors.dask_executor import DaskExecutor, DaskSettings

        return DaskExecutor(concurrency, DaskSettings.of(dask or {}, root))
    check_executor(name)
    raise AssertionError(name)  # pragma: no cover - every known executor is built above


__all__ = ["EXECUTORS", "Executor", "check_executor", "make_executor"]
