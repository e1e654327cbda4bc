"""Fixtures of the engine tests: runs without a metadata DB, engines, pipeline files."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate.authoring.discovery import load_file
from lockgate.authoring.python import PipelineBuilder, to_pipeline
from lockgate.config import Project
from lockgate.engine.executors import make_executor
from lockgate.engine.logcapture import install
from lockgate.engine.run import RunEngine, RunResult
from lockgate.model.pipeline import Pipeline

from .helpers import Recorder

EXECUTORS = ("inline", "threads", "processes", "dask")
_ids = itertools.count(1)


@pytest.fixture
def dask_address(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], str | None]:
    """For executor "dask": the session's real Dask cluster (started on first use), made the
    executor's scheduler through $LOCKGATE_DASK_ADDRESS; its address."""

    def use(executor: str) -> str | None:
        if executor != "dask":
            return None
        address = str(request.getfixturevalue("dask_cluster").address)
        monkeypatch.setenv("LOCKGATE_DASK_ADDRESS", address)
        return address

    return use


@pytest.fixture
def run_pipeline(
    project: Project, dask_address: Callable[[str], str | None]
) -> Callable[..., tuple[RunResult, Recorder]]:
    """Run a pipeline through `lockgate.run` (no DB); returns the result and its events."""

    def run(
        pipe: Pipeline | PipelineBuilder, executor: str = "threads", **kwargs: Any
    ) -> tuple[RunResult, Recorder]:
        dask_address(executor)
        rec = Recorder(kwargs.pop("bus", None))
        kwargs.setdefault("project", project)
        result = lockgate.run(pipe, store=False, executor=executor, bus=rec.bus, **kwargs)
        return result, rec

    return run


@pytest.fixture
def make_engine(
    project: Project, dask_address: Callable[[str], str | None]
) -> Callable[..., tuple[RunEngine, Recorder]]:
    """A `RunEngine` on a real executor, logging to the project's logs folder."""

    def make(
        pipe: Pipeline | PipelineBuilder,
        executor: str = "threads",
        concurrency: int = 8,
        **kwargs: Any,
    ) -> tuple[RunEngine, Recorder]:
        address = dask_address(executor)
        install()
        rec = Recorder()
        kwargs.setdefault("logs_dir", str(project.logs_dir))
        engine = RunEngine(
            to_pipeline(pipe),
            run_id=f"test-run-{next(_ids)}",
            executor=make_executor(executor, concurrency, {"address": address}),
            bus=rec.bus,
            **kwargs,
        )
        return engine, rec

    return make


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Iterator[Callable[..., dict[str, Pipeline]]]:
    """Write a pipeline module into tmp_path and load it (as `lockgate run FILE` would)."""
    count = itertools.count(1)

    def write(source: str, name: str | None = None) -> dict[str, Pipeline]:
        path = tmp_path / f"{name or 'flow'}_{next(count)}.py"
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return {p.id: p for p in load_file(path)}

    yield write
