"""Helpers for authoring tests: write pipeline files and load them, run pipelines in-process."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import lockgate
from lockgate.authoring.discovery import load_file
from lockgate.config import Project
from lockgate.engine.run import RunResult
from lockgate.errors import DefinitionError
from lockgate.model.pipeline import Pipeline

HEADER = "from lockgate import branch, param, pipeline, shell, task\n"


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """write(name, source): a pipeline file in tmp_path; `source` is dedented and, unless
    header=False, preceded by one import line, so its first line is line 2 of the file."""

    def _write(name: str, source: str, *, header: bool = True, folder: Path | None = None) -> Path:
        path = (folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((HEADER if header else "") + textwrap.dedent(source), encoding="utf-8")
        return path

    return _write


def _load_error(path: Path) -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        load_file(path)
    err = info.value
    text = str(err)
    assert "\n" not in text, text
    assert err.file == str(path.resolve()), text
    assert err.line is not None, text
    where = f"{err.line}:{err.column}" if err.column else f"{err.line}"
    assert text.startswith(f"{path.resolve()}:{where}: "), text
    return err


def _line_of(path: Path, marker: str) -> int:
    hits = [i for i, text in enumerate(path.read_text().splitlines(), 1) if marker in text]
    assert len(hits) == 1, (marker, hits)
    return hits[0]


@pytest.fixture
def load_error() -> Callable[[Path], DefinitionError]:
    """load_error(path): load a file that must fail; checks the error is one line that starts
    with "FILE:LINE: " and returns it."""
    return _load_error


@pytest.fixture
def line_of() -> Callable[[Path, str], int]:
    """line_of(path, marker): the 1-based number of the only line containing `marker`."""
    return _line_of


@pytest.fixture
def run_inline(project: Project) -> Callable[..., RunResult]:
    """Run a pipeline in this process with the inline executor, without a metadata DB."""

    def _run(pipe: Pipeline | lockgate.PipelineBuilder, **params: object) -> RunResult:
        return lockgate.run(pipe, params=params, executor="inline", store=False, project=project)

    return _run
