"""Events: every state change of a run is one `Event` (DESIGN.md decision 2).

They are model objects: the engine emits them, the store and plugins consume them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lockgate.model.facts import (  # noqa: F401  (re-exported: facts are events too)
    DATASET_READ,
    DATASET_WRITTEN,
    POLICY_DECISION,
    POLICY_VIOLATION,
    QUALITY_CHECKED,
    SECRET_READ,
)
from lockgate.model.facts import KINDS as _FACT_KINDS

RUN_STARTED = "RunStarted"
RUN_FINISHED = "RunFinished"
TASK_QUEUED = "TaskQueued"
TASK_STARTED = "TaskStarted"
TASK_SUCCEEDED = "TaskSucceeded"
TASK_FAILED = "TaskFailed"
TASK_RETRYING = "TaskRetrying"
TASK_SKIPPED = "TaskSkipped"
TASK_UPSTREAM_FAILED = "TaskUpstreamFailed"
TASK_CANCELLED = "TaskCancelled"
TASK_LOST = "TaskLost"
CALLBACK_FAILED = "CallbackFailed"
DATASET_UPDATED = "DatasetUpdated"
"""A succeeded task updated a dataset it `produces`: `data={"uri": ...}`, one event per URI."""
FACTS = _FACT_KINDS
"""What a task reported about its data (model/facts.py): emitted by the engine before the task's
end event, with the attempt that reported them."""
RUN_REQUEUED = "RunRequeued"
"""A run went back to the queue: its scheduler stopped or died; another one continues it."""


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened. `state` is the new state of the run or task it names.

    `data` carries details: error text, retry delay, log path, the JSON text of a result
    (`result_json`), the executor's timings (`started_at`).
    """

    kind: str
    run_id: str
    ts: float
    task_id: str | None = None
    attempt: int = 0
    state: str | None = None
    data: dict[str, Any] | None = None
