"""lockgate: a data orchestrator for DevSecOps: pipelines as DAGs, fast, secure by default.

Only the authoring API is imported eagerly; everything heavy loads when first used.
"""

from __future__ import annotations

from typing import Any

from lockgate.authoring.python import (
    PipelineBuilder,
    TaskRef,
    branch,
    check,
    copy,
    mask,
    param,
    pipeline,
    read,
    redact,
    scan,
    shell,
    sql,
    task,
    template,
)
from lockgate.engine.context import Skip, TaskContext
from lockgate.errors import LockgateError
from lockgate.model import Pipeline, RunState, Task, TaskState, TriggerRule
from lockgate.model.params import Param

__version__ = "0.1.0"

_LAZY = {
    "run": "lockgate.api",
    "resume": "lockgate.api",
    "test_task": "lockgate.api",
    "RunResult": "lockgate.engine.run",
    "Project": "lockgate.config",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lockgate' has no attribute {name!r}")


__all__ = [
    "LockgateError",
    "Param",
    "Pipeline",
    "PipelineBuilder",
    "Project",
    "RunResult",
    "RunState",
    "Skip",
    "Task",
    "TaskContext",
    "TaskRef",
    "TaskState",
    "TriggerRule",
    "branch",
    "check",
    "copy",
    "mask",
    "param",
    "pipeline",
    "read",
    "redact",
    "resume",
    "run",
    "scan",
    "shell",
    "sql",
    "task",
    "template",
    "test_task",
]
