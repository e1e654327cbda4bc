"""Running Airflow-style DAG files unchanged: a compatibility layer for the common subset of
Apache Airflow 2.x/3.x, active only while lockgate loads such a file.

`is_airflow_source` tells such files apart; `compat_session` (in `session.py`) makes `airflow`
imports resolve to this package's shim for the duration of one load and turns the DAGs the
file defines into lockgate pipelines."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_IMPORT = re.compile(r"^\s*(?:from|import)\s+airflow\b", re.M)


def is_airflow_source(source: str) -> bool:
    """Whether a Python file imports `airflow` (and so is an Airflow-style DAG file)."""
    return "airflow" in source and _IMPORT.search(source) is not None


@contextmanager
def compat_session(file: Path, module: Any = None, source: str | None = None) -> Iterator[Any]:
    """Execute `file` (in `module`) with Airflow's import paths served by lockgate (see
    `session.py`); `session.pipelines()` gives the DAGs it defined."""
    from lockgate.authoring.airflow.session import CompatSession

    with CompatSession(file, module, source) as session:
        yield session
