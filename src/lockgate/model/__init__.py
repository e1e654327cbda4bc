"""Pure definitions: pipelines, tasks, settings, states. No I/O, no imports of other layers."""

from lockgate.model.pipeline import Pipeline
from lockgate.model.refs import ParamRef, TaskOutput
from lockgate.model.settings import TaskSettings
from lockgate.model.states import RunState, TaskState
from lockgate.model.task import Task, TaskKind
from lockgate.model.trigger_rules import TriggerRule

__all__ = [
    "ParamRef",
    "Pipeline",
    "RunState",
    "Task",
    "TaskKind",
    "TaskOutput",
    "TaskSettings",
    "TaskState",
    "TriggerRule",
]
