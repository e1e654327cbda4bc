"""One load of an Airflow-style DAG file with Airflow's import paths served by lockgate.

Only the DAG file's own module sees the shim: before its code runs, its `__builtins__` become
a copy whose `__import__` serves `airflow` imports from lockgate's shim modules (see
`imports.shim_import`), at load time and when its task functions run later (also in worker
processes, which load the file the same way). `sys.modules` and `sys.meta_path` are never
touched, so other threads, and modules the DAG file imports, get a real Airflow if one is
installed. A lock serialises loads, because the DAG and task-group stacks are global.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from lockgate.model.pipeline import Pipeline

_LOCK = threading.RLock()
_stack: list[CompatSession] = []


def current() -> CompatSession | None:
    """The session loading a DAG file right now (None outside a load)."""
    return _stack[-1] if _stack else None


class CompatSession:
    """Context manager around executing one DAG file in `module` (which discovery made and
    has not executed yet); `pipelines()` gives the DAGs it defined."""

    def __init__(self, file: Path | str, module: Any = None, source: str | None = None) -> None:
        self.file = str(file)
        self.module = module
        """The module object the file is executed in (its imports are hooked)."""
        self.source = source
        self.dags: list[Any] = []
        """The DAGs created during the load, in creation order."""
        self.dag_stack: list[Any] = []
        self.group_stack: list[Any] = []

    # -- entering and leaving -----------------------------------------------------------------
    def __enter__(self) -> CompatSession:
        from lockgate.authoring.airflow import imports

        _LOCK.acquire()
        try:
            if self.module is not None:
                # `exec_module` keeps a `__builtins__` already in the module's namespace, and
                # every function the file defines looks its imports up there
                self.module.__dict__["__builtins__"] = imports.hooked_builtins()
            _stack.append(self)
        except BaseException:
            _LOCK.release()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self in _stack:
                _stack.remove(self)
        finally:
            _LOCK.release()

    # -- results --------------------------------------------------------------------------------
    def pipelines(self) -> list[Pipeline]:
        """The DAGs of this load as lockgate pipelines (origin "airflow")."""
        from lockgate.authoring.airflow.convert import to_pipeline

        return [to_pipeline(dag, self.file, self.source) for dag in self.dags]
