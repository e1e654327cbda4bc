"""Where the user's code is, and the errors of the Airflow compatibility layer."""

from __future__ import annotations

import os
import sys
import sysconfig

from lockgate.errors import DefinitionError

_LOCKGATE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_STDLIB = os.path.abspath(sysconfig.get_paths()["stdlib"])

DOCS = "see docs/airflow.md"
SUBSET = (
    "supported: DAG and @dag, BashOperator, PythonOperator, BranchPythonOperator, "
    "ShortCircuitOperator, EmptyOperator, @task (python, bash, branch, short_circuit), "
    "TaskGroup, chain and cross_downstream"
)


def is_user_file(filename: str) -> bool:
    if filename.startswith("<"):
        return False
    path = os.path.abspath(filename)
    if path.startswith(_LOCKGATE_DIR + os.sep):
        return False
    return not (path.startswith(_STDLIB + os.sep) and "site-packages" not in path)


def user_location() -> tuple[str | None, int | None]:
    """File and line of the innermost frame of the user's code (outside lockgate, the standard
    library and the import machinery)."""
    frame = sys._getframe(1)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            return frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None, None


def error(message: str, file: str | None = None, line: int | None = None) -> DefinitionError:
    """A DefinitionError at `file:line`, by default where the user's code is running."""
    if file is None:
        file, line = user_location()
    return DefinitionError(message, file, line)


def unsupported(
    feature: str, why: str, file: str | None = None, line: int | None = None
) -> DefinitionError:
    """`<feature> is outside lockgate's Airflow subset (<why>)`."""
    return error(f"{feature} is outside lockgate's Airflow subset ({why}; {DOCS})", file, line)
