"""One load of an Airflow-style DAG file with Airflow's import paths served by lockgate.

While a `CompatSession` is open (one at a time per process: a lock serialises them), the
`airflow` modules of the subset are lockgate's shim modules in `sys.modules`, and a finder
turns any other `airflow.*` import into a clear error. On exit every `airflow*` entry of
`sys.modules` is removed and the ones that were there before (a real Airflow's) are put back
exactly. The DAG file's own module also gets an `__import__` that serves the shim, so imports
inside its task functions keep working when they run later, without touching `sys.modules`.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from pathlib import Path
from typing import Any

from lockgate.model.pipeline import Pipeline

_LOCK = threading.RLock()
_stack: list[CompatSession] = []


def _is_airflow(name: str) -> bool:
    return name == "airflow" or name.startswith("airflow.")


def current() -> CompatSession | None:
    """The session loading a DAG file right now (None outside a load)."""
    return _stack[-1] if _stack else None


class CompatSession:
    """Context manager around executing one DAG file; `pipelines()` gives what it defined."""

    def __init__(self, file: Path | str, module: Any = None, source: str | None = None) -> None:
        self.file = str(file)
        self.module = module
        """The module object the file is executed in (its imports are hooked)."""
        self.source = source
        self.dags: list[Any] = []
        """The DAGs created during the load, in creation order."""
        self.dag_stack: list[Any] = []
        self.group_stack: list[Any] = []
        self._saved: dict[str, Any] = {}
        self._finder: Any = None

    # -- entering and leaving -----------------------------------------------------------------
    def __enter__(self) -> CompatSession:
        from lockgate.authoring.airflow import imports

        _LOCK.acquire()
        try:
            modules = imports.shim_modules()
            self._saved = {k: v for k, v in sys.modules.items() if _is_airflow(k)}
            for name in self._saved:
                del sys.modules[name]
            sys.modules.update(modules)
            self._finder = imports.Finder()
            sys.meta_path.insert(0, self._finder)
            _stack.append(self)
            self._hook_module()
        except BaseException:
            self._restore()
            _LOCK.release()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._restore()
        finally:
            _LOCK.release()

    def _restore(self) -> None:
        if self in _stack:
            _stack.remove(self)
        if self._finder is not None:
            while self._finder in sys.meta_path:
                sys.meta_path.remove(self._finder)
            self._finder = None
        for name in [k for k in sys.modules if _is_airflow(k)]:
            del sys.modules[name]
        sys.modules.update(self._saved)

    def _hook_module(self) -> None:
        """Give the module being loaded an `__import__` that serves the shim (see above)."""
        from lockgate.authoring.airflow import imports

        if self.module is not None:
            self.module.__dict__["__builtins__"] = imports.hooked_builtins()

    # -- results --------------------------------------------------------------------------------
    def pipelines(self) -> list[Pipeline]:
        """The DAGs of this load as lockgate pipelines (origin "airflow")."""
        from lockgate.authoring.airflow.convert import to_pipeline

        source = self.source
        if source is None:
            with contextlib.suppress(OSError):
                source = Path(self.file).read_text(encoding="utf-8", errors="replace")
        return [to_pipeline(dag, self.file, source) for dag in self.dags]
