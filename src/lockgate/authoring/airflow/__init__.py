"""Running Airflow-style DAG files unchanged: a compatibility layer for the common subset of
Apache Airflow 2.x/3.x, seen only by the DAG files lockgate loads.

`is_airflow_source` tells such files apart; `compat_session` (in `session.py`) gives the DAG
file's module an `__import__` that serves this package's shim for `airflow` imports (the rest
of the process, `sys.modules` included, is untouched) and turns the DAGs the file defines into
lockgate pipelines."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_IMPORT = re.compile(r"^\s*(?:from|import)\s+airflow\b", re.M)


def is_airflow_source(source: str) -> bool:
    """Whether a Python file imports `airflow` (and so is an Airflow-style DAG file).

    Only real import statements count, not the word in a comment or a docstring; a file that
    does not parse is left to the normal loader, which reports the syntax error."""
    if "airflow" not in source or _IMPORT.search(source) is None:
        return False  # the cheap test first: most files never mention it
    import ast

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(_is_airflow(a.name) for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and _is_airflow(node.module or ""):
            return True
    return False


def _is_airflow(name: str) -> bool:
    return name == "airflow" or name.startswith("airflow.")


@contextmanager
def compat_session(file: Path, module: Any = None, source: str | None = None) -> Iterator[Any]:
    """Execute `file` (in `module`) with Airflow's import paths served by lockgate (see
    `session.py`); `session.pipelines()` gives the DAGs it defined."""
    from lockgate.authoring.airflow.session import CompatSession

    with CompatSession(file, module, source) as session:
        yield session
