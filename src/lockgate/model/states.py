"""Task and run states, and which of them are final."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    """The state of one task in one run (the state of its latest attempt, or why it never ran)."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"
    CANCELLED = "cancelled"
    LOST = "lost"


class RunState(StrEnum):
    """The state of a pipeline run."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"
